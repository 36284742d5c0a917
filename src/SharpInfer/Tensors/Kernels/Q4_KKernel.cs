using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>Q4_K weights × Q8_K activations (ggml's arithmetic, see <see cref="KQuant{TF}"/>): 4-bit codes with
/// 6-bit scales per 32 elements, the mins through the activation block sums.</summary>
internal sealed unsafe class Q4_KKernel : MatMulKernel
{
    public override ActivationFormat Format => ActivationFormat.Q8_K;

    public override long ScratchFloats(int cols) => KQuantGroups.ScratchFloats<Q4_KInterleaved>(cols);

    /// <summary>Reads the copy packed at load when there is one: the 8-row interleaved layout on the vector levels
    /// (<see cref="Q4_KInterleaved"/>), <see cref="Q4_KPackedFormat"/> rows otherwise: the same bits, less unpacking.</summary>
    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch)
    {
        byte* packed = w.Packed;
        if (packed != null && w.Type == GgmlType.Q4_K && w.PackRows == KQuantGroups.GroupRows && KQuantGroups.Reads(level, r0))
            KQuantGroups.Compute<Q4_KInterleaved>(w, x, y, yStride, r0, r1, level, scratch);
        else if (packed != null && w.Type == GgmlType.Q4_K && w.PackRows == 1)
            KQuant<Q4_KPackedFormat>.Compute(new KRows(packed, WeightPacking.Q4_KPackedRowBytes(w.Cols)), w.Cols, w.Name, x, y, yStride, r0, r1, level);
        else
            KQuant<Q4_KFormat>.Compute(w, x, y, yStride, r0, r1, level);
    }
}

/// <summary>Unpacking of block_q4_K (see <see cref="BlockQ4_K"/>) for <see cref="KQuant{TF}"/>.</summary>
internal unsafe struct Q4_KFormat : IKQuantFormat
{
    public static int BlockBytes => BlockQ4_K.Size;
    public static bool HasMins => true;
    public static int DmOffset => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float D(byte* blk) => Fp16.ToFloat(*(ushort*)blk);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float DMin(byte* blk) => Fp16.ToFloat(*(ushort*)(blk + 2));

    public static void Unpack(byte* blk, byte* codes, int* scales, int* extra)
    {
        var sm = new ReadOnlySpan<byte>(blk + BlockQ4_K.OffsetScales, 12);
        var qs = new ReadOnlySpan<byte>(blk + BlockQ4_K.OffsetQs, 128);
        for (int j = 0; j < 8; j++)
        {
            var (sc, m) = KScales.Get(sm, j);
            scales[2 * j] = scales[2 * j + 1] = sc;
            extra[2 * j] = extra[2 * j + 1] = m;
        }
        for (int e = 0; e < 256; e++) codes[e] = (byte)BlockQ4_K.Code(qs, e);
    }

    public static void CodesPortable(byte* blk, byte* codes)
    {
        byte* qs = blk + BlockQ4_K.OffsetQs;
        var m4 = Vector256.Create((byte)0x0F);
        for (int g = 0; g < 4; g++)
        {
            var raw = Vector256.Load(qs + 32 * g);
            Vector256.Store(raw & m4, codes + 64 * g);
            Vector256.Store(Vector256.ShiftRightLogical(raw, 4), codes + 64 * g + 32);
        }
    }

