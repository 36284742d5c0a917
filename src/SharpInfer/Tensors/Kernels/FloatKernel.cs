using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// F32, F16 and BF16 weights × float activations. Widening F16/BF16 to float is exact, so this one kernel serves
/// both precision modes.
/// </summary>
/// <remarks>
/// <para><b>Arithmetic</b> (the same on every instruction path, bit for bit, whatever the number of tokens, the
/// row range, the thread or the tile a pair falls in). A (row, token) pair's dot product over n = cols elements:
/// the first n₁₆ = n − n mod 16 elements are split into K-blocks of <see cref="KBlock"/> (the last may be shorter).
/// In a K-block, 16 lane accumulators start at 0 and lane i takes <c>acc_i = fma(w[k+i], x[k+i], acc_i)</c> for
/// each 16-element chunk k in order; the block's partial sum is the fixed tree
/// <c>a_i = acc_i + acc_{i+8}</c>, <c>b_i = a_i + a_{i+4}</c>, <c>(b₀ + b₂) + (b₁ + b₃)</c> (as
/// <see cref="MatMulKernel.HorizontalSum(Vector512{float})"/>). The total is the first partial sum, then each next
/// one added in order (0 if n &lt; 16); the last n mod 16 elements follow as scalar fused multiply-adds into the
/// total, in order. AVX-512 holds a pair's lanes in one register, AVX2 in two (lanes 0–7, 8–15), the portable path
/// in four Vector128s, the scalar path in an array; all do exactly the same operations.</para>
/// <para><b>Decode</b> (few tokens, memory-bound): weights are widened in registers straight from the mapped
/// rows, 8 rows at a time for one token and 4 rows × up to 4 tokens otherwise, each converted chunk reused by every
/// token of the tile; F16 rows use an exact scaled form (see <see cref="F16Scaled16"/>).</para>
/// <para><b>Prefill</b> (≥ <see cref="PackMinTokens"/> tokens, compute-bound): tokens are taken
/// <see cref="TokenBlock"/> at a time so their K-block slice of activations stays in L2; for each K-block and
/// group of 4 rows the weights are widened once into a 4 × KBlock float panel (L1-resident; F32 weights are used
/// in place; F16 matrices without infinities/NaNs use a 4-operation exact widening) and reused by register tiles of
/// 4 rows × 6 tokens (24 FMA accumulators on AVX-512). Partial sums of 4 rows are reduced together with shuffles
/// and added into y, which is exact to the per-pair tree above. AVX2 has 16 registers and needs two per pair, so its
/// panel holds 3 rows and its tiles are 3 rows × 2 tokens (12 accumulators; each activation load feeds three rows,
/// which halves the L2 traffic of the 2 × 2 tiles it replaced), and the next group's rows are prefetched while a
/// group's tiles run. Token block sizes measured in one process (thread
/// CPU time, 896×4864 and 4864×896 F16): 64 → 150-160, 128 → 160-178, 256 → 140-180, 512 → 120-150 GFLOP/s.</para>
/// </remarks>
internal sealed unsafe class FloatKernel : MatMulKernel
{
    /// <summary>Elements per partial sum (part of the arithmetic: changing it changes results).</summary>
    public const int KBlock = 1024;
    /// <summary>Tokens per activation block in the prefill loop order (cache blocking only).</summary>
    public const int TokenBlock = 128;
    /// <summary>From this many tokens on, weights are widened once into a panel instead of per token tile.</summary>
    public const int PackMinTokens = 6;

    public override ActivationFormat Format => ActivationFormat.F32;
    public override long ScratchFloats(int cols) => 4L * KBlock;

    public static bool Supports(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16;

    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch)
    {
        if (!Supports(w.Type)) throw new ArgumentException($"{nameof(FloatKernel)} does not handle {w.Type} weights");
        if (r0 >= r1) return;
        if (level >= IsaLevel.Avx512 && Avx512F.IsSupported && Avx512F.VL.IsSupported && Fma.IsSupported)
        {
            switch (w.Type)
            {
                case GgmlType.F32: Avx512Path.Run<F32x16>(w, x, y, yStride, r0, r1, scratch); break;
                case GgmlType.F16: Avx512Path.Run<F16x16>(w, x, y, yStride, r0, r1, scratch); break;
                default: Avx512Path.Run<Bf16x16>(w, x, y, yStride, r0, r1, scratch); break;
            }
        }
        else if (level >= IsaLevel.Avx2 && Avx2.IsSupported && Fma.IsSupported)
        {
            switch (w.Type)
            {
                case GgmlType.F32: Avx2Path.Run<F32x8>(w, x, y, yStride, r0, r1, scratch); break;
                case GgmlType.F16: Avx2Path.Run<F16x8>(w, x, y, yStride, r0, r1, scratch); break;
                default: Avx2Path.Run<Bf16x8>(w, x, y, yStride, r0, r1, scratch); break;
            }
        }
        else if (level >= IsaLevel.Portable)
        {
            switch (w.Type)
            {
                case GgmlType.F32: PortablePath.Run<F32x4>(w, x, y, yStride, r0, r1); break;
                case GgmlType.F16: PortablePath.Run<F16x4>(w, x, y, yStride, r0, r1); break;
                default: PortablePath.Run<Bf16x4>(w, x, y, yStride, r0, r1); break;
            }
        }
        else
        {
            for (int r = r0; r < r1; r++)
                for (int t = 0; t < x.Tokens; t++)
                    y[(long)t * yStride + r] = DotScalar(w.Type, w.Row(r), x.F32 + (long)t * x.Cols, w.Cols);
            return;
        }
        AddTails(w, x, y, yStride, r0, r1);
    }

