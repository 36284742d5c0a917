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
///   HasMins:  d·dx·Σ_j sc_j·Σ_e q_e·x_e  −  dmin·dx·Σ_j c_j·bsums_j        (Q2_K, Q4_K, Q5_K: c_j = the min m_j)
///   else:     d·dx·(Σ_j sc_j·Σ_e q_e·x_e  +  Σ_j c_j·bsums_j)             (Q6_K: c_j = −32·sc_j; Q3_K: −4·sc_j)
/// </code>
/// which is ggml's arithmetic with every integer sum exact. Vector methods come in a 256-bit form (chunks c of
/// 32 elements, c = 0..7) and a 512-bit form (chunks g of 64 elements, g = 0..3); "info" is a per-super-block
/// vector of unpacked scales whose layout only the format knows.
/// </summary>
public unsafe interface IKQuantFormat
{
    static abstract int BlockBytes { get; }
    static abstract bool HasMins { get; }
    static abstract float D(byte* blk);
    static abstract float DMin(byte* blk);

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
    /// <summary>c_j in int16 lanes 0..15 (lanes 16..31 are multiplied by zero).</summary>
    static abstract Vector512<short> E512(byte* blk, Vector512<byte> info);
}

/// <summary>
/// The shared K-quant × Q8_K matmul driver. Paths:
/// <list type="bullet">
/// <item>Scalar: per super-block exact integer sums, then <c>acc += (d·dx)·isum</c> and (mins) <c>acc −= (dmin·dx)·msum</c>.</item>
/// <item>Portable: the same arithmetic with Vector256 integer dot products (bit-identical to scalar).</item>
/// <item>AVX2 (+AVX-VNNI): 8 int32 lanes per (row, token) and super-block: vpmaddubsw(codes, x) then vpmaddwd with the
/// sub-block scales (vpdpwssd with VNNI, same integers); the bsums term by vpmaddwd; then
/// <c>v = cvt(I)·d [+ cvt(M)·(−dmin), fused]</c>, <c>acc = fma(v, dx, acc)</c>; the 8 lanes are summed once at the end.</item>
/// <item>AVX-512: 16 int32 lanes and 64-element chunks; <c>acc = fma(cvt(I), d·dx, acc)</c> [<c>acc = fma(cvt(M), −dmin·dx, acc)</c>].</item>
/// </list>
/// Tiles: 1 row × 8 tokens (AVX-512) / 1 row × 4 tokens (both) unpack each weight super-block once for all their
/// tokens; leftover tokens (and decode) go row by row. A (row, token) pair goes through the same helper calls in
/// every tile, so results are batch- and row-range-invariant on a given path.
/// </summary>
internal static unsafe class KQuant<TF> where TF : struct, IKQuantFormat
{
    public static void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level)
    {
        if (w.Cols % 256 != 0) throw new ArgumentException($"{w.Name}: {w.Cols} columns is not a multiple of 256");
        if (level >= IsaLevel.Avx512 && Avx512BW.IsSupported && Avx512F.VL.IsSupported) Run512(w, x, y, yStride, r0, r1);
        else if (level >= IsaLevel.Avx2 && Avx2.IsSupported && Fma.IsSupported) Run256(w, x, y, yStride, r0, r1);
        else if (level >= IsaLevel.Portable) RunPortable(w, x, y, yStride, r0, r1);
        else RunScalar(w, x, y, yStride, r0, r1);
    }

    /// <summary><see cref="MatMulKernel.HorizontalSum(Vector256{float})"/>'s order, inlined (a call after the tile loop makes the
    /// JIT spill the accumulators inside the loop).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HSum(Vector256<float> v)
    {
        var h = v.GetLower() + v.GetUpper();
        return (h[0] + h[2]) + (h[1] + h[3]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HSum(Vector512<float> v) => HSum(v.GetLower() + v.GetUpper());

    // ---------------------------------------------------------------- scalar

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunScalar(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1)
    {
        int cols = w.Cols, nb = cols / 256, T = x.Tokens;
        byte* codes = stackalloc byte[256];
        int* sc = stackalloc int[16];
        int* ex = stackalloc int[16];
        for (int r = r0; r < r1; r++)
        {
            for (int t = 0; t < T; t++) y[(long)t * yStride + r] = 0f;
            byte* row = w.Row(r);
            for (int b = 0; b < nb; b++)
            {
                byte* blk = row + (long)b * TF.BlockBytes;
                TF.Unpack(blk, codes, sc, ex);
                float dw = TF.D(blk), dm = TF.HasMins ? TF.DMin(blk) : 0f;
                for (int t = 0; t < T; t++)
                {
                    sbyte* xq = x.Q + (long)t * cols + b * 256;
                    short* bs = x.BSums + (long)t * (cols / 16) + b * 16;
                    int isum = 0, esum = 0;
                    for (int j = 0; j < 16; j++)
                    {
                        int s = 0;
                        for (int e = 16 * j; e < 16 * j + 16; e++) s += codes[e] * xq[e];
                        isum += sc[j] * s;
                        esum += ex[j] * bs[j];
                    }
                    Accumulate(ref y[(long)t * yStride + r], isum, esum, dw, dm, x.D[(long)t * nb + b]);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate(ref float acc, int isum, int esum, float dw, float dm, float dx)
    {
        if (TF.HasMins)
        {
            acc += (dw * dx) * isum;
            acc -= (dm * dx) * esum;
        }
        else acc += (dw * dx) * (isum + esum);
    }

    // ---------------------------------------------------------------- portable

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunPortable(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1)
    {
        int cols = w.Cols, nb = cols / 256, T = x.Tokens;
        byte* codes = stackalloc byte[256];
        int* sc = stackalloc int[16];
        int* ex = stackalloc int[16];
        byte* dummy = stackalloc byte[256];
        for (int r = r0; r < r1; r++)
        {
            for (int t = 0; t < T; t++) y[(long)t * yStride + r] = 0f;
            byte* row = w.Row(r);
            for (int b = 0; b < nb; b++)
            {
                byte* blk = row + (long)b * TF.BlockBytes;
                TF.Unpack(blk, dummy, sc, ex); // scales (the codes come from the vector unpacker)
                TF.CodesPortable(blk, codes);
                float dw = TF.D(blk), dm = TF.HasMins ? TF.DMin(blk) : 0f;
                for (int t = 0; t < T; t++)
                {
                    sbyte* xq = x.Q + (long)t * cols + b * 256;
                    short* bs = x.BSums + (long)t * (cols / 16) + b * 16;
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
                    var ev = e0 * Vector256.Load(ex) + e1 * Vector256.Load(ex + 8);
                    Accumulate(ref y[(long)t * yStride + r], Vector256.Sum(acc), Vector256.Sum(ev), dw, dm, x.D[(long)t * nb + b]);
                }
            }
        }
    }

    // ---------------------------------------------------------------- AVX2 (+ AVX-VNNI)

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run256(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1)
    {
        int cols = w.Cols, nb = cols / 256, T = x.Tokens;
        int t = 0;
        for (; t + 4 <= T; t += 4)
            for (int r = r0; r < r1; r++) Tile256x4(w.Row(r), x, t, nb, y + (long)t * yStride + r, yStride);
        for (; t < T; t++)
            for (int r = r0; r < r1; r++) y[(long)t * yStride + r] = Tile256x1(w.Row(r), x, t, nb);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot256(Vector256<int> acc, Vector256<byte> wv, sbyte* xp, Vector256<short> s)
    {
        var p = Avx2.MultiplyAddAdjacent(wv, Vector256.Load(xp));   // q·x pairs: |.| <= 2·63·128 < 2^15
        if (AvxVnni.IsSupported) return AvxVnni.MultiplyWideningAndAdd(acc, p, s);
        return Avx2.Add(acc, Avx2.MultiplyAddAdjacent(p, s));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Finish256(Vector256<int> isum, short* bsums, Vector256<short> e, Vector256<float> dw, Vector256<float> ndm, float dx, Vector256<float> acc)
    {
        var esum = Avx2.MultiplyAddAdjacent(Vector256.Load(bsums), e);
        Vector256<float> v = TF.HasMins
            ? Fma.MultiplyAdd(Avx.ConvertToVector256Single(esum), ndm, Avx.Multiply(Avx.ConvertToVector256Single(isum), dw))
            : Avx.Multiply(Avx.ConvertToVector256Single(Avx2.Add(isum, esum)), dw);
        return Fma.MultiplyAdd(v, Vector256.Create(dx), acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Tile256x1(byte* row, in ActivationView x, int t, int nb)
    {
        sbyte* xq = x.Q + (long)t * x.Cols;
        short* bs = x.BSums + (long)t * (x.Cols / 16);
        float* xd = x.D + (long)t * nb;
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + (long)b * TF.BlockBytes;
            var info = TF.Info256(blk);
            sbyte* xb = xq + b * 256;
            var i0 = Vector256<int>.Zero;
            i0 = Dot256(i0, TF.W256(blk, 0), xb, TF.S256(info, 0));
            i0 = Dot256(i0, TF.W256(blk, 1), xb + 32, TF.S256(info, 1));
            i0 = Dot256(i0, TF.W256(blk, 2), xb + 64, TF.S256(info, 2));
            i0 = Dot256(i0, TF.W256(blk, 3), xb + 96, TF.S256(info, 3));
            i0 = Dot256(i0, TF.W256(blk, 4), xb + 128, TF.S256(info, 4));
            i0 = Dot256(i0, TF.W256(blk, 5), xb + 160, TF.S256(info, 5));
            i0 = Dot256(i0, TF.W256(blk, 6), xb + 192, TF.S256(info, 6));
            i0 = Dot256(i0, TF.W256(blk, 7), xb + 224, TF.S256(info, 7));
            var dw = Vector256.Create(TF.D(blk));
            var ndm = TF.HasMins ? Vector256.Create(-TF.DMin(blk)) : default;
            acc = Finish256(i0, bs + b * 16, TF.E256(blk, info), dw, ndm, xd[b], acc);
        }
        return HSum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Chunk256x4(byte* blk, Vector256<byte> info, int c, sbyte* x0, long xs,
        ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3)
    {
        var wv = TF.W256(blk, c);
        var s = TF.S256(info, c);
        sbyte* xp = x0 + 32 * c;
        i0 = Dot256(i0, wv, xp, s);
        i1 = Dot256(i1, wv, xp + xs, s);
        i2 = Dot256(i2, wv, xp + 2 * xs, s);
        i3 = Dot256(i3, wv, xp + 3 * xs, s);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile256x4(byte* row, in ActivationView x, int t, int nb, float* y, int yStride)
    {
        long xs = x.Cols;
        int bss = x.Cols / 16;
        sbyte* xq = x.Q + t * xs;
        short* bs = x.BSums + (long)t * bss;
        float* xd = x.D + (long)t * nb;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + (long)b * TF.BlockBytes;
            var info = TF.Info256(blk);
            sbyte* xb = xq + b * 256;
            Vector256<int> i0 = default, i1 = default, i2 = default, i3 = default;
            Chunk256x4(blk, info, 0, xb, xs, ref i0, ref i1, ref i2, ref i3);
            Chunk256x4(blk, info, 1, xb, xs, ref i0, ref i1, ref i2, ref i3);
            Chunk256x4(blk, info, 2, xb, xs, ref i0, ref i1, ref i2, ref i3);
            Chunk256x4(blk, info, 3, xb, xs, ref i0, ref i1, ref i2, ref i3);
            Chunk256x4(blk, info, 4, xb, xs, ref i0, ref i1, ref i2, ref i3);
            Chunk256x4(blk, info, 5, xb, xs, ref i0, ref i1, ref i2, ref i3);
            Chunk256x4(blk, info, 6, xb, xs, ref i0, ref i1, ref i2, ref i3);
            Chunk256x4(blk, info, 7, xb, xs, ref i0, ref i1, ref i2, ref i3);
            var e = TF.E256(blk, info);
            var dw = Vector256.Create(TF.D(blk));
            var ndm = TF.HasMins ? Vector256.Create(-TF.DMin(blk)) : default;
            short* bsb = bs + b * 16;
            a0 = Finish256(i0, bsb, e, dw, ndm, xd[b], a0);
            a1 = Finish256(i1, bsb + bss, e, dw, ndm, xd[nb + b], a1);
            a2 = Finish256(i2, bsb + 2 * bss, e, dw, ndm, xd[2 * nb + b], a2);
            a3 = Finish256(i3, bsb + 3 * bss, e, dw, ndm, xd[3 * nb + b], a3);
        }
        y[0] = HSum(a0);
        y[yStride] = HSum(a1);
        y[2 * yStride] = HSum(a2);
        y[3 * yStride] = HSum(a3);
    }

    // ---------------------------------------------------------------- AVX-512

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run512(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1)
    {
        int cols = w.Cols, nb = cols / 256, T = x.Tokens;
        int t = 0;
        for (; t + 8 <= T; t += 8)
            for (int r = r0; r < r1; r++) Tile512x8(w.Row(r), x, t, nb, y + (long)t * yStride + r, yStride);
        if (t + 4 <= T)
        {
            for (int r = r0; r < r1; r++) Tile512x4(w.Row(r), x, t, nb, y + (long)t * yStride + r, yStride);
            t += 4;
        }
        for (; t < T; t++)
            for (int r = r0; r < r1; r++) y[(long)t * yStride + r] = Tile512x1(w.Row(r), x, t, nb);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Dot512(Vector512<byte> wv, sbyte* xp, Vector512<short> s) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(wv, Vector512.Load(xp)), s);   // |q·x pair| <= 2·63·128 < 2^15

    /// <summary>One (row, token) pair's super-block: the same operations in every tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pair512(Vector512<byte> w0, Vector512<byte> w1, Vector512<byte> w2, Vector512<byte> w3,
        Vector512<short> s0, Vector512<short> s1, Vector512<short> s2, Vector512<short> s3, Vector512<short> e,
        float dw, float ndm, sbyte* xb, short* bsb, float dx, Vector512<float> acc)
    {
        var isum = Avx512F.Add(Avx512F.Add(Dot512(w0, xb, s0), Dot512(w1, xb + 64, s1)), Avx512F.Add(Dot512(w2, xb + 128, s2), Dot512(w3, xb + 192, s3)));
        var esum = Avx512BW.MultiplyAddAdjacent(Vector256.Load(bsb).ToVector512(), e);
        if (TF.HasMins)
        {
            acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(isum), Vector512.Create(dw * dx), acc);
            return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(esum), Vector512.Create(ndm * dx), acc);
        }
        return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512F.Add(isum, esum)), Vector512.Create(dw * dx), acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Tile512x1(byte* row, in ActivationView x, int t, int nb)
    {
        sbyte* xq = x.Q + (long)t * x.Cols;
        short* bs = x.BSums + (long)t * (x.Cols / 16);
        float* xd = x.D + (long)t * nb;
        var acc = Vector512<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + (long)b * TF.BlockBytes;
            var info = TF.Info512(blk);
            float dw = TF.D(blk), ndm = TF.HasMins ? -TF.DMin(blk) : 0f;
            acc = Pair512(TF.W512(blk, 0), TF.W512(blk, 1), TF.W512(blk, 2), TF.W512(blk, 3),
                TF.S512(info, 0), TF.S512(info, 1), TF.S512(info, 2), TF.S512(info, 3), TF.E512(blk, info),
                dw, ndm, xq + b * 256, bs + b * 16, xd[b], acc);
        }
        return HSum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile512x4(byte* row, in ActivationView x, int t, int nb, float* y, int yStride)
    {
        long xs = x.Cols;
        int bss = x.Cols / 16;
        sbyte* xq = x.Q + t * xs;
        short* bs = x.BSums + (long)t * bss;
        float* xd = x.D + (long)t * nb;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + (long)b * TF.BlockBytes;
            var info = TF.Info512(blk);
            var w0 = TF.W512(blk, 0); var w1 = TF.W512(blk, 1); var w2 = TF.W512(blk, 2); var w3 = TF.W512(blk, 3);
            var s0 = TF.S512(info, 0); var s1 = TF.S512(info, 1); var s2 = TF.S512(info, 2); var s3 = TF.S512(info, 3);
            var e = TF.E512(blk, info);
            float dw = TF.D(blk), ndm = TF.HasMins ? -TF.DMin(blk) : 0f;
            sbyte* xb = xq + b * 256;
            short* bsb = bs + b * 16;
            float* xdb = xd + b;
            a0 = Pair512(w0, w1, w2, w3, s0, s1, s2, s3, e, dw, ndm, xb, bsb, xdb[0], a0);
            a1 = Pair512(w0, w1, w2, w3, s0, s1, s2, s3, e, dw, ndm, xb + xs, bsb + bss, xdb[nb], a1);
            a2 = Pair512(w0, w1, w2, w3, s0, s1, s2, s3, e, dw, ndm, xb + 2 * xs, bsb + 2 * bss, xdb[2 * nb], a2);
            a3 = Pair512(w0, w1, w2, w3, s0, s1, s2, s3, e, dw, ndm, xb + 3 * xs, bsb + 3 * bss, xdb[3 * nb], a3);
        }
        y[0] = HSum(a0);
        y[yStride] = HSum(a1);
        y[2 * yStride] = HSum(a2);
        y[3 * yStride] = HSum(a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile512x8(byte* row, in ActivationView x, int t, int nb, float* y, int yStride)
    {
        long xs = x.Cols;
        int bss = x.Cols / 16;
        sbyte* xq = x.Q + t * xs;
        short* bs = x.BSums + (long)t * bss;
        float* xd = x.D + (long)t * nb;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + (long)b * TF.BlockBytes;
            var info = TF.Info512(blk);
            var w0 = TF.W512(blk, 0); var w1 = TF.W512(blk, 1); var w2 = TF.W512(blk, 2); var w3 = TF.W512(blk, 3);
            var s0 = TF.S512(info, 0); var s1 = TF.S512(info, 1); var s2 = TF.S512(info, 2); var s3 = TF.S512(info, 3);
            var e = TF.E512(blk, info);
            float dw = TF.D(blk), ndm = TF.HasMins ? -TF.DMin(blk) : 0f;
            sbyte* xb = xq + b * 256;
            short* bsb = bs + b * 16;
            float* xdb = xd + b;
            a0 = Pair512(w0, w1, w2, w3, s0, s1, s2, s3, e, dw, ndm, xb, bsb, xdb[0], a0);
            a1 = Pair512(w0, w1, w2, w3, s0, s1, s2, s3, e, dw, ndm, xb + xs, bsb + bss, xdb[nb], a1);
            a2 = Pair512(w0, w1, w2, w3, s0, s1, s2, s3, e, dw, ndm, xb + 2 * xs, bsb + 2 * bss, xdb[2 * nb], a2);
            a3 = Pair512(w0, w1, w2, w3, s0, s1, s2, s3, e, dw, ndm, xb + 3 * xs, bsb + 3 * bss, xdb[3 * nb], a3);
            a4 = Pair512(w0, w1, w2, w3, s0, s1, s2, s3, e, dw, ndm, xb + 4 * xs, bsb + 4 * bss, xdb[4 * nb], a4);
            a5 = Pair512(w0, w1, w2, w3, s0, s1, s2, s3, e, dw, ndm, xb + 5 * xs, bsb + 5 * bss, xdb[5 * nb], a5);
            a6 = Pair512(w0, w1, w2, w3, s0, s1, s2, s3, e, dw, ndm, xb + 6 * xs, bsb + 6 * bss, xdb[6 * nb], a6);
            a7 = Pair512(w0, w1, w2, w3, s0, s1, s2, s3, e, dw, ndm, xb + 7 * xs, bsb + 7 * bss, xdb[7 * nb], a7);
        }
        y[0] = HSum(a0);
        y[yStride] = HSum(a1);
        y[2 * yStride] = HSum(a2);
        y[3 * yStride] = HSum(a3);
        y[4 * yStride] = HSum(a4);
        y[5 * yStride] = HSum(a5);
        y[6 * yStride] = HSum(a6);
        y[7 * yStride] = HSum(a7);
    }
}