    /// <summary>The eight 6-bit scales (bytes 0..7) and mins (bytes 8..15), unpacked from the 12-byte field with
    /// three byte shuffles (ggml's get_scale_min_k4 for all j at once).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Info128(byte* blk)
    {
        const byte Z = 0x80; // pshufb: zero
        var raw = Vector128.Load(blk + BlockQ4_K.OffsetScales);  // 12 scale bytes + 4 code bytes (ignored)
        // sc0-3 = b0-3 & 63, low bits of sc4-7 = b8-11 & 15, m0-3 = b4-7 & 63
        var low = Ssse3.Shuffle(raw, Vector128.Create((byte)0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, Z, Z, Z, Z))
                  & Vector128.Create((byte)63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0);
        // low bits of m4-7 = b8-11 >> 4
        var m47 = Ssse3.Shuffle(Sse2.ShiftRightLogical(raw.AsUInt16(), 4).AsByte() & Vector128.Create((byte)0x0F),
                  Vector128.Create(Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 8, 9, 10, 11));
        // high bits of sc4-7 = b0-3 >> 6, of m4-7 = b4-7 >> 6 (bits 6,7 moved to 4,5)
        var top = Ssse3.Shuffle(Sse2.ShiftRightLogical(raw.AsUInt16(), 2).AsByte() & Vector128.Create((byte)0x30),
                  Vector128.Create(Z, Z, Z, Z, 0, 1, 2, 3, Z, Z, Z, Z, 4, 5, 6, 7));
        return low | m47 | top;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Info256(byte* blk) => Vector256.Create(Info128(blk));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> W256(byte* blk, int c)
    {
        var raw = Vector256.Load(blk + BlockQ4_K.OffsetQs + 32 * (c >> 1));
        if ((c & 1) != 0) raw = Avx2.ShiftRightLogical(raw.AsUInt16(), 4).AsByte();
        return raw & Vector256.Create((byte)0x0F);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> S256(Vector256<byte> info, int c) => Avx2.Shuffle(info, KConst.WordIdx256(c)).AsInt16();

    /// <summary>int16 lane j ← m_{j/2} (bytes 8 + j/2): the min of the sub-block that bsums j lies in.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> E256(byte* blk, Vector256<byte> info) =>
        Avx2.Shuffle(info, Vector256.Create(0x8009800980088008UL, 0x800B800B800A800AUL, 0x800D800D800C800CUL, 0x800F800F800E800EUL).AsByte()).AsInt16();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Info512(byte* blk) => KConst.Broadcast128(Info128(blk));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> W512(byte* blk, int g)
    {
        var raw = KConst.Broadcast256(blk + BlockQ4_K.OffsetQs + 32 * g).AsUInt16();
        return Avx512BW.ShiftRightLogicalVariable(raw, KConst.Shifts512(0, 4)).AsByte() & Vector512.Create((byte)0x0F);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> S512(Vector512<byte> info, int g) => Avx512BW.Shuffle(info, KConst.WordIdx512(2 * g, 2 * g + 1)).AsInt16();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> E512(byte* blk, Vector512<byte> info) =>
        Avx512BW.Shuffle(info, Vector512.Create(0x8009800980088008UL, 0x800B800B800A800AUL, 0x800D800D800C800CUL, 0x800F800F800E800EUL,
            0x8009800980088008UL, 0x800B800B800A800AUL, 0x800D800D800C800CUL, 0x800F800F800E800EUL).AsByte()).AsInt16();
}

/// <summary>Shuffle indices and broadcasts shared by the K-quant formats, written so the JIT folds them to constants
/// (no static readonly vectors: kernels are jitted fully optimized on first call, possibly before a class
/// constructor ran).</summary>
internal static unsafe class KConst
{
    /// <summary>pshufb index giving every int16 lane the zero-extended byte i (same byte in both 128-bit lanes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> WordIdx256(int i) => Vector256.Create((ushort)(0x8000 | i)).AsByte();

    /// <summary>pshufb index: int16 lanes 0..15 ← byte lo, lanes 16..31 ← byte hi (zero-extended).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> WordIdx512(int lo, int hi)
    {
        ulong a = 0x8000800080008000UL | (ulong)lo * 0x0001000100010001UL, b = 0x8000800080008000UL | (ulong)hi * 0x0001000100010001UL;
        return Vector512.Create(a, a, a, a, b, b, b, b).AsByte();
    }

    /// <summary>For 16-element sub-blocks with signed scales, info = the 16 scale bytes in both 128-bit lanes: int16
    /// lanes 0..7 ← sc[2c], lanes 8..15 ← sc[2c+1], sign-extended (byte placed high, then shifted down).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> SignedScales256(Vector256<byte> info, int c)
    {
        ulong lo = 0x0080008000800080UL | (ulong)(2 * c) * 0x0100010001000100UL, hi = 0x0080008000800080UL | (ulong)(2 * c + 1) * 0x0100010001000100UL;
        return Avx2.ShiftRightArithmetic(Avx2.Shuffle(info, Vector256.Create(lo, lo, hi, hi).AsByte()).AsInt16(), 8);
    }

    /// <summary>The 16 signed scales of 16-element sub-blocks as int16, in both 256-bit halves (info for <see cref="SignedScales512"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> SignedScalesInfo512(Vector128<sbyte> sc)
    {
        var s = Avx2.ConvertToVector256Int16(sc);
        return Avx512F.InsertVector256(s.ToVector512Unsafe(), s, 1).AsByte();
    }

    /// <summary>int16 lanes 8L..8L+7 ← sc[4g+L] (the scale of each 16-element sub-block of chunk g).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> SignedScales512(Vector512<byte> info, int g)
    {
        const ulong One = 0x0001000100010001UL;
        ulong a = (ulong)(4 * g) * One;
        var idx = Vector512.Create(a, a, a + One, a + One, a + 2 * One, a + 2 * One, a + 3 * One, a + 3 * One).AsInt16();
        return Avx512BW.PermuteVar32x16(info.AsInt16(), idx);
    }

    /// <summary>Per-16-bit-lane shift counts: lo for the lower 256 bits, hi for the upper.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<ushort> Shifts512(int lo, int hi)
    {
        ulong a = (ulong)lo * 0x0001000100010001UL, b = (ulong)hi * 0x0001000100010001UL;
        return Vector512.Create(a, a, a, a, b, b, b, b).AsUInt16();
    }

    /// <summary>The 32 bytes at p in both halves. (Not Avx512F.BroadcastVector256ToVector512(p): the .NET 10 JIT
    /// encodes its memory displacement with the wrong EVEX disp8 scale and reads p+32 for p+16.)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Broadcast256(byte* p)
    {
        var v = Vector256.Load(p);
        return Avx512F.InsertVector256(v.ToVector512Unsafe(), v, 1);
    }

    /// <summary>v in all four 128-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Broadcast128(Vector128<byte> v)
    {
        var z = v.ToVector256Unsafe().ToVector512Unsafe();
        return Avx512F.Shuffle4x128(z.AsUInt32(), z.AsUInt32(), 0).AsByte();
    }
}
