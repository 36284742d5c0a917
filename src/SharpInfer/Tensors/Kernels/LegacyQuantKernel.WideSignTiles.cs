using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// The 16-row tiles in 512-bit vectors for the <see cref="SignDot"/> formats (Q8_0, IQ4_NL) on AVX-512 CPUs that .NET
/// gives no VNNI (Zen 4, Ice Lake and Cascade Lake servers: AVX512-VNNI in hardware, but .NET 10 exposes vpdpbusd
/// only as VEX AVX-VNNI, which they lack). There the 256-bit tile spends four instructions per 32 products
/// (vpsignb, vpmaddubsw, vpmaddwd, vpaddd), and vpsignb, which has no EVEX form, is slow on Zen 4 and makes the JIT
/// copy its operands into the low 16 registers. Here one zmm covers the group's 16 rows × 4 columns (the packed
/// layout's two 32-byte vectors side by side) and sign(x, q) becomes a select between x and −x under the mask q &lt; 0
/// (vpblendmb; the mask is taken once per weight vector for all the tile's tokens, −x once per tile): four
/// instructions per 64 products. Zen 4, C loops of the bare sequences on one core: 73 G multiply-adds a second for the
/// 256-bit one, 110 G for this one; pp512 of a Q8_0 model ~1.1× (docs/benchmarks.md, "Zen 4").
/// </summary>
/// <remarks>
/// Bit-identical to <c>Gemm16&lt;TN&gt;</c>: the integer sums are exact either way (where q = 0 the sign trick zeroes x
/// and this keeps it, but |q| = 0 makes the product 0), and each lane's float steps are the same — (d_w·d_x)·float(sum)
/// + f, per block in order. Lanes 0–7 are the group's rows 0–7, lanes 8–15 rows 8–15, as the two 256-bit halves were.
/// </remarks>
internal static unsafe partial class LegacyQuantKernel<TF> where TF : struct, ILegacyBlockFormat
{
    /// <summary>The 16-row tiles run in 512-bit vectors (see the class remarks): sign-trick formats without a block
    /// minimum on a CPU with AVX-512BW (the only level whose packed groups have 16 rows).</summary>
    private static bool WideSignDot { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => SignDot && !TF.HasMin && Avx512BW.IsSupported; }

    /// <summary>Tokens per tile of <see cref="Gemm16Wide{TN}"/>: its 8 int and 8 float accumulators, the weight vector,
    /// its magnitude and two broadcasts fit the 32 zmm registers, and the per-step work on the weight vector (load,
    /// magnitude, sign mask) is shared by twice the tokens of the 256-bit tile.</summary>
    public const int WideTileTokens = 8;

    /// <summary>All <paramref name="T"/> tokens of one packed 16-row group: <see cref="Gemm16Wide{TN}"/> tiles of up to
    /// <see cref="WideTileTokens"/> where <see cref="WideSignDot"/>, else <c>Gemm16&lt;TN&gt;</c> tiles of 4 and the rest.
    /// <paramref name="negated"/>: room for <see cref="WideTileTokens"/>·cols bytes.</summary>
    private static void Group16(byte* pack, sbyte* negated, in ActivationView x, int T, int nb, float* y, int yStride, int n)
    {
        int t = 0;
        if (WideSignDot)
        {
            for (; t + WideTileTokens <= T; t += WideTileTokens) Gemm16Wide<Eight>(pack, negated, x, t, nb, y + (long)t * yStride, yStride, n);
            float* yt = y + (long)t * yStride;
            switch (T - t)
            {
                case 7: Gemm16Wide<Seven>(pack, negated, x, t, nb, yt, yStride, n); break;
                case 6: Gemm16Wide<Six>(pack, negated, x, t, nb, yt, yStride, n); break;
                case 5: Gemm16Wide<Five>(pack, negated, x, t, nb, yt, yStride, n); break;
                case 4: Gemm16Wide<Four>(pack, negated, x, t, nb, yt, yStride, n); break;
                case 3: Gemm16Wide<Three>(pack, negated, x, t, nb, yt, yStride, n); break;
                case 2: Gemm16Wide<Two>(pack, negated, x, t, nb, yt, yStride, n); break;
                case 1: Gemm16Wide<One>(pack, negated, x, t, nb, yt, yStride, n); break;
            }
            return;
        }
        for (; t + 4 <= T; t += 4) Gemm16<Four>(pack, x, t, nb, y + (long)t * yStride, yStride, n);
        Rest16(pack, x, t, T - t, nb, y + (long)t * yStride, yStride, n);
    }