    // ------------------------------------------------------------------------------------------------------------
    // scalar reference (the arithmetic every path reproduces)

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Element(GgmlType type, byte* row, int i) => type switch
    {
        GgmlType.F32 => ((float*)row)[i],
        GgmlType.F16 => Fp16.ToFloat(((ushort*)row)[i]),
        _ => Bf16.ToFloat(((ushort*)row)[i]),
    };

    /// <summary>The kernel's arithmetic for one pair, in scalar code (see the class remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float DotScalar(GgmlType type, byte* row, float* x, int n)
    {
        int nFull = n & ~15;
        float total = 0;
        float* acc = stackalloc float[16];
        for (int kb = 0; kb < nFull; kb += KBlock)
        {
            int ke = Math.Min(kb + KBlock, nFull);
            for (int i = 0; i < 16; i++) acc[i] = 0;
            for (int k = kb; k < ke; k += 16)
                for (int i = 0; i < 16; i++)
                    acc[i] = MathF.FusedMultiplyAdd(Element(type, row, k + i), x[k + i], acc[i]);
            float part = Tree(acc);
            total = kb == 0 ? part : total + part;
        }
        for (int i = nFull; i < n; i++) total = MathF.FusedMultiplyAdd(Element(type, row, i), x[i], total);
        return total;
    }

    /// <summary>The fixed reduction of 16 lanes.</summary>
    public static float Tree(float* acc)
    {
        float* a = stackalloc float[8];
        for (int i = 0; i < 8; i++) a[i] = acc[i] + acc[i + 8];
        float b0 = a[0] + a[4], b1 = a[1] + a[5], b2 = a[2] + a[6], b3 = a[3] + a[7];
        return (b0 + b2) + (b1 + b3);
    }

