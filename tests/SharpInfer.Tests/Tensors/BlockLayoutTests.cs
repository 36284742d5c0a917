using System.Runtime.CompilerServices;
using SharpInfer.Tensors;

namespace SharpInfer.Tests.Tensors;

/// <summary>The block structs must be byte-for-byte images of ggml's C structs.</summary>
public class BlockLayoutTests
{
    private static void CheckSize<T>(GgmlType type, int sizeConst, int qkConst) where T : unmanaged
    {
        Assert.Equal(GgmlTypeInfo.TypeSize(type), Unsafe.SizeOf<T>());
        Assert.Equal(GgmlTypeInfo.TypeSize(type), sizeConst);
        Assert.Equal(GgmlTypeInfo.BlockSize(type), qkConst);
    }

    private static int Offset<TBlock, TField>(ref TBlock block, ref TField field) =>
        (int)Unsafe.ByteOffset(ref Unsafe.As<TBlock, byte>(ref block), ref Unsafe.As<TField, byte>(ref field));

    [Fact]
    public void SizesMatchGgml()
    {
        CheckSize<BlockQ4_0>(GgmlType.Q4_0, BlockQ4_0.Size, BlockQ4_0.QK);
        CheckSize<BlockQ4_1>(GgmlType.Q4_1, BlockQ4_1.Size, BlockQ4_1.QK);
        CheckSize<BlockQ5_0>(GgmlType.Q5_0, BlockQ5_0.Size, BlockQ5_0.QK);
        CheckSize<BlockQ5_1>(GgmlType.Q5_1, BlockQ5_1.Size, BlockQ5_1.QK);
        CheckSize<BlockQ8_0>(GgmlType.Q8_0, BlockQ8_0.Size, BlockQ8_0.QK);
        CheckSize<BlockQ8_1>(GgmlType.Q8_1, BlockQ8_1.Size, BlockQ8_1.QK);
        CheckSize<BlockQ2_K>(GgmlType.Q2_K, BlockQ2_K.Size, BlockQ2_K.QK);
        CheckSize<BlockQ3_K>(GgmlType.Q3_K, BlockQ3_K.Size, BlockQ3_K.QK);
        CheckSize<BlockQ4_K>(GgmlType.Q4_K, BlockQ4_K.Size, BlockQ4_K.QK);
        CheckSize<BlockQ5_K>(GgmlType.Q5_K, BlockQ5_K.Size, BlockQ5_K.QK);
        CheckSize<BlockQ6_K>(GgmlType.Q6_K, BlockQ6_K.Size, BlockQ6_K.QK);
        CheckSize<BlockQ8_K>(GgmlType.Q8_K, BlockQ8_K.Size, BlockQ8_K.QK);
        CheckSize<BlockIQ4_NL>(GgmlType.IQ4_NL, BlockIQ4_NL.Size, BlockIQ4_NL.QK);
        CheckSize<BlockMXFP4>(GgmlType.MXFP4, BlockMXFP4.Size, BlockMXFP4.QK);
    }

