using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// Q5_K packed at load for the vector levels: <see cref="Q4_KInterleaved"/>'s layout plus the fifth bits. Groups of 8
/// rows, per 256-column super-block <see cref="GroupBlockBytes"/> = 1440 bytes (8 × 180: block_q5_K's 176 with the
/// 12-byte scale field expanded to 16 bytes, 5.6 bits a weight):
/// <code>
///   0..1023     qs as in Q4_KInterleaved: unit k vector v at 256k + 32v, dword r = row r's qs[32k + 4v .. +3]
///   1024..1279  qh: vector v at 1024 + 32v, dword r = row r's qh[4v .. +3] (bit j of qh[l]: element 32j + l)
///   1280..1343  scales as bytes: sc[r][j] at 1280 + 32·(j / 4) + 4r + j % 4
///   1344..1407  mins as bytes: m[r][j] at 1344 + 16·(j / 2) + 2r + j % 2
///   1408..1423  d of rows 0..7 (halves), 1424..1439 dmin
/// </code>
/// Codes reach 31, so four vpmaddubsw results (not eight) add up exactly in int16 (4 · 2 · 31 · 128 = 31,744) before
/// each vpmaddwd by the rows' scales. Prefill unpacks a panel of groups back into block_q5_K rows per call. Same
/// integers and float steps as <see cref="KQuant{TF}"/>: the mapped rows' bits.
/// </summary>
internal static unsafe class Q5_KInterleaved
{
    public const int GroupRows = 8;
    public const int GroupBlockBytes = 1440;
    private const int OffsetQh = 1024, OffsetScales = 1280, OffsetMins = 1344, OffsetD = 1408, OffsetDMin = 1424;
    private const int PrefetchBytes = 4096;
    private const int PanelBytes = 160 * 1024;

    public static long PackedBytes(int rows, int cols) => (long)((rows + 7) / 8) * (cols / 256) * GroupBlockBytes;

    public static long ScratchFloats(int cols) =>
        cols < 256 ? 0 : Math.Max(PanelBytes, (long)GroupRows * (cols / 256) * BlockQ5_K.Size) / sizeof(float);

    private static int PanelRows(int nb) => Math.Clamp(PanelBytes / (nb * BlockQ5_K.Size) / GroupRows * GroupRows, GroupRows, 64);

