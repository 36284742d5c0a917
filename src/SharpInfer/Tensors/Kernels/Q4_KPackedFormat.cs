using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// Q4_K super-blocks as <see cref="WeightPacking"/> stores them at load for the scalar and portable levels (and as
/// <see cref="Q4_KInterleaved"/> unpacks a panel for the prefill tiles), so the K-quant tiles read codes and scales
/// without the per-call unpacking that block_q4_K needs. 148 bytes per 256 weights (block_q4_K: 144), so decode
/// traffic stays at 4.6 bits per weight:
/// <code>
///   0..3     d, dmin (the block's two halves, unchanged)
///   4..19    sc_0..sc_7, m_0..m_7 as bytes (the 6-bit fields pre-expanded: what Q4_KFormat.Info128 computes
///            with three shuffles per block and row is one 16-byte load)
///   20..147  two 64-byte code groups h = 0, 1: byte i holds element 128h + i in its low nibble and 128h + 64 + i
///            in its high nibble, so 64 consecutive elements are one full-width load and one mask (block_q4_K's
///            32-byte groups need a broadcast and a per-half variable shift for every 64 elements)
/// </code>
/// The integers each tile computes are the same exact sums as from block_q4_K, and the float steps are the driver's,
/// so results are bit-identical to <see cref="Q4_KFormat"/> on every path.
/// </summary>
internal unsafe struct Q4_KPackedFormat : IKQuantFormat
{
    public const int Size = 148;
    private const int OffsetInfo = 4, OffsetQs = 20;

    public static int BlockBytes => Size;
    public static bool HasMins => true;
    public static int DmOffset => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float D(byte* blk) => Fp16.ToFloat(*(ushort*)blk);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float DMin(byte* blk) => Fp16.ToFloat(*(ushort*)(blk + 2));

    /// <summary>Rewrites one block_q4_K (<paramref name="src"/>) into this layout at <paramref name="dst"/>.</summary>
    public static void PackBlock(byte* src, byte* dst)
    {
        *(uint*)dst = *(uint*)src;
        var sm = new ReadOnlySpan<byte>(src + BlockQ4_K.OffsetScales, 12);
        for (int j = 0; j < 8; j++)
        {
            var (sc, m) = KScales.Get(sm, j);
            dst[OffsetInfo + j] = (byte)sc;
            dst[OffsetInfo + 8 + j] = (byte)m;
        }
        var qs = new ReadOnlySpan<byte>(src + BlockQ4_K.OffsetQs, 128);
        byte* q = dst + OffsetQs;
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < 64; i++)
                q[64 * h + i] = (byte)(BlockQ4_K.Code(qs, 128 * h + i) | (BlockQ4_K.Code(qs, 128 * h + 64 + i) << 4));
    }

    /// <summary>Code of element e (0..255).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Code(byte* blk, int e)
    {
        byte b = blk[OffsetQs + 64 * (e >> 7) + (e & 63)];
        return (e & 64) != 0 ? b >> 4 : b & 0x0F;
    }

    public static void Unpack(byte* blk, byte* codes, int* scales, int* extra)
    {
        for (int j = 0; j < 8; j++)
        {
            scales[2 * j] = scales[2 * j + 1] = blk[OffsetInfo + j];
            extra[2 * j] = extra[2 * j + 1] = blk[OffsetInfo + 8 + j];
        }
        for (int e = 0; e < 256; e++) codes[e] = (byte)Code(blk, e);
    }

    public static void CodesPortable(byte* blk, byte* codes)
    {
        var m4 = Vector256.Create((byte)0x0F);
        for (int h = 0; h < 2; h++)
        {
            var a = Vector256.Load(blk + OffsetQs + 64 * h);
            var b = Vector256.Load(blk + OffsetQs + 64 * h + 32);
            Vector256.Store(a & m4, codes + 128 * h);
            Vector256.Store(b & m4, codes + 128 * h + 32);
            Vector256.Store(Vector256.ShiftRightLogical(a, 4), codes + 128 * h + 64);
            Vector256.Store(Vector256.ShiftRightLogical(b, 4), codes + 128 * h + 96);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Info256(byte* blk) => Vector256.Create(Vector128.Load(blk + OffsetInfo));

    /// <summary>Elements 32c..32c+31: bytes 64(c/4) + 32(c%2), high nibbles when c%4 ≥ 2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> W256(byte* blk, int c)
    {
        var raw = Vector256.Load(blk + OffsetQs + 64 * (c >> 2) + 32 * (c & 1));
        if ((c & 2) != 0) raw = Avx2.ShiftRightLogical(raw.AsUInt16(), 4).AsByte();
        return raw & Vector256.Create((byte)0x0F);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> S256(Vector256<byte> info, int c) => Q4_KFormat.S256(info, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> E256(byte* blk, Vector256<byte> info) => Q4_KFormat.E256(blk, info);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Info512(byte* blk) => KConst.Broadcast128(Vector128.Load(blk + OffsetInfo));

    /// <summary>Elements 64g..64g+63: the 64 bytes of group g/2, high nibbles for odd g.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> W512(byte* blk, int g)
    {
        var raw = Vector512.Load(blk + OffsetQs + 64 * (g >> 1));
        if ((g & 1) != 0) raw = Avx512BW.ShiftRightLogical(raw.AsUInt16(), 4).AsByte();
        return raw & Vector512.Create((byte)0x0F);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> S512(Vector512<byte> info, int g) => Q4_KFormat.S512(info, g);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> E512(byte* blk, Vector512<byte> info) => Q4_KFormat.E512(blk, info);
}
