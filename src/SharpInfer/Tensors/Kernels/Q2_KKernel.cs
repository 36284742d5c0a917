using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>Q2_K weights × Q8_K activations (ggml's arithmetic, see <see cref="KQuant{TF}"/>): 2-bit codes with 4-bit
/// scales and mins per 16 elements, the mins through the activation block sums.</summary>
internal sealed unsafe class Q2_KKernel : MatMulKernel
{
    public override ActivationFormat Format => ActivationFormat.Q8_K;

    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch) =>
        KQuant<Q2_KFormat>.Compute(w, x, y, yStride, r0, r1, level);
}

/// <summary>Unpacking of block_q2_K (see <see cref="BlockQ2_K"/>) for <see cref="KQuant{TF}"/>. Element e = 128h + 32k + l
/// is bits 2k, 2k+1 of qs[32h + l]; scales[j] = sc_j | m_j &lt;&lt; 4.</summary>
internal unsafe struct Q2_KFormat : IKQuantFormat
{
    public static int BlockBytes => BlockQ2_K.Size;
    public static bool HasMins => true;
    public static int DmOffset => BlockQ2_K.OffsetD;   // dmin follows at OffsetDMin = OffsetD + 2

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float D(byte* blk) => Fp16.ToFloat(*(ushort*)(blk + BlockQ2_K.OffsetD));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float DMin(byte* blk) => Fp16.ToFloat(*(ushort*)(blk + BlockQ2_K.OffsetDMin));

    public static void Unpack(byte* blk, byte* codes, int* scales, int* extra)
    {
        var qs = new ReadOnlySpan<byte>(blk + BlockQ2_K.OffsetQs, 64);
        for (int j = 0; j < 16; j++)
        {
            scales[j] = blk[BlockQ2_K.OffsetScales + j] & 0xF;
            extra[j] = blk[BlockQ2_K.OffsetScales + j] >> 4;
        }
        for (int e = 0; e < 256; e++) codes[e] = (byte)BlockQ2_K.Code(qs, e);
    }

    public static void CodesPortable(byte* blk, byte* codes)
    {
        var m2 = Vector256.Create((byte)3);
        for (int h = 0; h < 2; h++)
        {
            var q = Vector256.Load(blk + BlockQ2_K.OffsetQs + 32 * h);
            for (int k = 0; k < 4; k++) Vector256.Store(Vector256.ShiftRightLogical(q, 2 * k) & m2, codes + 128 * h + 32 * k);
        }
    }

    /// <summary>The 16 scales (low nibbles) in both 128-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Info256(byte* blk) => Vector256.Create(Vector128.Load(blk + BlockQ2_K.OffsetScales) & Vector128.Create((byte)0x0F));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> W256(byte* blk, int c)
    {
        int h = c >> 2, k = c & 3;
        var q = Vector256.ShiftRightLogical(Vector256.Load(blk + BlockQ2_K.OffsetQs + 32 * h).AsUInt16(), 2 * k).AsByte();
        return q & Vector256.Create((byte)3);
    }

    /// <summary>int16 lanes 0..7 ← sc[2c], lanes 8..15 ← sc[2c+1].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> S256(Vector256<byte> info, int c)
    {
        ulong lo = 0x8000800080008000UL | (ulong)(2 * c) * 0x0001000100010001UL, hi = 0x8000800080008000UL | (ulong)(2 * c + 1) * 0x0001000100010001UL;
        return Avx2.Shuffle(info, Vector256.Create(lo, lo, hi, hi).AsByte()).AsInt16();
    }

    /// <summary>The 16 mins as int16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> E256(byte* blk, Vector256<byte> info) =>
        Avx2.ConvertToVector256Int16(Sse2.ShiftRightLogical(Vector128.Load(blk + BlockQ2_K.OffsetScales).AsUInt16(), 4).AsByte() & Vector128.Create((byte)0x0F));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Info512(byte* blk) => KConst.Broadcast128(Vector128.Load(blk + BlockQ2_K.OffsetScales) & Vector128.Create((byte)0x0F));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> W512(byte* blk, int g)
    {
        int h = g >> 1, k0 = 2 * (g & 1);
        var q = KConst.Broadcast256(blk + BlockQ2_K.OffsetQs + 32 * h).AsUInt16();
        return Avx512BW.ShiftRightLogicalVariable(q, KConst.Shifts512(2 * k0, 2 * k0 + 2)).AsByte() & Vector512.Create((byte)3);
    }

    /// <summary>int16 lanes 8L..8L+7 ← sc[4g+L] (zero-extended by pshufb).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> S512(Vector512<byte> info, int g)
    {
        const ulong Z = 0x8000800080008000UL, One = 0x0001000100010001UL;
        ulong a = Z | (ulong)(4 * g) * One;
        return Avx512BW.Shuffle(info, Vector512.Create(a, a, a + One, a + One, a + 2 * One, a + 2 * One, a + 3 * One, a + 3 * One).AsByte()).AsInt16();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> E512(byte* blk, Vector512<byte> info)
    {
        var e = E256(blk, default);
        return Avx512F.InsertVector256(e.ToVector512Unsafe(), e, 1);
    }
}