    public static bool Reads(IsaLevel level, int r0) => Q4_KInterleaved.Reads(level, r0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte* Group(WeightMatrix w, int r, int nb) => w.Packed + (long)(r / 8) * nb * GroupBlockBytes;

    public static void Pack(WeightMatrix w, int g0, int g1, byte* dst)
    {
        int nb = w.Cols / 256;
        for (int g = g0; g < g1; g++)
            for (int b = 0; b < nb; b++)
            {
                byte* o = dst + ((long)g * nb + b) * GroupBlockBytes;
                for (int i = 0; i < 8; i++)
                {
                    byte* blk = w.Row(Math.Min(g * 8 + i, w.Rows - 1)) + (long)b * BlockQ5_K.Size;
                    *(ushort*)(o + OffsetD + 2 * i) = *(ushort*)blk;
                    *(ushort*)(o + OffsetDMin + 2 * i) = *(ushort*)(blk + 2);
                    var field = new ReadOnlySpan<byte>(blk + BlockQ5_K.OffsetScales, 12);
                    for (int j = 0; j < 8; j++)
                    {
                        var (sc, m) = KScales.Get(field, j);
                        o[OffsetScales + 32 * (j / 4) + 4 * i + j % 4] = (byte)sc;
                        o[OffsetMins + 16 * (j / 2) + 2 * i + j % 2] = (byte)m;
                    }
                    for (int k = 0; k < 4; k++)
                        for (int v = 0; v < 8; v++)
                            *(uint*)(o + 256 * k + 32 * v + 4 * i) = *(uint*)(blk + BlockQ5_K.OffsetQs + 32 * k + 4 * v);
                    for (int v = 0; v < 8; v++) *(uint*)(o + OffsetQh + 32 * v + 4 * i) = *(uint*)(blk + BlockQ5_K.OffsetQh + 4 * v);
                }
            }
    }

    /// <summary>Row <paramref name="r"/> back as block_q5_K.</summary>
    public static void CopyRow(WeightMatrix w, int r, byte* dst)
    {
        int nb = w.Cols / 256;
        for (int b = 0; b < nb; b++) CopyRowBlock(Group(w, r, nb) + (long)b * GroupBlockBytes, r % 8, dst + (long)b * BlockQ5_K.Size);
    }

    private static void CopyRowBlock(byte* o, int i, byte* blk)
    {
        Span<byte> sc = stackalloc byte[8], m = stackalloc byte[8];
        *(ushort*)blk = *(ushort*)(o + OffsetD + 2 * i);
        *(ushort*)(blk + 2) = *(ushort*)(o + OffsetDMin + 2 * i);
        for (int j = 0; j < 8; j++)
        {
            sc[j] = o[OffsetScales + 32 * (j / 4) + 4 * i + j % 4];
            m[j] = o[OffsetMins + 16 * (j / 2) + 2 * i + j % 2];
        }
        KScales.Pack(sc, m, new Span<byte>(blk + BlockQ5_K.OffsetScales, 12));
        for (int k = 0; k < 4; k++)
            for (int v = 0; v < 8; v++)
                *(uint*)(blk + BlockQ5_K.OffsetQs + 32 * k + 4 * v) = *(uint*)(o + 256 * k + 32 * v + 4 * i);
        for (int v = 0; v < 8; v++) *(uint*)(blk + BlockQ5_K.OffsetQh + 4 * v) = *(uint*)(o + OffsetQh + 32 * v + 4 * i);
    }

    /// <summary>Rows [r0, r1) × all tokens, as <see cref="Q4_KInterleaved.Compute"/>.</summary>
    public static void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch)
    {
        if (w.Cols % 256 != 0) throw new ArgumentException($"{w.Name}: {w.Cols} columns is not a multiple of 256");
        int nb = w.Cols / 256, T = x.Tokens;
        int tile = level >= IsaLevel.Avx512 && Avx512BW.IsSupported && Avx512F.VL.IsSupported ? 8 : 4;
        if (T < tile)
        {
            for (int g = r0; g < r1; g += GroupRows)
            {
                byte* grp = Group(w, g, nb);
                for (int t = 0; t < T; t++) Gemv8(grp, Math.Min(GroupRows, r1 - g), x, t, nb, y + (long)t * yStride + g);
            }
            return;
        }
        byte* rows = (byte*)scratch;
        long rowBytes = (long)nb * BlockQ5_K.Size;
        int panel = PanelRows(nb);
        for (int p = r0; p < r1; p += panel)
        {
            int n = Math.Min(panel, r1 - p);
            for (int g = 0; g < n; g += GroupRows) UnpackGroup(Group(w, p + g, nb), nb, rows + g * rowBytes);
            KQuant<Q5_KFormat>.Compute(new KRows(rows, rowBytes), w.Cols, w.Name, x, y + p, yStride, 0, n, level);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Bcast4(sbyte* p) => Vector256.Create(*(int*)p).AsSByte();

    /// <summary>Bit (4 − s) of every byte moved to bit 4 (the fifth bit of a code), other bits cleared.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Bit4(Vector256<ushort> hb, int s)
    {
        var v = s switch
        {
            4 => Avx2.ShiftLeftLogical(hb, 4),
            3 => Avx2.ShiftLeftLogical(hb, 3),
            2 => Avx2.ShiftLeftLogical(hb, 2),
            1 => Avx2.ShiftLeftLogical(hb, 1),
            0 => hb,
            -1 => Avx2.ShiftRightLogical(hb, 1),
            -2 => Avx2.ShiftRightLogical(hb, 2),
            _ => Avx2.ShiftRightLogical(hb, 3),
        };
        return v.AsByte() & Vector256.Create((byte)0x10);
    }

    /// <summary>int16 lanes (2i, 2i + 1) ← sc[row of dword i][j] (see Q4_KInterleaved).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> ScaleWords(Vector256<byte> s, int j)
    {
        uint c = (uint)(j & 3) * 0x00010001u | 0x80008000u;
        var idx = Vector256.Create(c, c + 0x00040004u, c + 0x00080008u, c + 0x000C000Cu, c, c + 0x00040004u, c + 0x00080008u, c + 0x000C000Cu);
        return Avx2.Shuffle(s, idx.AsByte()).AsInt16();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> MulAddWords(Vector256<int> acc, Vector256<short> a, Vector256<short> b) =>
        AvxVnni.IsSupported ? AvxVnni.MultiplyWideningAndAdd(acc, a, b) : Avx2.Add(acc, Avx2.MultiplyAddAdjacent(a, b));

    /// <summary>Vector v of unit k: sub-block 2k (low nibbles, qh bit 2k) into lo, 2k + 1 (high, bit 2k + 1) into hi.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(byte* p, sbyte* xb, int k, int v, ref Vector256<short> lo, ref Vector256<short> hi)
    {
        var m = Vector256.Create((byte)0x0F);
        var q = Vector256.Load(p + 256 * k + 32 * v);
        var hb = Vector256.Load(p + OffsetQh + 32 * v).AsUInt16();
        var cl = (q & m) | Bit4(hb, 4 - 2 * k);
        var ch = (Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & m) | Bit4(hb, 3 - 2 * k);
        lo = Avx2.Add(lo, Avx2.MultiplyAddAdjacent(cl, Bcast4(xb + 64 * k + 4 * v)));
        hi = Avx2.Add(hi, Avx2.MultiplyAddAdjacent(ch, Bcast4(xb + 64 * k + 32 + 4 * v)));
    }

    /// <summary>Vectors v0..v0+3 of unit k (four products per int16 lane: exact for 5-bit codes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quad(byte* p, sbyte* xb, int k, int v0, out Vector256<short> lo, out Vector256<short> hi)
    {
        lo = default; hi = default;
        Step(p, xb, k, v0, ref lo, ref hi);
        Step(p, xb, k, v0 + 1, ref lo, ref hi);
        Step(p, xb, k, v0 + 2, ref lo, ref hi);
        Step(p, xb, k, v0 + 3, ref lo, ref hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Unit(byte* p, sbyte* xb, Vector256<byte> sc, int k, Vector256<int> acc)
    {
        Sse.Prefetch0(p + PrefetchBytes + 256 * k); Sse.Prefetch0(p + PrefetchBytes + 256 * k + 64);
        Sse.Prefetch0(p + PrefetchBytes + 256 * k + 128); Sse.Prefetch0(p + PrefetchBytes + 256 * k + 192);
        var sLo = ScaleWords(sc, 2 * k);
        var sHi = ScaleWords(sc, 2 * k + 1);
        Quad(p, xb, k, 0, out var lo, out var hi);
        acc = MulAddWords(acc, lo, sLo);
        acc = MulAddWords(acc, hi, sHi);
        Quad(p, xb, k, 4, out lo, out hi);
        acc = MulAddWords(acc, lo, sLo);
        return MulAddWords(acc, hi, sHi);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Gemv8(byte* grp, int n, in ActivationView x, int t, int nb, float* y)
    {
        sbyte* xq = x.Q + (long)t * x.Cols;
        short* bs = x.BSums + (long)t * (x.Cols / 16);
        float* xd = x.D + (long)t * nb;
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            byte* p = grp + (long)b * GroupBlockBytes;
            sbyte* xb = xq + b * 256;
            for (int o = OffsetQh; o < GroupBlockBytes; o += 64) Sse.Prefetch0(p + PrefetchBytes + o);
            var scA = Vector256.Load(p + OffsetScales);
            var scB = Vector256.Load(p + OffsetScales + 32);
            var isum = Unit(p, xb, scA, 0, Vector256<int>.Zero);
            isum = Unit(p, xb, scA, 1, isum);
            isum = Unit(p, xb, scB, 2, isum);
            isum = Unit(p, xb, scB, 3, isum);
            var pairs = Avx2.HorizontalAdd(Vector256.Load(bs + 16 * b), Vector256.Load(bs + 16 * b)).AsInt32();
            var msum = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(p + OffsetMins), Avx2.PermuteVar8x32(pairs, Vector256.Create(0)).AsInt16());
            msum = MulAddWords(msum, Avx2.ConvertToVector256Int16(p + OffsetMins + 16), Avx2.PermuteVar8x32(pairs, Vector256.Create(1)).AsInt16());
            msum = MulAddWords(msum, Avx2.ConvertToVector256Int16(p + OffsetMins + 32), Avx2.PermuteVar8x32(pairs, Vector256.Create(4)).AsInt16());
            msum = MulAddWords(msum, Avx2.ConvertToVector256Int16(p + OffsetMins + 48), Avx2.PermuteVar8x32(pairs, Vector256.Create(5)).AsInt16());
            var dx = Vector256.Create(xd[b]);
            var d = FloatConvert.LoadHalf8((ushort*)(p + OffsetD));
            var ndm = (FloatConvert.LoadHalf8((ushort*)(p + OffsetDMin)).AsUInt32() ^ Vector256.Create(0x80000000u)).AsSingle();
            acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), Avx.Multiply(d, dx), acc0);
            acc1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(msum), Avx.Multiply(ndm, dx), acc1);
        }
        var sum = Avx.Add(acc0, acc1);
        if (n == 8) { Vector256.Store(sum, y); return; }
        for (int i = 0; i < n; i++) y[i] = sum.GetElement(i);
    }

    /// <summary>The group's 8 rows back as block_q5_K rows at <paramref name="dst"/> (row stride nb · 176): codes and
    /// fifth bits by dword transposes, the scale fields re-encoded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void UnpackGroup(byte* grp, int nb, byte* dst)
    {
        long rowBytes = (long)nb * BlockQ5_K.Size;
        Span<byte> sc = stackalloc byte[8], m = stackalloc byte[8];
        for (int b = 0; b < nb; b++)
        {
            byte* p = grp + (long)b * GroupBlockBytes;
            byte* o = dst + (long)b * BlockQ5_K.Size;
            for (int k = 0; k < 4; k++) DwordTranspose.Rows8(p + 256 * k, o + BlockQ5_K.OffsetQs + 32 * k, rowBytes);
            DwordTranspose.Rows8(p + OffsetQh, o + BlockQ5_K.OffsetQh, rowBytes);
            for (int r = 0; r < 8; r++)
            {
                byte* row = o + r * rowBytes;
                *(ushort*)row = *(ushort*)(p + OffsetD + 2 * r);
                *(ushort*)(row + 2) = *(ushort*)(p + OffsetDMin + 2 * r);
                for (int j = 0; j < 8; j++)
                {
                    sc[j] = p[OffsetScales + 32 * (j / 4) + 4 * r + j % 4];
                    m[j] = p[OffsetMins + 16 * (j / 2) + 2 * r + j % 2];
                }
                KScales.Pack(sc, m, new Span<byte>(row + BlockQ5_K.OffsetScales, 12));
            }
        }
    }
}