    /// <summary>The last n mod 16 elements of every pair (vector paths); with n &lt; 16 the total starts at 0.</summary>
    private static void AddTails(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1)
    {
        int n = w.Cols, nFull = n & ~15;
        if (nFull == n) return;
        for (int r = r0; r < r1; r++)
        {
            byte* row = w.Row(r);
            for (int t = 0; t < x.Tokens; t++)
            {
                float* xt = x.F32 + (long)t * x.Cols;
                float* yp = y + (long)t * yStride + r;
                float total = nFull == 0 ? 0f : *yp;
                for (int i = nFull; i < n; i++) total = MathF.FusedMultiplyAdd(Element(w.Type, row, i), xt[i], total);
                *yp = total;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ElementBytes(GgmlType t) => t == GgmlType.F32 ? 4 : 2;

    // ------------------------------------------------------------------------------------------------------------
    // weight loaders: one 16-element chunk (or its 8/4-lane parts) widened to float

    // Decode tiles multiply F16 rows in a cheap scaled form: w = asfloat(em)·2^112 (em = exponent and mantissa bits
    // in float position) is used as asfloat(sign | em) against x·2^112. The exact product w·x is the same real number,
    // so each fused multiply-add rounds to exactly the float it gives with the widened weight, as long as x·2^112 is
    // finite (|x| < 2^16, checked per call) and the matrix has no infinite/NaN halves (checked once per matrix):
    // subnormal halves become subnormal floats, which FMA takes exactly. That is 2 integer ops per 16 weights
    // instead of 8 for the exact widening.
    internal interface IW16
    {
        static abstract Vector512<float> Load(byte* row, int k);
        static abstract Vector512<float> ScaleX(Vector512<float> x);
    }
    internal struct F32x16 : IW16
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(byte* row, int k) => Vector512.Load((float*)row + k);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ScaleX(Vector512<float> x) => x;
    }
    internal struct F16x16 : IW16
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(byte* row, int k) => FloatConvert.LoadHalf16((ushort*)row + k);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ScaleX(Vector512<float> x) => x;
    }
    internal struct F16Scaled16 : IW16
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(byte* row, int k) => FloatConvert.LoadFiniteHalf16Scaled((ushort*)row + k);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ScaleX(Vector512<float> x) => x * Vector512.Create(TwoPow112);
    }
    /// <summary>Exact widening of finite halves (no infinity/NaN in the matrix): the scaled form times 2^112, which is
    /// exact for normal and subnormal halves. 4 operations per 16 weights instead of 9.</summary>
    internal struct F16Finite16 : IW16
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(byte* row, int k) => F16Scaled16.Load(row, k) * Vector512.Create(TwoPow112);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ScaleX(Vector512<float> x) => x;
    }
    internal struct Bf16x16 : IW16
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(byte* row, int k) => FloatConvert.LoadBf16x16((ushort*)row + k);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ScaleX(Vector512<float> x) => x;
    }

    internal interface IW8
    {
        static abstract Vector256<float> Load(byte* row, int k);
        static abstract Vector256<float> ScaleX(Vector256<float> x);
    }
    internal struct F32x8 : IW8
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(byte* row, int k) => Vector256.Load((float*)row + k);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ScaleX(Vector256<float> x) => x;
    }
    internal struct F16x8 : IW8
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(byte* row, int k) => FloatConvert.LoadHalf8((ushort*)row + k);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ScaleX(Vector256<float> x) => x;
    }
    internal struct F16Scaled8 : IW8
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load(byte* row, int k)
        {
            var v = Avx2.ConvertToVector256Int32((short*)row + k);
            return ((v << 13) & Vector256.Create(unchecked((int)0x8FFFE000))).AsSingle();
        }
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ScaleX(Vector256<float> x) => x * Vector256.Create(TwoPow112);
    }
    internal struct Bf16x8 : IW8
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(byte* row, int k) => FloatConvert.LoadBf16x8((ushort*)row + k);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ScaleX(Vector256<float> x) => x;
    }

    private const float TwoPow112 = 5.192296858534828e33f;

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<WeightMatrix, object> SpecialHalves = new();

    /// <summary>Whether an F16 matrix holds an infinite or NaN half (scanned once per matrix, on first use).</summary>
    internal static bool HasSpecialHalves(WeightMatrix w) =>
        (bool)SpecialHalves.GetValue(w, static m => ScanSpecialHalves((ushort*)m.Data, m.ByteSize / 2));

    private static bool ScanSpecialHalves(ushort* p, long count)
    {
        long i = 0;
        var e = Vector256.Create((ushort)0x7C00);
        var acc = Vector256<ushort>.Zero;
        for (; i + 16 <= count; i += 16)
        {
            var v = Vector256.Load(p + i) & e;
            acc |= Vector256.Equals(v, e);
            if ((i & 0xFFFF) == 0 && acc != Vector256<ushort>.Zero) return true;
        }
        if (acc != Vector256<ushort>.Zero) return true;
        for (; i < count; i++) if ((p[i] & 0x7C00) == 0x7C00) return true;
        return false;
    }


    internal interface IW4 { static abstract Vector128<float> Load(byte* row, int k); }
    internal struct F32x4 : IW4 { [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(byte* row, int k) => Vector128.Load((float*)row + k); }
    internal struct F16x4 : IW4 { [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(byte* row, int k) => FloatConvert.LoadHalf4((ushort*)row + k); }
    internal struct Bf16x4 : IW4 { [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(byte* row, int k) => FloatConvert.LoadBf16x4((ushort*)row + k); }

    // ------------------------------------------------------------------------------------------------------------
    // AVX-512

    private static class Avx512Path
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run<TW>(WeightMatrix w, in ActivationView x, float* y, int ys, int r0, int r1, float* panel) where TW : struct, IW16
        {
            int T = x.Tokens, cols = w.Cols, nFull = cols & ~15, eb = ElementBytes(w.Type);
            long wStride = w.RowBytes;
            int rq = r0 + (r1 - r0) / 4 * 4;            // rows [r0, rq) in groups of 4, [rq, r1) one by one
            if (nFull == 0) { Zero(y, ys, T, r0, r1); return; }

            if (T < PackMinTokens)
            {
                // decode: stream each group of rows once, widening in registers
                bool scaled = typeof(TW) == typeof(F16x16) && FloatConvert.ScalesUpFinite(x.F32, (long)T * cols) && !HasSpecialHalves(w);
                // one token: 8 rows per tile (8 weight streams in flight, 8 independent FMA chains)
                int r8 = r0;
                if (T == 1)
                    for (; r8 + 8 <= rq; r8 += 8)
                        for (int kb = 0; kb < nFull; kb += KBlock)
                        {
                            int n = Math.Min(KBlock, nFull - kb);
                            byte* wp = w.Row(r8) + (long)kb * eb;
                            if (scaled) T8x1<F16Scaled16>(wp, wStride, x.F32 + kb, n, y + r8, kb == 0);
                            else T8x1<TW>(wp, wStride, x.F32 + kb, n, y + r8, kb == 0);
                        }
                for (int r = r8; r < rq; r += 4)
                    for (int kb = 0; kb < nFull; kb += KBlock)
                    {
                        int n = Math.Min(KBlock, nFull - kb);
                        byte* wp = w.Row(r) + (long)kb * eb;
                        float* xp = x.F32 + kb;
                        float* yp = y + r;
                        int t = 0;
                        bool first = kb == 0;
                        for (; t + 4 <= T; t += 4)
                            if (scaled) T4x4<F16Scaled16>(wp, wStride, xp + (long)t * cols, cols, n, yp + (long)t * ys, ys, first);
                            else T4x4<TW>(wp, wStride, xp + (long)t * cols, cols, n, yp + (long)t * ys, ys, first);
                        if (t + 2 <= T)
                        {
                            if (scaled) T4x2<F16Scaled16>(wp, wStride, xp + (long)t * cols, cols, n, yp + (long)t * ys, ys, first);
                            else T4x2<TW>(wp, wStride, xp + (long)t * cols, cols, n, yp + (long)t * ys, ys, first);
                            t += 2;
                        }
                        if (t < T)
                            if (scaled) T4x1<F16Scaled16>(wp, wStride, xp + (long)t * cols, n, yp + (long)t * ys, first);
                            else T4x1<TW>(wp, wStride, xp + (long)t * cols, n, yp + (long)t * ys, first);
                    }
            }
            else
            {
                // prefill: each group of 4 rows is widened once per token block and K-block into the panel and
                // multiplied with the block's tokens in 4×6 register tiles
                bool finite = typeof(TW) == typeof(F16x16) && !HasSpecialHalves(w);
                for (int tb = 0; tb < T; tb += TokenBlock)
                {
                    int te = Math.Min(T, tb + TokenBlock);
                    for (int kb = 0; kb < nFull; kb += KBlock)
                    {
                        int n = Math.Min(KBlock, nFull - kb);
                        for (int r = r0; r < rq; r += 4)
                        {
                            byte* wp;
                            long ws;
                            if (typeof(TW) == typeof(F32x16)) { wp = w.Row(r) + (long)kb * 4; ws = wStride; }
                            else
                            {
                                for (int i = 0; i < 4; i++)
                                {
                                    byte* src = w.Row(r + i) + (long)kb * eb;
                                    float* dst = panel + i * KBlock;
                                    if (finite) for (int k = 0; k < n; k += 16) F16Finite16.Load(src, k).Store(dst + k);
                                    else for (int k = 0; k < n; k += 16) TW.Load(src, k).Store(dst + k);
                                }
                                wp = (byte*)panel;
                                ws = KBlock * 4;
                            }
                            float* xp = x.F32 + kb;
                            float* yp = y + r;
                            bool first = kb == 0;
                            int t = tb;
                            for (; t + 6 <= te; t += 6) T4x6(wp, ws, xp + (long)t * cols, cols, n, yp + (long)t * ys, ys, first);
                            if (t + 4 <= te) { T4x4<F32x16>(wp, ws, xp + (long)t * cols, cols, n, yp + (long)t * ys, ys, first); t += 4; }
                            if (t + 2 <= te) { T4x2<F32x16>(wp, ws, xp + (long)t * cols, cols, n, yp + (long)t * ys, ys, first); t += 2; }
                            if (t < te) T4x1<F32x16>(wp, ws, xp + (long)t * cols, n, yp + (long)t * ys, first);
                        }
                    }
                }
            }
            // leftover rows (only at the end of the matrix: row ranges are split in multiples of 4)
            for (int r = rq; r < r1; r++)
                for (int t = 0; t < T; t++)
                {
                    byte* row = w.Row(r);
                    float* xt = x.F32 + (long)t * cols;
                    float total = 0;
                    for (int kb = 0; kb < nFull; kb += KBlock)
                    {
                        float part = T1x1<TW>(row + (long)kb * eb, xt + kb, Math.Min(KBlock, nFull - kb));
                        total = kb == 0 ? part : total + part;
                    }
                    y[(long)t * ys + r] = total;
                }
        }

        /// <summary>The 16-lane tree sums of four accumulators, in lanes 0..3.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector128<float> Reduce4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
        {
            // lanes i + lanes i+8 of each, two vectors per register: [a.lo+a.hi | b.lo+b.hi]
            var ab = Avx512F.Shuffle4x128(a, b, 0x44) + Avx512F.Shuffle4x128(a, b, 0xEE);
            var cd = Avx512F.Shuffle4x128(c, d, 0x44) + Avx512F.Shuffle4x128(c, d, 0xEE);
            // + lanes 4 apart: 128-bit lane j holds vector j's four b_i
            var s = Avx512F.Shuffle4x128(ab, cd, 0x88) + Avx512F.Shuffle4x128(ab, cd, 0xDD);
            s += Avx512F.Permute4x32(s, 0x4E);       // (b0 + b2), (b1 + b3)
            s += Avx512F.Permute4x32(s, 0xB1);       // (b0 + b2) + (b1 + b3)
            return Avx512F.PermuteVar16x32(s, Vector512.Create(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).GetLower().GetLower();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Store4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d, float* y, bool first)
        {
            var s = Reduce4(a, b, c, d);
            if (!first) s = Vector128.Load(y) + s;
            s.Store(y);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void T4x6(byte* w, long ws, float* x, long xs, int n, float* y, int ys, bool first)
        {
            Vector512<float> a00 = default, a10 = default, a20 = default, a30 = default;
            Vector512<float> a01 = default, a11 = default, a21 = default, a31 = default;
            Vector512<float> a02 = default, a12 = default, a22 = default, a32 = default;
            Vector512<float> a03 = default, a13 = default, a23 = default, a33 = default;
            Vector512<float> a04 = default, a14 = default, a24 = default, a34 = default;
            Vector512<float> a05 = default, a15 = default, a25 = default, a35 = default;
            float* w0 = (float*)w, w1 = (float*)(w + ws), w2 = (float*)(w + 2 * ws), w3 = (float*)(w + 3 * ws);
            float* x0 = x, x1 = x + xs, x2 = x + 2 * xs, x3 = x + 3 * xs, x4 = x + 4 * xs, x5 = x + 5 * xs;
            for (int k = 0; k < n; k += 16)
            {
                var v0 = Vector512.Load(x0 + k); var v1 = Vector512.Load(x1 + k); var v2 = Vector512.Load(x2 + k);
                var v3 = Vector512.Load(x3 + k); var v4 = Vector512.Load(x4 + k); var v5 = Vector512.Load(x5 + k);
                var wv = Vector512.Load(w0 + k);
                a00 = Avx512F.FusedMultiplyAdd(wv, v0, a00); a01 = Avx512F.FusedMultiplyAdd(wv, v1, a01); a02 = Avx512F.FusedMultiplyAdd(wv, v2, a02);
                a03 = Avx512F.FusedMultiplyAdd(wv, v3, a03); a04 = Avx512F.FusedMultiplyAdd(wv, v4, a04); a05 = Avx512F.FusedMultiplyAdd(wv, v5, a05);
                wv = Vector512.Load(w1 + k);
                a10 = Avx512F.FusedMultiplyAdd(wv, v0, a10); a11 = Avx512F.FusedMultiplyAdd(wv, v1, a11); a12 = Avx512F.FusedMultiplyAdd(wv, v2, a12);
                a13 = Avx512F.FusedMultiplyAdd(wv, v3, a13); a14 = Avx512F.FusedMultiplyAdd(wv, v4, a14); a15 = Avx512F.FusedMultiplyAdd(wv, v5, a15);
                wv = Vector512.Load(w2 + k);
                a20 = Avx512F.FusedMultiplyAdd(wv, v0, a20); a21 = Avx512F.FusedMultiplyAdd(wv, v1, a21); a22 = Avx512F.FusedMultiplyAdd(wv, v2, a22);
                a23 = Avx512F.FusedMultiplyAdd(wv, v3, a23); a24 = Avx512F.FusedMultiplyAdd(wv, v4, a24); a25 = Avx512F.FusedMultiplyAdd(wv, v5, a25);
                wv = Vector512.Load(w3 + k);
                a30 = Avx512F.FusedMultiplyAdd(wv, v0, a30); a31 = Avx512F.FusedMultiplyAdd(wv, v1, a31); a32 = Avx512F.FusedMultiplyAdd(wv, v2, a32);
                a33 = Avx512F.FusedMultiplyAdd(wv, v3, a33); a34 = Avx512F.FusedMultiplyAdd(wv, v4, a34); a35 = Avx512F.FusedMultiplyAdd(wv, v5, a35);
            }
            Store4(a00, a10, a20, a30, y, first);
            Store4(a01, a11, a21, a31, y + ys, first);
            Store4(a02, a12, a22, a32, y + 2 * ys, first);
            Store4(a03, a13, a23, a33, y + 3 * ys, first);
            Store4(a04, a14, a24, a34, y + 4 * ys, first);
            Store4(a05, a15, a25, a35, y + 5 * ys, first);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void T4x4<TW>(byte* w, long ws, float* x, long xs, int n, float* y, int ys, bool first) where TW : struct, IW16
        {
            Vector512<float> a00 = default, a10 = default, a20 = default, a30 = default;
            Vector512<float> a01 = default, a11 = default, a21 = default, a31 = default;
            Vector512<float> a02 = default, a12 = default, a22 = default, a32 = default;
            Vector512<float> a03 = default, a13 = default, a23 = default, a33 = default;
            byte* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws;
            float* x0 = x, x1 = x + xs, x2 = x + 2 * xs, x3 = x + 3 * xs;
            for (int k = 0; k < n; k += 16)
            {
                var v0 = TW.ScaleX(Vector512.Load(x0 + k)); var v1 = TW.ScaleX(Vector512.Load(x1 + k));
                var v2 = TW.ScaleX(Vector512.Load(x2 + k)); var v3 = TW.ScaleX(Vector512.Load(x3 + k));
                var wv = TW.Load(w0, k);
                a00 = Avx512F.FusedMultiplyAdd(wv, v0, a00); a01 = Avx512F.FusedMultiplyAdd(wv, v1, a01);
                a02 = Avx512F.FusedMultiplyAdd(wv, v2, a02); a03 = Avx512F.FusedMultiplyAdd(wv, v3, a03);
                wv = TW.Load(w1, k);
                a10 = Avx512F.FusedMultiplyAdd(wv, v0, a10); a11 = Avx512F.FusedMultiplyAdd(wv, v1, a11);
                a12 = Avx512F.FusedMultiplyAdd(wv, v2, a12); a13 = Avx512F.FusedMultiplyAdd(wv, v3, a13);
                wv = TW.Load(w2, k);
                a20 = Avx512F.FusedMultiplyAdd(wv, v0, a20); a21 = Avx512F.FusedMultiplyAdd(wv, v1, a21);
                a22 = Avx512F.FusedMultiplyAdd(wv, v2, a22); a23 = Avx512F.FusedMultiplyAdd(wv, v3, a23);
                wv = TW.Load(w3, k);
                a30 = Avx512F.FusedMultiplyAdd(wv, v0, a30); a31 = Avx512F.FusedMultiplyAdd(wv, v1, a31);
                a32 = Avx512F.FusedMultiplyAdd(wv, v2, a32); a33 = Avx512F.FusedMultiplyAdd(wv, v3, a33);
            }
            Store4(a00, a10, a20, a30, y, first);
            Store4(a01, a11, a21, a31, y + ys, first);
            Store4(a02, a12, a22, a32, y + 2 * ys, first);
            Store4(a03, a13, a23, a33, y + 3 * ys, first);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void T4x2<TW>(byte* w, long ws, float* x, long xs, int n, float* y, int ys, bool first) where TW : struct, IW16
        {
            Vector512<float> a00 = default, a10 = default, a20 = default, a30 = default;
            Vector512<float> a01 = default, a11 = default, a21 = default, a31 = default;
            byte* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws;
            float* x0 = x, x1 = x + xs;
            for (int k = 0; k < n; k += 16)
            {
                var v0 = TW.ScaleX(Vector512.Load(x0 + k)); var v1 = TW.ScaleX(Vector512.Load(x1 + k));
                var wv = TW.Load(w0, k);
                a00 = Avx512F.FusedMultiplyAdd(wv, v0, a00); a01 = Avx512F.FusedMultiplyAdd(wv, v1, a01);
                wv = TW.Load(w1, k);
                a10 = Avx512F.FusedMultiplyAdd(wv, v0, a10); a11 = Avx512F.FusedMultiplyAdd(wv, v1, a11);
                wv = TW.Load(w2, k);
                a20 = Avx512F.FusedMultiplyAdd(wv, v0, a20); a21 = Avx512F.FusedMultiplyAdd(wv, v1, a21);
                wv = TW.Load(w3, k);
                a30 = Avx512F.FusedMultiplyAdd(wv, v0, a30); a31 = Avx512F.FusedMultiplyAdd(wv, v1, a31);
            }
            Store4(a00, a10, a20, a30, y, first);
            Store4(a01, a11, a21, a31, y + ys, first);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void T8x1<TW>(byte* w, long ws, float* x, int n, float* y, bool first) where TW : struct, IW16
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            byte* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws, w4 = w + 4 * ws, w5 = w + 5 * ws, w6 = w + 6 * ws, w7 = w + 7 * ws;
            // 16 elements are 64 bytes of F32 or 32 of F16/BF16: prefetch each line of the next 8 rows once, so DRAM
            // reads overlap this tile's FMAs instead of waiting on latency
            int eb = typeof(TW) == typeof(F32x16) ? 4 : 2;
            long ahead = 8 * ws;
            for (int k = 0; k < n; k += 16)
            {
                if (((k * eb) & 63) == 0)
                {
                    Sse.Prefetch0(w0 + ahead + k * eb); Sse.Prefetch0(w1 + ahead + k * eb); Sse.Prefetch0(w2 + ahead + k * eb); Sse.Prefetch0(w3 + ahead + k * eb);
                    Sse.Prefetch0(w4 + ahead + k * eb); Sse.Prefetch0(w5 + ahead + k * eb); Sse.Prefetch0(w6 + ahead + k * eb); Sse.Prefetch0(w7 + ahead + k * eb);
                }
                var v = TW.ScaleX(Vector512.Load(x + k));
                a0 = Avx512F.FusedMultiplyAdd(TW.Load(w0, k), v, a0);
                a1 = Avx512F.FusedMultiplyAdd(TW.Load(w1, k), v, a1);
                a2 = Avx512F.FusedMultiplyAdd(TW.Load(w2, k), v, a2);
                a3 = Avx512F.FusedMultiplyAdd(TW.Load(w3, k), v, a3);
                a4 = Avx512F.FusedMultiplyAdd(TW.Load(w4, k), v, a4);
                a5 = Avx512F.FusedMultiplyAdd(TW.Load(w5, k), v, a5);
                a6 = Avx512F.FusedMultiplyAdd(TW.Load(w6, k), v, a6);
                a7 = Avx512F.FusedMultiplyAdd(TW.Load(w7, k), v, a7);
            }
            Store4(a0, a1, a2, a3, y, first);
            Store4(a4, a5, a6, a7, y + 4, first);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void T4x1<TW>(byte* w, long ws, float* x, int n, float* y, bool first) where TW : struct, IW16
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            byte* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws;
            for (int k = 0; k < n; k += 16)
            {
                var v = TW.ScaleX(Vector512.Load(x + k));
                a0 = Avx512F.FusedMultiplyAdd(TW.Load(w0, k), v, a0);
                a1 = Avx512F.FusedMultiplyAdd(TW.Load(w1, k), v, a1);
                a2 = Avx512F.FusedMultiplyAdd(TW.Load(w2, k), v, a2);
                a3 = Avx512F.FusedMultiplyAdd(TW.Load(w3, k), v, a3);
            }
            Store4(a0, a1, a2, a3, y, first);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static float T1x1<TW>(byte* w, float* x, int n) where TW : struct, IW16
        {
            var a = Vector512<float>.Zero;
            for (int k = 0; k < n; k += 16) a = Avx512F.FusedMultiplyAdd(TW.Load(w, k), Vector512.Load(x + k), a);
            return HorizontalSum(a);
        }
    }

    private static void Zero(float* y, int ys, int T, int r0, int r1)
    {
        for (int t = 0; t < T; t++)
            new Span<float>(y + (long)t * ys + r0, r1 - r0).Clear();
    }

    // ------------------------------------------------------------------------------------------------------------
    // AVX2 + FMA: a pair's 16 lanes in two 8-lane accumulators (lo = lanes 0-7, hi = lanes 8-15)

    private static class Avx2Path
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run<TW>(WeightMatrix w, in ActivationView x, float* y, int ys, int r0, int r1, float* panel) where TW : struct, IW8
        {
            int T = x.Tokens, cols = w.Cols, nFull = cols & ~15, eb = ElementBytes(w.Type);
            long wStride = w.RowBytes;
            int rq = r0 + (r1 - r0) / 4 * 4;
            if (nFull == 0) { Zero(y, ys, T, r0, r1); return; }

            if (T < PackMinTokens)
            {
                bool scaled = typeof(TW) == typeof(F16x8) && FloatConvert.ScalesUpFinite(x.F32, (long)T * cols) && !HasSpecialHalves(w);
                for (int r = r0; r < rq; r += 4)
                    for (int kb = 0; kb < nFull; kb += KBlock)
                    {
                        int n = Math.Min(KBlock, nFull - kb);
                        byte* wp = w.Row(r) + (long)kb * eb;
                        for (int t = 0; t < T; t++)
                        {
                            float* xp = x.F32 + (long)t * cols + kb, yp = y + (long)t * ys + r;
                            // the first token's pass fetches the rows two tiles on (the others find them in cache)
                            long ahead = t == 0 ? PrefetchRows * wStride : 0;
                            if (scaled) T4x1<F16Scaled8>(wp, wStride, xp, n, yp, kb == 0, ahead);
                            else T4x1<TW>(wp, wStride, xp, n, yp, kb == 0, ahead);
                        }
                    }
            }
            else
            {
                // prefill: each group of 3 rows is widened once per token block and K-block into the panel (F32
                // rows are used in place) and multiplied with the block's tokens in 3×2 register tiles: 12
                // accumulators (a pair's 16 lanes take two registers), 2 activation vectors and 1 weight vector
                // fill the 16 registers, and each activation load from L2 feeds three rows
                rq = r0 + (r1 - r0) / 3 * 3;
                for (int tb = 0; tb < T; tb += TokenBlock)
                {
                    int te = Math.Min(T, tb + TokenBlock);
                    for (int kb = 0; kb < nFull; kb += KBlock)
                    {
                        int n = Math.Min(KBlock, nFull - kb);
                        for (int r = r0; r < rq; r += 3)
                        {
                            float* wp;
                            long ws;
                            if (typeof(TW) == typeof(F32x8)) { wp = (float*)w.Row(r) + kb; ws = wStride / 4; }
                            else
                            {
                                for (int i = 0; i < 3; i++)
                                {
                                    byte* src = w.Row(r + i) + (long)kb * eb;
                                    float* dst = panel + i * KBlock;
                                    for (int k = 0; k < n; k += 8) TW.Load(src, k).Store(dst + k);
                                }
                                wp = panel;
                                ws = KBlock;
                            }
                            float* xp = x.F32 + kb;
                            float* yp = y + r;
                            bool first = kb == 0;
                            // the next group's rows of this K-block are fetched from memory while these tiles
                            // run (widening them would otherwise wait on DRAM, ~6% of the time at 128 tokens)
                            int rowLines = n * eb / 64, pfLines = r + 6 <= rq ? 3 * rowLines : 0, pf = 0;
                            int pfPerTile = (pfLines + (te - tb) / 2) / Math.Max(1, (te - tb) / 2);
                            int t = tb;
                            for (; t + 2 <= te; t += 2)
                            {
                                T3x2(wp, ws, xp + (long)t * cols, cols, n, yp + (long)t * ys, ys, first);
                                for (int j = 0; j < pfPerTile && pf < pfLines; j++, pf++)
                                    Sse.Prefetch0(w.Row(r + 3 + pf / rowLines) + (long)kb * eb + (pf % rowLines) * 64L);
                            }
                            if (t < te) T3x1(wp, ws, xp + (long)t * cols, n, yp + (long)t * ys, first);
                        }
                    }
                }
            }
            for (int r = rq; r < r1; r++)
                for (int t = 0; t < T; t++)
                {
                    byte* row = w.Row(r);
                    float* xt = x.F32 + (long)t * cols;
                    float total = 0;
                    for (int kb = 0; kb < nFull; kb += KBlock)
                    {
                        float part = T1x1<TW>(row + (long)kb * eb, xt + kb, Math.Min(KBlock, nFull - kb));
                        total = kb == 0 ? part : total + part;
                    }
                    y[(long)t * ys + r] = total;
                }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Put(float* y, Vector256<float> lo, Vector256<float> hi, bool first)
        {
            float s = HorizontalSum(lo + hi);
            *y = first ? s : *y + s;
        }

        /// <summary>Rows ahead that the decode tile prefetches (two tiles on): with short rows (896 columns of F16 are
        /// 28 cache lines) the hardware prefetcher alone left the tile waiting on DRAM for every new row.</summary>
        private const int PrefetchRows = 8;

        /// <summary>4 rows × 1 token. <paramref name="ahead"/> ≠ 0: also prefetches each cache line of the rows that far
        /// on, at the same columns.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void T4x1<TW>(byte* w, long ws, float* x, int n, float* y, bool first, long ahead = 0) where TW : struct, IW8
        {
            Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
            byte* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws;
            int eb = typeof(TW) == typeof(F32x8) ? 4 : 2;   // 16 elements: 64 bytes of F32, 32 of F16/BF16
            for (int k = 0; k < n; k += 16)
            {
                if (ahead != 0 && ((k * eb) & 63) == 0)
                {
                    long o = ahead + (long)k * eb;
                    Sse.Prefetch0(w0 + o); Sse.Prefetch0(w1 + o); Sse.Prefetch0(w2 + o); Sse.Prefetch0(w3 + o);
                }
                var lo = TW.ScaleX(Vector256.Load(x + k)); var hi = TW.ScaleX(Vector256.Load(x + k + 8));
                a0 = Fma.MultiplyAdd(TW.Load(w0, k), lo, a0); b0 = Fma.MultiplyAdd(TW.Load(w0, k + 8), hi, b0);
                a1 = Fma.MultiplyAdd(TW.Load(w1, k), lo, a1); b1 = Fma.MultiplyAdd(TW.Load(w1, k + 8), hi, b1);
                a2 = Fma.MultiplyAdd(TW.Load(w2, k), lo, a2); b2 = Fma.MultiplyAdd(TW.Load(w2, k + 8), hi, b2);
                a3 = Fma.MultiplyAdd(TW.Load(w3, k), lo, a3); b3 = Fma.MultiplyAdd(TW.Load(w3, k + 8), hi, b3);
            }
            Put(y, a0, b0, first); Put(y + 1, a1, b1, first); Put(y + 2, a2, b2, first); Put(y + 3, a3, b3, first);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void T3x2(float* w, long ws, float* x, long xs, int n, float* y, int ys, bool first)
        {
            Vector256<float> a00 = default, b00 = default, a01 = default, b01 = default;
            Vector256<float> a10 = default, b10 = default, a11 = default, b11 = default;
            Vector256<float> a20 = default, b20 = default, a21 = default, b21 = default;
            float* w0 = w, w1 = w + ws, w2 = w + 2 * ws;
            float* x0 = x, x1 = x + xs;
            for (int k = 0; k < n; k += 16)
            {
                var l0 = Vector256.Load(x0 + k); var l1 = Vector256.Load(x1 + k);
                var wv = Vector256.Load(w0 + k);
                a00 = Fma.MultiplyAdd(wv, l0, a00); a01 = Fma.MultiplyAdd(wv, l1, a01);
                wv = Vector256.Load(w1 + k);
                a10 = Fma.MultiplyAdd(wv, l0, a10); a11 = Fma.MultiplyAdd(wv, l1, a11);
                wv = Vector256.Load(w2 + k);
                a20 = Fma.MultiplyAdd(wv, l0, a20); a21 = Fma.MultiplyAdd(wv, l1, a21);
                var h0 = Vector256.Load(x0 + k + 8); var h1 = Vector256.Load(x1 + k + 8);
                wv = Vector256.Load(w0 + k + 8);
                b00 = Fma.MultiplyAdd(wv, h0, b00); b01 = Fma.MultiplyAdd(wv, h1, b01);
                wv = Vector256.Load(w1 + k + 8);
                b10 = Fma.MultiplyAdd(wv, h0, b10); b11 = Fma.MultiplyAdd(wv, h1, b11);
                wv = Vector256.Load(w2 + k + 8);
                b20 = Fma.MultiplyAdd(wv, h0, b20); b21 = Fma.MultiplyAdd(wv, h1, b21);
            }
            Put(y, a00, b00, first); Put(y + 1, a10, b10, first); Put(y + 2, a20, b20, first);
            Put(y + ys, a01, b01, first); Put(y + ys + 1, a11, b11, first); Put(y + ys + 2, a21, b21, first);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void T3x1(float* w, long ws, float* x, int n, float* y, bool first)
        {
            Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default;
            float* w0 = w, w1 = w + ws, w2 = w + 2 * ws;
            for (int k = 0; k < n; k += 16)
            {
                var lo = Vector256.Load(x + k); var hi = Vector256.Load(x + k + 8);
                a0 = Fma.MultiplyAdd(Vector256.Load(w0 + k), lo, a0); b0 = Fma.MultiplyAdd(Vector256.Load(w0 + k + 8), hi, b0);
                a1 = Fma.MultiplyAdd(Vector256.Load(w1 + k), lo, a1); b1 = Fma.MultiplyAdd(Vector256.Load(w1 + k + 8), hi, b1);
                a2 = Fma.MultiplyAdd(Vector256.Load(w2 + k), lo, a2); b2 = Fma.MultiplyAdd(Vector256.Load(w2 + k + 8), hi, b2);
            }
            Put(y, a0, b0, first); Put(y + 1, a1, b1, first); Put(y + 2, a2, b2, first);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static float T1x1<TW>(byte* w, float* x, int n) where TW : struct, IW8
        {
            Vector256<float> a = default, b = default;
            for (int k = 0; k < n; k += 16)
            {
                a = Fma.MultiplyAdd(TW.Load(w, k), Vector256.Load(x + k), a);
                b = Fma.MultiplyAdd(TW.Load(w, k + 8), Vector256.Load(x + k + 8), b);
            }
            return HorizontalSum(a + b);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // portable (Vector128, e.g. NEON): a pair's 16 lanes in four 4-lane accumulators, rows widened in registers

    private static class PortablePath
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run<TW>(WeightMatrix w, in ActivationView x, float* y, int ys, int r0, int r1) where TW : struct, IW4
        {
            int T = x.Tokens, cols = w.Cols, nFull = cols & ~15, eb = ElementBytes(w.Type);
            if (nFull == 0) { Zero(y, ys, T, r0, r1); return; }
            for (int r = r0; r < r1; r++)
                for (int kb = 0; kb < nFull; kb += KBlock)
                {
                    int n = Math.Min(KBlock, nFull - kb);
                    byte* wp = w.Row(r) + (long)kb * eb;
                    for (int t = 0; t < T; t++)
                    {
                        float s = T1x1<TW>(wp, x.F32 + (long)t * cols + kb, n);
                        float* yp = y + (long)t * ys + r;
                        *yp = kb == 0 ? s : *yp + s;
                    }
                }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static float T1x1<TW>(byte* w, float* x, int n) where TW : struct, IW4
        {
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int k = 0; k < n; k += 16)
            {
                a0 = Vector128.FusedMultiplyAdd(TW.Load(w, k), Vector128.Load(x + k), a0);
                a1 = Vector128.FusedMultiplyAdd(TW.Load(w, k + 4), Vector128.Load(x + k + 4), a1);
                a2 = Vector128.FusedMultiplyAdd(TW.Load(w, k + 8), Vector128.Load(x + k + 8), a2);
                a3 = Vector128.FusedMultiplyAdd(TW.Load(w, k + 12), Vector128.Load(x + k + 12), a3);
            }
            var h = (a0 + a2) + (a1 + a3);
            return (h.GetElement(0) + h.GetElement(2)) + (h.GetElement(1) + h.GetElement(3));
        }
    }
}
