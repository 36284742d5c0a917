using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>MXFP4 weights × Q8_0 activations (ggml's vec_dot_type for MXFP4). ggml's doubled E2M1 levels are small
/// integers (−12..12), so the int8 dot product per block is exact: each nibble looks up v + 12 (0..24, unsigned) with
/// a byte shuffle and 12·Σx is subtracted per block; the E8M0 scale (a power of two) is applied per block. See
/// <see cref="LegacyQuantKernel{TF}"/> for the paths and the float arithmetic.</summary>
internal sealed unsafe class MXFP4Kernel : MatMulKernel
{
    public override ActivationFormat Format => ActivationFormat.Q8_0;
    public override long ScratchFloats(int cols) => LegacyQuantKernel<MXFP4Format>.ScratchFloats(cols);

    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch) =>
        LegacyQuantKernel<MXFP4Format>.Compute(w, x, y, yStride, r0, r1, level, scratch);
}

internal unsafe struct MXFP4Format : ILegacyBlockFormat
{
    public static int BlockBytes => BlockMXFP4.Size;
    public static int QsOffset => BlockMXFP4.OffsetQs;
    public static int Offset => 12;
    public static bool HasMin => false;
    public static bool PlainNibbles => true;
    // u ≤ 24: vpmaddubsw pair sums stay far from int16 saturation
    public static bool WideCodes => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> MapNibbles(Vector256<byte> nibbles) => Avx2.Shuffle(Table, nibbles);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Code(byte* blk, int j) => BlockMXFP4.Values[j < 16 ? blk[1 + j] & 0x0F : blk[1 + j - 16] >> 4];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* blk) => BlockMXFP4.HalfScale(*blk);

    /// <summary>ggml_e8m0_to_fp32_half of each lane's low byte: (e − 1) &lt;&lt; 23 as float bits, and for e &lt; 2 the
    /// subnormals 0x00200000 &lt;&lt; e.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Scales(Vector256<int> heads)
    {
        var e = heads & Vector256.Create(0xFF);
        var normal = Avx2.ShiftLeftLogical(e - Vector256.Create(1), 23);
        var subnormal = Avx2.ShiftLeftLogicalVariable(Vector256.Create(0x00200000), e.AsUInt32());
        var small = Avx2.CompareGreaterThan(Vector256.Create(2), e);
        return Avx2.BlendVariable(normal, subnormal, small).AsSingle();
    }

    /// <summary>kvalues_mxfp4 + 12 (both 128-bit halves, for the in-lane byte shuffle).</summary>
    private static Vector256<byte> Table
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256.Create(
        12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0,
        12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, (byte)0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> UnpackPortable(byte* blk)
    {
        var n = LegacyQuantKernel<MXFP4Format>.NibblesPortable(blk + 1);
        var t = Table.GetLower();
        return Vector256.Create(Vector128.Shuffle(t, n.GetLower()), Vector128.Shuffle(t, n.GetUpper()));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Unpack(byte* blk) => Avx2.Shuffle(Table, LegacyQuantKernel<MXFP4Format>.Nibbles(blk + 1));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UnpackPair(byte* a, byte* b, out Vector256<byte> lo, out Vector256<byte> hi)
    {
        LegacyQuantKernel<MXFP4Format>.NibblePair(a + 1, b + 1, out lo, out hi);
        lo = Avx2.Shuffle(Table, lo);
        hi = Avx2.Shuffle(Table, hi);
    }
}