    [Fact]
    public void FieldOffsetsMatchTheDocumentedConstants()
    {
        var q40 = new BlockQ4_0();
        Assert.Equal(BlockQ4_0.OffsetD, Offset(ref q40, ref q40.D));
        Assert.Equal(BlockQ4_0.OffsetQs, Offset(ref q40, ref q40.Qs));
        var q41 = new BlockQ4_1();
        Assert.Equal(BlockQ4_1.OffsetM, Offset(ref q41, ref q41.M));
        Assert.Equal(BlockQ4_1.OffsetQs, Offset(ref q41, ref q41.Qs));
        var q50 = new BlockQ5_0();
        Assert.Equal(BlockQ5_0.OffsetQh, Offset(ref q50, ref q50.Qh));
        Assert.Equal(BlockQ5_0.OffsetQs, Offset(ref q50, ref q50.Qs));
        var q51 = new BlockQ5_1();
        Assert.Equal(BlockQ5_1.OffsetM, Offset(ref q51, ref q51.M));
        Assert.Equal(BlockQ5_1.OffsetQh, Offset(ref q51, ref q51.Qh));
        Assert.Equal(BlockQ5_1.OffsetQs, Offset(ref q51, ref q51.Qs));
        var q80 = new BlockQ8_0();
        Assert.Equal(BlockQ8_0.OffsetQs, Offset(ref q80, ref q80.Qs));
        var q81 = new BlockQ8_1();
        Assert.Equal(BlockQ8_1.OffsetS, Offset(ref q81, ref q81.S));
        Assert.Equal(BlockQ8_1.OffsetQs, Offset(ref q81, ref q81.Qs));
        var q2 = new BlockQ2_K();
        Assert.Equal(BlockQ2_K.OffsetScales, Offset(ref q2, ref q2.Scales));
        Assert.Equal(BlockQ2_K.OffsetQs, Offset(ref q2, ref q2.Qs));
        Assert.Equal(BlockQ2_K.OffsetD, Offset(ref q2, ref q2.D));
        Assert.Equal(BlockQ2_K.OffsetDMin, Offset(ref q2, ref q2.DMin));
        var q3 = new BlockQ3_K();
        Assert.Equal(BlockQ3_K.OffsetHMask, Offset(ref q3, ref q3.HMask));
        Assert.Equal(BlockQ3_K.OffsetQs, Offset(ref q3, ref q3.Qs));
        Assert.Equal(BlockQ3_K.OffsetScales, Offset(ref q3, ref q3.Scales));
        Assert.Equal(BlockQ3_K.OffsetD, Offset(ref q3, ref q3.D));
        var q4 = new BlockQ4_K();
        Assert.Equal(BlockQ4_K.OffsetDMin, Offset(ref q4, ref q4.DMin));
        Assert.Equal(BlockQ4_K.OffsetScales, Offset(ref q4, ref q4.Scales));
        Assert.Equal(BlockQ4_K.OffsetQs, Offset(ref q4, ref q4.Qs));
        var q5 = new BlockQ5_K();
        Assert.Equal(BlockQ5_K.OffsetScales, Offset(ref q5, ref q5.Scales));
        Assert.Equal(BlockQ5_K.OffsetQh, Offset(ref q5, ref q5.Qh));
        Assert.Equal(BlockQ5_K.OffsetQs, Offset(ref q5, ref q5.Qs));
        var q6 = new BlockQ6_K();
        Assert.Equal(BlockQ6_K.OffsetQh, Offset(ref q6, ref q6.Qh));
        Assert.Equal(BlockQ6_K.OffsetScales, Offset(ref q6, ref q6.Scales));
        Assert.Equal(BlockQ6_K.OffsetD, Offset(ref q6, ref q6.D));
        var q8k = new BlockQ8_K();
        Assert.Equal(BlockQ8_K.OffsetQs, Offset(ref q8k, ref q8k.Qs));
        Assert.Equal(BlockQ8_K.OffsetBSums, Offset(ref q8k, ref q8k.BSums));
        var iq = new BlockIQ4_NL();
        Assert.Equal(BlockIQ4_NL.OffsetQs, Offset(ref iq, ref iq.Qs));
        var mx = new BlockMXFP4();
        Assert.Equal(BlockMXFP4.OffsetQs, Offset(ref mx, ref mx.Qs));
    }

    [Fact]
    public void KScalesPackIsTheInverseOfGet()
    {
        var rng = new Random(7);
        Span<byte> sc = stackalloc byte[8], mn = stackalloc byte[8], packed = stackalloc byte[12];
        for (int trial = 0; trial < 200; trial++)
        {
            for (int j = 0; j < 8; j++) { sc[j] = (byte)rng.Next(64); mn[j] = (byte)rng.Next(64); }
            KScales.Pack(sc, mn, packed);
            for (int j = 0; j < 8; j++)
                Assert.Equal((sc[j], mn[j]), ((byte)KScales.Get(packed, j).Scale, (byte)KScales.Get(packed, j).Min));
        }
    }

    [Fact]
    public void IQ4NLTableIsSortedAndSymmetricEnough()
    {
        var v = BlockIQ4_NL.Values;
        Assert.Equal(16, v.Length);
        for (int i = 1; i < 16; i++) Assert.True(v[i - 1] < v[i]);
        Assert.Equal(-127, v[0]);
    }
}
