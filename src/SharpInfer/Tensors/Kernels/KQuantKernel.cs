using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// What the shared K-quant driver (<see cref="KQuant{TF}"/>) needs from one super-block format (256 weights).
/// Every format is reduced to the same integer form: unsigned codes q_e (0..63), a signed integer scale per
/// 16 elements sc_j, and per 16 elements an "extra" integer c_j that multiplies the activation block sum
/// bsums_j (Σ of the 16 int8 activations). A super-block then contributes, with dx the activation scale,
/// <code>
///   HasMins:  d·dx·Σ_j sc_j·Σ_e q_e·x_e  −  dmin·dx·Σ_j c_j·bsums_j        (Q4_K, Q5_K: c_j = the min m_j)
///   else:     d·dx·(Σ_j sc_j·Σ_e q_e·x_e  +  Σ_j c_j·bsums_j)             (Q6_K: c_j = −32·sc_j)
/// </code>
/// which is ggml's arithmetic with every integer sum exact (see <see cref="KQuant{TF}"/> for the float steps). Vector methods come in a 256-bit form (chunks c of
/// 32 elements, c = 0..7) and a 512-bit form (chunks g of 64 elements, g = 0..3); "info" is a per-super-block
/// vector of unpacked scales whose layout only the format knows.
/// </summary>
internal unsafe interface IKQuantFormat
{
    static abstract int BlockBytes { get; }
    static abstract bool HasMins { get; }
    static abstract float D(byte* blk);
    static abstract float DMin(byte* blk);
    /// <summary>Byte offset of the half d (followed by the half dmin with mins) in a block, or −1: the decode tiles then
    /// widen d (and dmin) of four rows with one vector conversion instead of four (eight) table lookups.</summary>
    static virtual int DmOffset => -1;

    /// <summary>Scalar: codes[256] (element order), scales[16] and extra[16] per 16-element group.</summary>
    static abstract void Unpack(byte* blk, byte* codes, int* scales, int* extra);
    /// <summary>Portable vector code (Vector128/256 operators only): the 256 codes in element order.</summary>
    static abstract void CodesPortable(byte* blk, byte* codes);

    static abstract Vector256<byte> Info256(byte* blk);
    /// <summary>Codes of elements 32c..32c+31.</summary>
    static abstract Vector256<byte> W256(byte* blk, int c);
    /// <summary>int16 scale for each int16 lane of a vpmaddubsw result of chunk c (lane i covers elements 32c+2i, 32c+2i+1).</summary>
    static abstract Vector256<short> S256(Vector256<byte> info, int c);
    /// <summary>c_j for j = 0..15 as int16 lanes (multiplied with the 16 bsums by vpmaddwd).</summary>
    static abstract Vector256<short> E256(byte* blk, Vector256<byte> info);

    static abstract Vector512<byte> Info512(byte* blk);
    /// <summary>Codes of elements 64g..64g+63.</summary>
    static abstract Vector512<byte> W512(byte* blk, int g);
    static abstract Vector512<short> S512(Vector512<byte> info, int g);
    /// <summary>c_j in int16 lanes 0..15, and again in lanes 16..31 (multiplied with two tokens' bsums at once).</summary>
    static abstract Vector512<short> E512(byte* blk, Vector512<byte> info);
}