    /// <summary><c>Gemm16&lt;TN&gt;</c> in 512-bit vectors for <see cref="WideSignDot"/>: per block, 8 steps of one weight
    /// vector (16 rows × 4 columns) × TN (1–8) broadcast activation dwords.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Gemm16Wide<TN>(byte* pack, sbyte* negated, in ActivationView x, int t, int nb, float* y, int yStride, int n) where TN : struct, ITokenCount
    {
        long cols = x.Cols;
        sbyte* xp = x.Q + t * cols, np = negated;
        float* dp = x.D + (long)t * nb;
        // −x of the tile's tokens, once per tile (~1% of its work): the steps then select x or −x in one instruction
        for (long i = 0; i < TN.Count * cols; i += 32)
            (-Vector256.Load(xp + i)).Store(np + i);
        int stride = PackStride * 2;
        var ones = Vector512.Create((short)1);
        Vector512<float> f0 = default, f1 = default, f2 = default, f3 = default, f4 = default, f5 = default, f6 = default, f7 = default;
        for (int b = 0; b < nb; b++, xp += 32, np += 32)
        {
            byte* pb = pack + (long)b * stride;
            Vector512<int> i0 = default, i1 = default, i2 = default, i3 = default, i4 = default, i5 = default, i6 = default, i7 = default;
            for (int k = 0; k < 8; k++)
            {
                var q = Vector512.Load((sbyte*)pb + 64 * k);
                var magnitude = Avx512BW.Abs(q);
                var negative = Vector512.LessThan(q, Vector512<sbyte>.Zero);
                sbyte* xk = xp + 4 * k, nk = np + 4 * k;
                i0 = SelectedSignDot(i0, magnitude, negative, Bcast4Wide(xk), Bcast4Wide(nk), ones);
                if (TN.Count > 1) i1 = SelectedSignDot(i1, magnitude, negative, Bcast4Wide(xk + cols), Bcast4Wide(nk + cols), ones);
                if (TN.Count > 2) i2 = SelectedSignDot(i2, magnitude, negative, Bcast4Wide(xk + 2 * cols), Bcast4Wide(nk + 2 * cols), ones);
                if (TN.Count > 3) i3 = SelectedSignDot(i3, magnitude, negative, Bcast4Wide(xk + 3 * cols), Bcast4Wide(nk + 3 * cols), ones);
                if (TN.Count > 4) i4 = SelectedSignDot(i4, magnitude, negative, Bcast4Wide(xk + 4 * cols), Bcast4Wide(nk + 4 * cols), ones);
                if (TN.Count > 5) i5 = SelectedSignDot(i5, magnitude, negative, Bcast4Wide(xk + 5 * cols), Bcast4Wide(nk + 5 * cols), ones);
                if (TN.Count > 6) i6 = SelectedSignDot(i6, magnitude, negative, Bcast4Wide(xk + 6 * cols), Bcast4Wide(nk + 6 * cols), ones);
                if (TN.Count > 7) i7 = SelectedSignDot(i7, magnitude, negative, Bcast4Wide(xk + 7 * cols), Bcast4Wide(nk + 7 * cols), ones);
            }
            var dw = Vector512.Load((float*)(pb + 512));
            f0 = Avx512F.FusedMultiplyAdd(dw * Vector512.Create(dp[b]), Avx512F.ConvertToVector512Single(i0), f0);
            if (TN.Count > 1) f1 = Avx512F.FusedMultiplyAdd(dw * Vector512.Create(dp[b + 1 * nb]), Avx512F.ConvertToVector512Single(i1), f1);
            if (TN.Count > 2) f2 = Avx512F.FusedMultiplyAdd(dw * Vector512.Create(dp[b + 2 * nb]), Avx512F.ConvertToVector512Single(i2), f2);
            if (TN.Count > 3) f3 = Avx512F.FusedMultiplyAdd(dw * Vector512.Create(dp[b + 3 * nb]), Avx512F.ConvertToVector512Single(i3), f3);
            if (TN.Count > 4) f4 = Avx512F.FusedMultiplyAdd(dw * Vector512.Create(dp[b + 4 * nb]), Avx512F.ConvertToVector512Single(i4), f4);
            if (TN.Count > 5) f5 = Avx512F.FusedMultiplyAdd(dw * Vector512.Create(dp[b + 5 * nb]), Avx512F.ConvertToVector512Single(i5), f5);
            if (TN.Count > 6) f6 = Avx512F.FusedMultiplyAdd(dw * Vector512.Create(dp[b + 6 * nb]), Avx512F.ConvertToVector512Single(i6), f6);
            if (TN.Count > 7) f7 = Avx512F.FusedMultiplyAdd(dw * Vector512.Create(dp[b + 7 * nb]), Avx512F.ConvertToVector512Single(i7), f7);
        }
        Store16(f0, y, n);
        if (TN.Count > 1) Store16(f1, y + 1L * yStride, n);
        if (TN.Count > 2) Store16(f2, y + 2L * yStride, n);
        if (TN.Count > 3) Store16(f3, y + 3L * yStride, n);
        if (TN.Count > 4) Store16(f4, y + 4L * yStride, n);
        if (TN.Count > 5) Store16(f5, y + 5L * yStride, n);
        if (TN.Count > 6) Store16(f6, y + 6L * yStride, n);
        if (TN.Count > 7) Store16(f7, y + 7L * yStride, n);
    }

    /// <summary>acc + Σ over each 4 bytes of q·x as |q|·(q &lt; 0 ? −x : x), −x given: pair sums at most 2·128·127, exact in int16. One expression (see
    /// <see cref="DotPacked"/> on why).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> SelectedSignDot(Vector512<int> acc, Vector512<byte> magnitude, Vector512<sbyte> negative, Vector512<sbyte> x,
                                                  Vector512<sbyte> minusX, Vector512<short> ones) =>
        Avx512BW.Add(acc, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(magnitude, Avx512BW.BlendVariable(x, minusX, negative)), ones));

    /// <summary>4 activation bytes broadcast to every dword of a 512-bit vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<sbyte> Bcast4Wide(sbyte* p) => Vector512.Create(*(int*)p).AsSByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store16(Vector512<float> v, float* y, int n)
    {
        if (n == 16) { v.Store(y); return; }
        for (int i = 0; i < n; i++) y[i] = v.GetElement(i);
    }
}