/// <summary>
/// The shared K-quant × Q8_K matmul driver. For each (row, token) pair and super-block it computes the exact integers
/// I = Σ_j sc_j·Σ_e q_e·x_e (+ Σ_j c_j·bsums_j without mins) and, with mins, M = Σ_j c_j·bsums_j; then, in float,
/// <code>
///   acc0 = fma((float)I, d·dx, acc0);   acc1 = fma((float)M, (−dmin)·dx, acc1)      (acc1 only with mins)
/// </code>
/// and the output is acc0 + acc1 after the last super-block. Those float steps are the same on every path (scalar,
/// portable, AVX2, AVX-512) and in every tile, so results are bit-identical across instruction sets, batch sizes and
/// row ranges; paths differ only in how fast they get the integers:
/// <list type="bullet">
/// <item>Scalar / portable: plain loops / Vector256 integer dot products per super-block.</item>
/// <item>AVX2 (+AVX-VNNI) and AVX-512: vpmaddubsw(codes, x) then vpmaddwd with the sub-block scales (vpdpwssd with VNNI),
/// the bsums term by vpmaddwd. Tiles: 1 row × 8 tokens (AVX-512) or 1 row × 4 tokens (AVX2) reuse each unpacked
/// weight chunk across the tokens, and 4 rows × 1 token for decode. A tile reduces the int32 lanes of all its pairs
/// together with a shuffle-and-add tree into one vector holding (I, M) per pair, converts it once and accumulates with
/// one fma against a per-lane d·dx vector.</item>
/// </list>
/// </summary>
internal static unsafe class KQuant<TF> where TF : struct, IKQuantFormat
{
    public static void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level) =>
        Compute(new KRows(w.Data, w.RowBytes), w.Cols, w.Name, x, y, yStride, r0, r1, level);

    /// <summary>The same on rows stored in <typeparamref name="TF"/>'s blocks at <paramref name="rows"/> (a packed copy).</summary>
    public static void Compute(KRows rows, int cols, string name, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level)
    {
        if (cols % 256 != 0) throw new ArgumentException($"{name}: {cols} columns is not a multiple of 256");
        if (level >= IsaLevel.Avx512 && Avx512BW.IsSupported && Avx512F.VL.IsSupported) Run512(rows, cols, x, y, yStride, r0, r1);
        else if (level >= IsaLevel.Avx2 && Avx2.IsSupported && Fma.IsSupported) Run256(rows, cols, x, y, yStride, r0, r1);
        else RunScalar(rows, cols, x, y, yStride, r0, r1, level >= IsaLevel.Portable);
    }

    /// <summary>The per-super-block float step of one pair (the definition every vector lane reproduces).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(int isum, int msum, float dw, float ndm, float dx, ref float acc0, ref float acc1)
    {
        acc0 = MathF.FusedMultiplyAdd(isum, dw * dx, acc0);
        if (TF.HasMins) acc1 = MathF.FusedMultiplyAdd(msum, ndm * dx, acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Final(float acc0, float acc1) => TF.HasMins ? acc0 + acc1 : acc0;

    // ---------------------------------------------------------------- scalar and portable

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunScalar(KRows w, int cols, in ActivationView x, float* y, int yStride, int r0, int r1, bool portable)
    {
        int nb = cols / 256, T = x.Tokens;
        byte* codes = stackalloc byte[256];
        int* sc = stackalloc int[16];
        int* ex = stackalloc int[16];
        var acc1 = new float[T];
        for (int r = r0; r < r1; r++)
        {
            for (int t = 0; t < T; t++) { y[(long)t * yStride + r] = 0f; acc1[t] = 0f; }
            byte* row = w.Row(r);
            for (int b = 0; b < nb; b++)
            {
                byte* blk = row + (long)b * TF.BlockBytes;
                TF.Unpack(blk, codes, sc, ex);
                if (portable) TF.CodesPortable(blk, codes);   // the same codes, vectorized (exercised by the tests)
                float dw = TF.D(blk), ndm = TF.HasMins ? -TF.DMin(blk) : 0f;
                for (int t = 0; t < T; t++)
                {
                    sbyte* xq = x.Q + (long)t * cols + b * 256;
                    short* bs = x.BSums + (long)t * (cols / 16) + b * 16;
                    int isum, esum;
                    if (portable) (isum, esum) = DotPortable(codes, sc, ex, xq, bs);
                    else
                    {
                        isum = 0; esum = 0;
                        for (int j = 0; j < 16; j++)
                        {
                            int s = 0;
                            for (int e = 16 * j; e < 16 * j + 16; e++) s += codes[e] * xq[e];
                            isum += sc[j] * s;
                            esum += ex[j] * bs[j];
                        }
                    }
                    if (!TF.HasMins) isum += esum;
                    Step(isum, esum, dw, ndm, x.D[(long)t * nb + b], ref y[(long)t * yStride + r], ref acc1[t]);
                }
            }
            for (int t = 0; t < T; t++) y[(long)t * yStride + r] = Final(y[(long)t * yStride + r], acc1[t]);
        }
    }

    private static (int, int) DotPortable(byte* codes, int* sc, int* ex, sbyte* xq, short* bs)
    {
        var acc = Vector256<int>.Zero;
        for (int c = 0; c < 8; c++)
        {
            var (ql, qh) = Vector256.Widen(Vector256.Load(codes + 32 * c));
            var (xl, xh) = Vector256.Widen(Vector256.Load(xq + 32 * c));
            var (a0, a1) = Vector256.Widen(ql.AsInt16() * xl);   // |q·x| <= 63·128: no int16 overflow
            var (b0, b1) = Vector256.Widen(qh.AsInt16() * xh);
            acc += (a0 + a1) * sc[2 * c] + (b0 + b1) * sc[2 * c + 1];
        }
        var (e0, e1) = Vector256.Widen(Vector256.Load(bs));
        return (Vector256.Sum(acc), Vector256.Sum(e0 * Vector256.Load(ex) + e1 * Vector256.Load(ex + 8)));
    }

    // ---------------------------------------------------------------- shared by the vector paths

    /// <summary>Scratch for per-super-block lane tables: on the stack unless the row is very long.</summary>
    private const int MaxStackBlocks = 512;

    /// <summary>(d, −dmin) pairs, or d, as the four floats of a 128-bit lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Dwm128(byte* blk)
    {
        float dw = TF.D(blk);
        return TF.HasMins ? Vector128.Create(dw, -TF.DMin(blk), dw, -TF.DMin(blk)) : Vector128.Create(dw);
    }

    /// <summary>[d0, −dmin0, d1, −dmin1, .., d3, −dmin3] of four blocks with (d, dmin) halves at <c>TF.DmOffset</c>: the
    /// same floats as <see cref="Fp16.ToFloat"/> (an exact widening) and the same sign flip as the scalar negation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Dm4(byte* b0, byte* b1, byte* b2, byte* b3)
    {
        int o = TF.DmOffset;
        var h = Vector128.Create(*(uint*)(b0 + o), *(uint*)(b1 + o), *(uint*)(b2 + o), *(uint*)(b3 + o));
        var f = FloatConvert.HalfToSingle(Avx2.ConvertToVector256Int32(h.AsUInt16()).AsUInt32());
        return (f.AsUInt32() ^ Vector256.Create(0u, 0x80000000u, 0u, 0x80000000u, 0u, 0x80000000u, 0u, 0x80000000u)).AsSingle();
    }

    /// <summary>[d0, d1, d2, d3] of four blocks (formats without mins), exactly as <see cref="Fp16.ToFloat"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> D4(byte* b0, byte* b1, byte* b2, byte* b3)
    {
        int o = TF.DmOffset;
        var h = Vector128.Create(*(ushort*)(b0 + o), *(ushort*)(b1 + o), *(ushort*)(b2 + o), *(ushort*)(b3 + o), 0, 0, 0, 0);
        return FloatConvert.HalfToSingle(Vector128.WidenLower(h).AsUInt32());
    }

    /// <summary>Output of one pair from its (acc0, acc1) lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Out(Vector128<float> v, int lane) => Final(v.GetElement(lane), v.GetElement(lane + 1));

    // ---------------------------------------------------------------- AVX2 (+ AVX-VNNI)

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run256(KRows w, int cols, in ActivationView x, float* y, int yStride, int r0, int r1)
    {
        int nb = cols / 256, T = x.Tokens;
        float[]? heap = nb > MaxStackBlocks ? new float[8 * nb] : null;
        float* stack = stackalloc float[heap == null ? 8 * nb : 0];
        fixed (float* hp = heap)
        {
            float* dx = heap == null ? stack : hp;
            int t = 0;
            for (; t + 4 <= T; t += 4)
            {
                // dx per super-block in the lane order of the tile's result vector: [A, A, C, C | B, B, D, D]
                for (int b = 0; b < nb; b++)
                {
                    float* p = dx + 8 * b, d = x.D + (long)t * nb + b;
                    p[0] = p[1] = d[0]; p[2] = p[3] = d[2 * nb]; p[4] = p[5] = d[nb]; p[6] = p[7] = d[3 * nb];
                }
                for (int r = r0; r < r1; r++) Tile256x4(w.Row(r), x, t, nb, dx, y + (long)t * yStride + r, yStride);
            }
            for (; t < T; t++)
            {
                int r = r0;
                for (; r + 4 <= r1; r += 4) Tile256Rows4(w, r, x, t, nb, y + (long)t * yStride + r);
                for (; r < r1; r++) y[(long)t * yStride + r] = Tile256x1(w.Row(r), x, t, nb);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot256(Vector256<int> acc, Vector256<byte> wv, sbyte* xp, Vector256<short> s) =>
        Dot256(acc, wv, Vector256.Load(xp), s);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot256(Vector256<int> acc, Vector256<byte> wv, Vector256<sbyte> xv, Vector256<short> s)
    {
        var p = Avx2.MultiplyAddAdjacent(wv, xv);   // q·x pairs: |.| <= 2·63·128 < 2^15
        if (AvxVnni.IsSupported) return AvxVnni.MultiplyWideningAndAdd(acc, p, s);
        return Avx2.Add(acc, Avx2.MultiplyAddAdjacent(p, s));
    }

    /// <summary>The 8 int32 lanes of one pair's super-block (I without the bsums term).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Block256(byte* blk, Vector256<byte> info, sbyte* xb)
    {
        var i0 = Dot256(Vector256<int>.Zero, TF.W256(blk, 0), xb, TF.S256(info, 0));
        var i1 = Dot256(Vector256<int>.Zero, TF.W256(blk, 1), xb + 32, TF.S256(info, 1));
        i0 = Dot256(i0, TF.W256(blk, 2), xb + 64, TF.S256(info, 2));
        i1 = Dot256(i1, TF.W256(blk, 3), xb + 96, TF.S256(info, 3));
        i0 = Dot256(i0, TF.W256(blk, 4), xb + 128, TF.S256(info, 4));
        i1 = Dot256(i1, TF.W256(blk, 5), xb + 160, TF.S256(info, 5));
        i0 = Dot256(i0, TF.W256(blk, 6), xb + 192, TF.S256(info, 6));
        i1 = Dot256(i1, TF.W256(blk, 7), xb + 224, TF.S256(info, 7));
        return Avx2.Add(i0, i1);
    }

    /// <summary>[a.lo + a.hi | b.lo + b.hi]: two pairs' 8 lanes folded to 4 each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Fold256(Vector256<int> a, Vector256<int> b) =>
        Avx2.Add(Avx2.Permute2x128(a, b, 0x20), Avx2.Permute2x128(a, b, 0x31));

    /// <summary>From [A4 | B4], [C4 | D4] (four lanes per pair) and the same for M: [IA, MA, IC, MC | IB, MB, ID, MD]
    /// (without mins: [IA, IA, IC, IC | IB, IB, ID, ID]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Finish256(Vector256<int> ab, Vector256<int> cd, Vector256<int> mab, Vector256<int> mcd)
    {
        var r = Avx2.Add(Avx2.UnpackLow(ab.AsInt64(), cd.AsInt64()).AsInt32(), Avx2.UnpackHigh(ab.AsInt64(), cd.AsInt64()).AsInt32()); // [A2, C2 | B2, D2]
        if (!TF.HasMins) return Avx2.Add(r, Avx2.Shuffle(r, 0b10_11_00_01));
        var m = Avx2.Add(Avx2.UnpackLow(mab.AsInt64(), mcd.AsInt64()).AsInt32(), Avx2.UnpackHigh(mab.AsInt64(), mcd.AsInt64()).AsInt32());
        var u = Avx2.UnpackLow(r, m);    // [A0, MA0, A1, MA1 | ...]
        var v = Avx2.UnpackHigh(r, m);   // [C0, MC0, C1, MC1 | ...]
        return Avx2.Add(Avx2.UnpackLow(u.AsInt64(), v.AsInt64()).AsInt32(), Avx2.UnpackHigh(u.AsInt64(), v.AsInt64()).AsInt32());
    }

    /// <summary>Chunk <paramref name="c"/> (32 elements) of one super-block into four tokens' int32 lanes (integer sums:
    /// the order of chunks does not change them).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Chunk256x4(byte* blk, Vector256<byte> info, int c, sbyte* xb, long xs,
                                   ref Vector256<int> ia, ref Vector256<int> ib, ref Vector256<int> ic, ref Vector256<int> id)
    {
        var wv = TF.W256(blk, c);
        var sc = TF.S256(info, c);
        sbyte* xp = xb + 32 * c;
        ia = Dot256(ia, wv, xp, sc);
        ib = Dot256(ib, wv, xp + xs, sc);
        ic = Dot256(ic, wv, xp + 2 * xs, sc);
        id = Dot256(id, wv, xp + 3 * xs, sc);
    }

    /// <summary>1 row × 4 tokens (t..t+3): each weight chunk is unpacked once for the four tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile256x4(byte* row, in ActivationView x, int t, int nb, float* dx, float* y, int yStride)
    {
        long xs = x.Cols;
        int bss = x.Cols / 16;
        sbyte* xq = x.Q + t * xs;
        short* bs = x.BSums + (long)t * bss;
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + (long)b * TF.BlockBytes;
            var info = TF.Info256(blk);
            sbyte* xb = xq + b * 256;
            short* bsb = bs + b * 16;
            var e = TF.E256(blk, info);
            // chunk by chunk, each unpacked chunk feeding the four tokens' accumulators (7 live vectors: as four
            // whole-block dot products the JIT kept all 16 unpacked chunks live and spilled every partial sum)
            Vector256<int> ia = default, ib = default, ic = default, id = default;
            Chunk256x4(blk, info, 0, xb, xs, ref ia, ref ib, ref ic, ref id);
            Chunk256x4(blk, info, 1, xb, xs, ref ia, ref ib, ref ic, ref id);
            Chunk256x4(blk, info, 2, xb, xs, ref ia, ref ib, ref ic, ref id);
            Chunk256x4(blk, info, 3, xb, xs, ref ia, ref ib, ref ic, ref id);
            Chunk256x4(blk, info, 4, xb, xs, ref ia, ref ib, ref ic, ref id);
            Chunk256x4(blk, info, 5, xb, xs, ref ia, ref ib, ref ic, ref id);
            Chunk256x4(blk, info, 6, xb, xs, ref ia, ref ib, ref ic, ref id);
            Chunk256x4(blk, info, 7, xb, xs, ref ia, ref ib, ref ic, ref id);
            var ma = Avx2.MultiplyAddAdjacent(Vector256.Load(bsb), e);
            var mb = Avx2.MultiplyAddAdjacent(Vector256.Load(bsb + bss), e);
            var mc = Avx2.MultiplyAddAdjacent(Vector256.Load(bsb + 2 * bss), e);
            var md = Avx2.MultiplyAddAdjacent(Vector256.Load(bsb + 3 * bss), e);
            if (!TF.HasMins) { ia = Avx2.Add(ia, ma); ib = Avx2.Add(ib, mb); ic = Avx2.Add(ic, mc); id = Avx2.Add(id, md); }
            var f = Finish256(Fold256(ia, ib), Fold256(ic, id), Fold256(ma, mb), Fold256(mc, md));
            var dwm = Dwm128(blk);
            var scale = Avx.Multiply(Vector256.Create(dwm, dwm), Vector256.Load(dx + 8 * b));
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(f), scale, acc);
        }
        var lo = acc.GetLower(); var hi = acc.GetUpper();
        y[0] = Out(lo, 0); y[2 * yStride] = Out(lo, 2); y[yStride] = Out(hi, 0); y[3 * yStride] = Out(hi, 2);
    }

    /// <summary>How many rows ahead the decode tiles prefetch: the same super-block of the rows one or two tiles on, so
    /// DRAM reads are in flight while this tile computes (without it, decode waits on memory latency: ~2× slower).</summary>
    private const int PrefetchRows = 8;

    /// <summary>Prefetches every cache line of the super-block at <paramref name="blk"/> + <paramref name="ahead"/>
    /// (prefetches never fault, so running past the matrix end is harmless).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchAhead(byte* blk, long ahead)
    {
        byte* p = blk + ahead;
        for (int k = 0; k < TF.BlockBytes; k += 64) Sse.Prefetch0(p + k);
        Sse.Prefetch0(p + TF.BlockBytes - 1);
    }

    /// <summary>Chunk <paramref name="c"/> (32 elements) of four rows' super-blocks against one token's activations
    /// (integer sums: the order of chunks does not change them). <paramref name="barrier"/>: a store to the tile's own
    /// output slot (overwritten at the end) that ends the JIT's reuse of loads from before it, so no vector loaded for
    /// one chunk stays live (and spills) into the next; reloading from L1 costs less than a spill.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Chunk256Rows4(byte* b0, byte* b1, byte* b2, byte* b3, Vector256<byte> f0, Vector256<byte> f1,
                                      Vector256<byte> f2, Vector256<byte> f3, int c, sbyte* xb, float* barrier,
                                      ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3)
    {
        *barrier = 0f;
        var xv = Vector256.Load(xb + 32 * c);
        i0 = Dot256(i0, TF.W256(b0, c), xv, TF.S256(f0, c));
        i1 = Dot256(i1, TF.W256(b1, c), xv, TF.S256(f1, c));
        i2 = Dot256(i2, TF.W256(b2, c), xv, TF.S256(f2, c));
        i3 = Dot256(i3, TF.W256(b3, c), xv, TF.S256(f3, c));
    }

    /// <summary>4 rows (r..r+3) × 1 token: the decode tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile256Rows4(KRows w, int r, in ActivationView x, int t, int nb, float* y)
    {
        byte* w0 = w.Row(r), w1 = w.Row(r + 1), w2 = w.Row(r + 2), w3 = w.Row(r + 3);
        sbyte* xq = x.Q + (long)t * x.Cols;
        short* bs = x.BSums + (long)t * (x.Cols / 16);
        float* xd = x.D + (long)t * nb;
        long ahead = PrefetchRows * w.RowBytes;
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            long o = (long)b * TF.BlockBytes;
            byte* b0 = w0 + o, b1 = w1 + o, b2 = w2 + o, b3 = w3 + o;
            PrefetchAhead(b0, ahead); PrefetchAhead(b1, ahead); PrefetchAhead(b2, ahead); PrefetchAhead(b3, ahead);
            sbyte* xb = xq + b * 256;
            var bsv = Vector256.Load(bs + b * 16);
            var f0 = TF.Info256(b0); var f1 = TF.Info256(b1); var f2 = TF.Info256(b2); var f3 = TF.Info256(b3);
            // chunk by chunk, each activation chunk loaded once for the four rows. Compiled without PGO (the CLI runs
            // with TieredCompilation off; native AOT), the JIT turned repeated loads into common subexpressions held
            // across the block — all eight activation chunks of four whole-block dot products, or Q6_K's ql/qh
            // vectors shared by several chunks — and spilled them: Q4_K_M decode ran ~35% slower than under PGO.
            Vector256<int> i0 = default, i1 = default, i2 = default, i3 = default;
            Chunk256Rows4(b0, b1, b2, b3, f0, f1, f2, f3, 0, xb, y, ref i0, ref i1, ref i2, ref i3);
            Chunk256Rows4(b0, b1, b2, b3, f0, f1, f2, f3, 1, xb, y, ref i0, ref i1, ref i2, ref i3);
            Chunk256Rows4(b0, b1, b2, b3, f0, f1, f2, f3, 2, xb, y, ref i0, ref i1, ref i2, ref i3);
            Chunk256Rows4(b0, b1, b2, b3, f0, f1, f2, f3, 3, xb, y, ref i0, ref i1, ref i2, ref i3);
            Chunk256Rows4(b0, b1, b2, b3, f0, f1, f2, f3, 4, xb, y, ref i0, ref i1, ref i2, ref i3);
            Chunk256Rows4(b0, b1, b2, b3, f0, f1, f2, f3, 5, xb, y, ref i0, ref i1, ref i2, ref i3);
            Chunk256Rows4(b0, b1, b2, b3, f0, f1, f2, f3, 6, xb, y, ref i0, ref i1, ref i2, ref i3);
            Chunk256Rows4(b0, b1, b2, b3, f0, f1, f2, f3, 7, xb, y, ref i0, ref i1, ref i2, ref i3);
            var m0 = Avx2.MultiplyAddAdjacent(bsv, TF.E256(b0, f0)); var m1 = Avx2.MultiplyAddAdjacent(bsv, TF.E256(b1, f1));
            var m2 = Avx2.MultiplyAddAdjacent(bsv, TF.E256(b2, f2)); var m3 = Avx2.MultiplyAddAdjacent(bsv, TF.E256(b3, f3));
            if (!TF.HasMins) { i0 = Avx2.Add(i0, m0); i1 = Avx2.Add(i1, m1); i2 = Avx2.Add(i2, m2); i3 = Avx2.Add(i3, m3); }
            // pairs in the lane order [r0, r0, r2, r2 | r1, r1, r3, r3]
            var f = Finish256(Fold256(i0, i1), Fold256(i2, i3), Fold256(m0, m1), Fold256(m2, m3));
            var dwm = TF.HasMins && TF.DmOffset >= 0
                ? Avx2.PermuteVar8x32(Dm4(b0, b1, b2, b3), Vector256.Create(0, 1, 4, 5, 2, 3, 6, 7))
                : TF.DmOffset >= 0
                ? Avx2.PermuteVar8x32(D4(b0, b1, b2, b3).ToVector256Unsafe(), Vector256.Create(0, 0, 2, 2, 1, 1, 3, 3))
                : TF.HasMins
                ? Vector256.Create(TF.D(b0), -TF.DMin(b0), TF.D(b2), -TF.DMin(b2), TF.D(b1), -TF.DMin(b1), TF.D(b3), -TF.DMin(b3))
                : Vector256.Create(TF.D(b0), TF.D(b0), TF.D(b2), TF.D(b2), TF.D(b1), TF.D(b1), TF.D(b3), TF.D(b3));
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(f), Avx.Multiply(dwm, Vector256.Create(xd[b])), acc);
        }
        var lo = acc.GetLower(); var hi = acc.GetUpper();
        y[0] = Out(lo, 0); y[2] = Out(lo, 2); y[1] = Out(hi, 0); y[3] = Out(hi, 2);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Tile256x1(byte* row, in ActivationView x, int t, int nb)
    {
        sbyte* xq = x.Q + (long)t * x.Cols;
        short* bs = x.BSums + (long)t * (x.Cols / 16);
        float* xd = x.D + (long)t * nb;
        float acc0 = 0f, acc1 = 0f;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + (long)b * TF.BlockBytes;
            var info = TF.Info256(blk);
            int isum = Vector256.Sum(Block256(blk, info, xq + b * 256));
            int esum = Vector256.Sum(Avx2.MultiplyAddAdjacent(Vector256.Load(bs + b * 16), TF.E256(blk, info)));
            if (!TF.HasMins) isum += esum;
            Step(isum, esum, TF.D(blk), TF.HasMins ? -TF.DMin(blk) : 0f, xd[b], ref acc0, ref acc1);
        }
        return Final(acc0, acc1);
    }

    // ---------------------------------------------------------------- AVX-512

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run512(KRows w, int cols, in ActivationView x, float* y, int yStride, int r0, int r1)
    {
        int nb = cols / 256, T = x.Tokens;
        float[]? heap = nb > MaxStackBlocks ? new float[16 * nb] : null;
        float* stack = stackalloc float[heap == null ? 16 * nb : 0];
        fixed (float* hp = heap)
        {
            float* dx = heap == null ? stack : hp;
            int t = 0;
            for (; t + 8 <= T; t += 8)
            {
                // dx per super-block in the lane order of the tile's result vector: 128-bit lane i holds tokens i, i+4
                for (int b = 0; b < nb; b++)
                {
                    float* d = x.D + (long)t * nb + b;
                    for (int i = 0; i < 4; i++)
                    {
                        float* p = dx + 16 * b + 4 * i;
                        p[0] = p[1] = d[i * nb];
                        p[2] = p[3] = d[(i + 4) * nb];
                    }
                }
                for (int r = r0; r < r1; r++) Tile512x8(w.Row(r), x, t, nb, dx, y + (long)t * yStride + r, yStride);
            }
            for (; t < T; t++)
            {
                int r = r0;
                for (; r + 4 <= r1; r += 4) Tile512Rows4(w, r, x, t, nb, y + (long)t * yStride + r);
                for (; r < r1; r++) y[(long)t * yStride + r] = Tile512x1(w.Row(r), x, t, nb);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Dot512(Vector512<byte> wv, sbyte* xp, Vector512<short> s) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(wv, Vector512.Load(xp)), s);   // |q·x pair| <= 2·63·128 < 2^15

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Block512(Vector512<byte> w0, Vector512<byte> w1, Vector512<byte> w2, Vector512<byte> w3,
        Vector512<short> s0, Vector512<short> s1, Vector512<short> s2, Vector512<short> s3, sbyte* xb) =>
        Avx512F.Add(Avx512F.Add(Dot512(w0, xb, s0), Dot512(w1, xb + 64, s1)), Avx512F.Add(Dot512(w2, xb + 128, s2), Dot512(w3, xb + 192, s3)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Block512(byte* blk, Vector512<byte> info, sbyte* xb) =>
        Block512(TF.W512(blk, 0), TF.W512(blk, 1), TF.W512(blk, 2), TF.W512(blk, 3),
            TF.S512(info, 0), TF.S512(info, 1), TF.S512(info, 2), TF.S512(info, 3), xb);

    /// <summary>[a.lo + a.hi | b.lo + b.hi] (256-bit halves): two pairs' 16 lanes folded to 8 each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> FoldA(Vector512<int> a, Vector512<int> b) =>
        Avx512F.Add(Avx512F.Shuffle4x128(a, b, 0x44), Avx512F.Shuffle4x128(a, b, 0xEE));

    /// <summary>[A8 | B8], [C8 | D8] to [A4 | B4 | C4 | D4].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> FoldB(Vector512<int> ab, Vector512<int> cd) =>
        Avx512F.Add(Avx512F.Shuffle4x128(ab, cd, 0x88), Avx512F.Shuffle4x128(ab, cd, 0xDD));

    /// <summary>Two tokens' bsums side by side.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> BSums2(short* a, short* b) => Avx512F.InsertVector256(Vector256.Load(a).ToVector512Unsafe(), Vector256.Load(b), 1);

    /// <summary>1 row × 8 tokens (t..t+7): each weight chunk is unpacked once for the eight tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile512x8(byte* row, in ActivationView x, int t, int nb, float* dx, float* y, int yStride)
    {
        long xs = x.Cols;
        int bss = x.Cols / 16;
        sbyte* xq = x.Q + t * xs;
        short* bs = x.BSums + (long)t * bss;
        var acc = Vector512<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + (long)b * TF.BlockBytes;
            var info = TF.Info512(blk);
            var w0 = TF.W512(blk, 0); var w1 = TF.W512(blk, 1); var w2 = TF.W512(blk, 2); var w3 = TF.W512(blk, 3);
            var s0 = TF.S512(info, 0); var s1 = TF.S512(info, 1); var s2 = TF.S512(info, 2); var s3 = TF.S512(info, 3);
            var e = TF.E512(blk, info);
            sbyte* xb = xq + b * 256;
            short* bsb = bs + b * 16;
            var iab = FoldA(Block512(w0, w1, w2, w3, s0, s1, s2, s3, xb), Block512(w0, w1, w2, w3, s0, s1, s2, s3, xb + xs));
            var icd = FoldA(Block512(w0, w1, w2, w3, s0, s1, s2, s3, xb + 2 * xs), Block512(w0, w1, w2, w3, s0, s1, s2, s3, xb + 3 * xs));
            var ief = FoldA(Block512(w0, w1, w2, w3, s0, s1, s2, s3, xb + 4 * xs), Block512(w0, w1, w2, w3, s0, s1, s2, s3, xb + 5 * xs));
            var igh = FoldA(Block512(w0, w1, w2, w3, s0, s1, s2, s3, xb + 6 * xs), Block512(w0, w1, w2, w3, s0, s1, s2, s3, xb + 7 * xs));
            var mab = Avx512BW.MultiplyAddAdjacent(BSums2(bsb, bsb + bss), e);
            var mcd = Avx512BW.MultiplyAddAdjacent(BSums2(bsb + 2 * bss, bsb + 3 * bss), e);
            var mef = Avx512BW.MultiplyAddAdjacent(BSums2(bsb + 4 * bss, bsb + 5 * bss), e);
            var mgh = Avx512BW.MultiplyAddAdjacent(BSums2(bsb + 6 * bss, bsb + 7 * bss), e);
            Vector512<int> f;
            if (TF.HasMins)
                f = Finish512(FoldB(iab, icd), FoldB(ief, igh), FoldB(mab, mcd), FoldB(mef, mgh));
            else
                f = Finish512(FoldB(Avx512F.Add(iab, mab), Avx512F.Add(icd, mcd)), FoldB(Avx512F.Add(ief, mef), Avx512F.Add(igh, mgh)), default, default);
            var dwm = Dwm128(blk);
            var dwm2 = Vector256.Create(dwm, dwm);
            var scale = Avx512F.Multiply(Vector512.Create(dwm2, dwm2), Vector512.Load(dx + 16 * b));
            acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(f), scale, acc);
        }
        Vector128<float> l0 = acc.GetLower().GetLower(), l1 = acc.GetLower().GetUpper(), l2 = acc.GetUpper().GetLower(), l3 = acc.GetUpper().GetUpper();
        y[0] = Out(l0, 0); y[4 * yStride] = Out(l0, 2);
        y[yStride] = Out(l1, 0); y[5 * yStride] = Out(l1, 2);
        y[2 * yStride] = Out(l2, 0); y[6 * yStride] = Out(l2, 2);
        y[3 * yStride] = Out(l3, 0); y[7 * yStride] = Out(l3, 2);
    }

    /// <summary>[T4_0 | T4_1 | T4_2 | T4_3] and [T4_4 | .. | T4_7] (and the same for M) to, in 128-bit lane i,
    /// [I_i, M_i, I_{i+4}, M_{i+4}] (without mins: [I_i, I_i, I_{i+4}, I_{i+4}]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Finish512(Vector512<int> lo4, Vector512<int> hi4, Vector512<int> mlo4, Vector512<int> mhi4)
    {
        var r = Avx512F.Add(Avx512F.UnpackLow(lo4.AsInt64(), hi4.AsInt64()).AsInt32(), Avx512F.UnpackHigh(lo4.AsInt64(), hi4.AsInt64()).AsInt32());
        if (!TF.HasMins) return Avx512F.Add(r, Avx512F.Shuffle(r, 0b10_11_00_01));
        var m = Avx512F.Add(Avx512F.UnpackLow(mlo4.AsInt64(), mhi4.AsInt64()).AsInt32(), Avx512F.UnpackHigh(mlo4.AsInt64(), mhi4.AsInt64()).AsInt32());
        var u = Avx512F.UnpackLow(r, m);
        var v = Avx512F.UnpackHigh(r, m);
        return Avx512F.Add(Avx512F.UnpackLow(u.AsInt64(), v.AsInt64()).AsInt32(), Avx512F.UnpackHigh(u.AsInt64(), v.AsInt64()).AsInt32());
    }

    /// <summary>4 rows (r..r+3) × 1 token: the decode tile. Row k's pair ends up in 128-bit lane k as [I, M, I, M].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile512Rows4(KRows w, int r, in ActivationView x, int t, int nb, float* y)
    {
        byte* w0 = w.Row(r), w1 = w.Row(r + 1), w2 = w.Row(r + 2), w3 = w.Row(r + 3);
        sbyte* xq = x.Q + (long)t * x.Cols;
        short* bs = x.BSums + (long)t * (x.Cols / 16);
        float* xd = x.D + (long)t * nb;
        long ahead = PrefetchRows * w.RowBytes;
        var acc = Vector512<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            long o = (long)b * TF.BlockBytes;
            byte* b0 = w0 + o, b1 = w1 + o, b2 = w2 + o, b3 = w3 + o;
            PrefetchAhead(b0, ahead); PrefetchAhead(b1, ahead); PrefetchAhead(b2, ahead); PrefetchAhead(b3, ahead);
            sbyte* xb = xq + b * 256;
            var bsv = Vector256.Load(bs + b * 16).ToVector512();
            var f0 = TF.Info512(b0); var f1 = TF.Info512(b1); var f2 = TF.Info512(b2); var f3 = TF.Info512(b3);
            var i01 = FoldA(Block512(b0, f0, xb), Block512(b1, f1, xb));
            var i23 = FoldA(Block512(b2, f2, xb), Block512(b3, f3, xb));
            var m0 = Avx512BW.MultiplyAddAdjacent(bsv, TF.E512(b0, f0)).GetLower(); var m1 = Avx512BW.MultiplyAddAdjacent(bsv, TF.E512(b1, f1)).GetLower();
            var m2 = Avx512BW.MultiplyAddAdjacent(bsv, TF.E512(b2, f2)).GetLower(); var m3 = Avx512BW.MultiplyAddAdjacent(bsv, TF.E512(b3, f3)).GetLower();
            var m01 = Avx512F.InsertVector256(m0.ToVector512Unsafe(), m1, 1);
            var m23 = Avx512F.InsertVector256(m2.ToVector512Unsafe(), m3, 1);
            Vector512<int> f;
            if (TF.HasMins)
            {
                var i = FoldB(i01, i23); var m = FoldB(m01, m23);
                var wv = Avx512F.Add(Avx512F.UnpackLow(i, m), Avx512F.UnpackHigh(i, m));     // [i0+i2, m0+m2, i1+i3, m1+m3]
                f = Avx512F.Add(wv, Avx512F.Shuffle(wv, 0b01_00_11_10));                       // [I, M, I, M]
            }
            else
            {
                var i = FoldB(Avx512F.Add(i01, m01), Avx512F.Add(i23, m23));
                var wv = Avx512F.Add(i, Avx512F.Shuffle(i, 0b01_00_11_10));
                f = Avx512F.Add(wv, Avx512F.Shuffle(wv, 0b10_11_00_01));                       // [I, I, I, I]
            }
            var dwm = TF.HasMins && TF.DmOffset >= 0
                ? Avx512F.PermuteVar16x32(Dm4(b0, b1, b2, b3).ToVector512Unsafe(), Vector512.Create(0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7))
                : TF.DmOffset >= 0
                ? Avx512F.PermuteVar16x32(D4(b0, b1, b2, b3).ToVector256Unsafe().ToVector512Unsafe(), Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3))
                : Vector512.Create(Vector256.Create(Dwm128(b0), Dwm128(b1)), Vector256.Create(Dwm128(b2), Dwm128(b3)));
            acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(f), Avx512F.Multiply(dwm, Vector512.Create(xd[b])), acc);
        }
        y[0] = Out(acc.GetLower().GetLower(), 0); y[1] = Out(acc.GetLower().GetUpper(), 0);
        y[2] = Out(acc.GetUpper().GetLower(), 0); y[3] = Out(acc.GetUpper().GetUpper(), 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Tile512x1(byte* row, in ActivationView x, int t, int nb)
    {
        sbyte* xq = x.Q + (long)t * x.Cols;
        short* bs = x.BSums + (long)t * (x.Cols / 16);
        float* xd = x.D + (long)t * nb;
        float acc0 = 0f, acc1 = 0f;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + (long)b * TF.BlockBytes;
            var info = TF.Info512(blk);
            int isum = Vector512.Sum(Block512(blk, info, xq + b * 256));
            int esum = Vector512.Sum(Avx512BW.MultiplyAddAdjacent(Vector256.Load(bs + b * 16).ToVector512(), TF.E512(blk, info)));
            if (!TF.HasMins) isum += esum;
            Step(isum, esum, TF.D(blk), TF.HasMins ? -TF.DMin(blk) : 0f, xd[b], ref acc0, ref acc1);
        }
        return Final(acc0, acc1);
    }
}

/// <summary>Where a K-quant kernel reads its rows: the mapped matrix or a packed copy with its own row stride.</summary>
internal readonly unsafe struct KRows(byte* data, long rowBytes)
{
    public long RowBytes => rowBytes;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* Row(int r) => data + r * rowBytes;
}
