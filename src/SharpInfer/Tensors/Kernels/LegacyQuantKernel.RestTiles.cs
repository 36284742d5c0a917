using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// The tiles for the 1–3 tokens left after the 4-token tiles (speculative verification runs 2–8 tokens, rarely a
/// multiple of 4): each weight vector is loaded (and, under <see cref="SignDot"/>, its magnitude taken) once for all
/// of them, instead of once per token. The 8-row ones are written from the 4-token tile with the lines of the missing
/// tokens left out; the 16-row ones are the 4-token tile's own body (<c>Gemm16&lt;TN&gt;</c>) compiled per count. Either
/// way every (row, token) pair goes through the same operations in the same order as in the 4-token tile: outputs do
/// not depend on how the tokens were split into tiles.
/// </summary>
internal static unsafe partial class LegacyQuantKernel<TF> where TF : struct, ILegacyBlockFormat
{
    /// <summary>The <paramref name="count"/> (0–3) tokens from <paramref name="t"/> of an 8-row group.</summary>
    private static void Rest8(byte* pack, in ActivationView x, int t, int count, int nb, float* y, int yStride, int n)
    {
        switch (count)
        {
            case 3: Gemm8x3(pack, x, t, nb, y, yStride, n); break;
            case 2: Gemm8x2(pack, x, t, nb, y, yStride, n); break;
            case 1: Gemm8x1(pack, x, t, nb, y, yStride, n); break;
        }
    }

    /// <summary>A tile's token count as a type, so each count of <c>Gemm16&lt;TN&gt;</c> is compiled with its constant.</summary>
    private interface ITokenCount { static abstract int Count { get; } }
    private struct One : ITokenCount { public static int Count => 1; }
    private struct Two : ITokenCount { public static int Count => 2; }
    private struct Three : ITokenCount { public static int Count => 3; }
    private struct Four : ITokenCount { public static int Count => 4; }
    private struct Five : ITokenCount { public static int Count => 5; }
    private struct Six : ITokenCount { public static int Count => 6; }
    private struct Seven : ITokenCount { public static int Count => 7; }
    private struct Eight : ITokenCount { public static int Count => 8; }

    /// <summary>The <paramref name="count"/> (0–3) tokens from <paramref name="t"/> of a 16-row group.</summary>
    private static void Rest16(byte* pack, in ActivationView x, int t, int count, int nb, float* y, int yStride, int n)
    {
        switch (count)
        {
            case 3: Gemm16<Three>(pack, x, t, nb, y, yStride, n); break;
            case 2: Gemm16<Two>(pack, x, t, nb, y, yStride, n); break;
            case 1: Gemm16<One>(pack, x, t, nb, y, yStride, n); break;
        }
    }

    /// <summary>8 repacked rows × 3 tokens (the rest after 4-token tiles): per block, 8 steps of 1 weight vector × 3 broadcast activation dwords.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Gemm8x3(byte* pack, in ActivationView x, int t, int nb, float* y, int yStride, int n)
    {
        long cols = x.Cols;
        sbyte* xp = x.Q + t * cols;
        float* dp = x.D + (long)t * nb;
        float* sp = x.S + (long)t * nb;
        int* cp = x.Sums + (long)t * nb;
        int stride = PackStride * 1;
        Vector256<float> f00 = default, f01 = default, f02 = default;
        for (int b = 0; b < nb; b++, xp += 32)
        {
            byte* pb = pack + (long)b * stride;
            var i00 = Seed(cp, b);
            var i01 = Seed(cp, b + 1 * nb);
            var i02 = Seed(cp, b + 2 * nb);
            var w00 = Vector256.Load(pb + 0);
            var m00 = Magnitude(w00);
            var x00 = Bcast4(xp + 0);
            i00 = DotPacked(i00, w00, m00, x00);
            var x10 = Bcast4(xp + 1 * cols + 0);
            i01 = DotPacked(i01, w00, m00, x10);
            var x20 = Bcast4(xp + 2 * cols + 0);
            i02 = DotPacked(i02, w00, m00, x20);
            var w01 = Vector256.Load(pb + 32);
            var m01 = Magnitude(w01);
            var x01 = Bcast4(xp + 4);
            i00 = DotPacked(i00, w01, m01, x01);
            var x11 = Bcast4(xp + 1 * cols + 4);
            i01 = DotPacked(i01, w01, m01, x11);
            var x21 = Bcast4(xp + 2 * cols + 4);
            i02 = DotPacked(i02, w01, m01, x21);
            var w02 = Vector256.Load(pb + 64);
            var m02 = Magnitude(w02);
            var x02 = Bcast4(xp + 8);
            i00 = DotPacked(i00, w02, m02, x02);
            var x12 = Bcast4(xp + 1 * cols + 8);
            i01 = DotPacked(i01, w02, m02, x12);
            var x22 = Bcast4(xp + 2 * cols + 8);
            i02 = DotPacked(i02, w02, m02, x22);
            var w03 = Vector256.Load(pb + 96);
            var m03 = Magnitude(w03);
            var x03 = Bcast4(xp + 12);
            i00 = DotPacked(i00, w03, m03, x03);
            var x13 = Bcast4(xp + 1 * cols + 12);
            i01 = DotPacked(i01, w03, m03, x13);
            var x23 = Bcast4(xp + 2 * cols + 12);
            i02 = DotPacked(i02, w03, m03, x23);
            var w04 = Vector256.Load(pb + 128);
            var m04 = Magnitude(w04);
            var x04 = Bcast4(xp + 16);
            i00 = DotPacked(i00, w04, m04, x04);
            var x14 = Bcast4(xp + 1 * cols + 16);
            i01 = DotPacked(i01, w04, m04, x14);
            var x24 = Bcast4(xp + 2 * cols + 16);
            i02 = DotPacked(i02, w04, m04, x24);
            var w05 = Vector256.Load(pb + 160);
            var m05 = Magnitude(w05);
            var x05 = Bcast4(xp + 20);
            i00 = DotPacked(i00, w05, m05, x05);
            var x15 = Bcast4(xp + 1 * cols + 20);
            i01 = DotPacked(i01, w05, m05, x15);
            var x25 = Bcast4(xp + 2 * cols + 20);
            i02 = DotPacked(i02, w05, m05, x25);
            var w06 = Vector256.Load(pb + 192);
            var m06 = Magnitude(w06);
            var x06 = Bcast4(xp + 24);
            i00 = DotPacked(i00, w06, m06, x06);
            var x16 = Bcast4(xp + 1 * cols + 24);
            i01 = DotPacked(i01, w06, m06, x16);
            var x26 = Bcast4(xp + 2 * cols + 24);
            i02 = DotPacked(i02, w06, m06, x26);
            var w07 = Vector256.Load(pb + 224);
            var m07 = Magnitude(w07);
            var x07 = Bcast4(xp + 28);
            i00 = DotPacked(i00, w07, m07, x07);
            var x17 = Bcast4(xp + 1 * cols + 28);
            i01 = DotPacked(i01, w07, m07, x17);
            var x27 = Bcast4(xp + 2 * cols + 28);
            i02 = DotPacked(i02, w07, m07, x27);
            var dw0 = Vector256.Load((float*)(pb + 256));
            var dx0 = Vector256.Create(dp[b]);
            f00 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx0), Avx.ConvertToVector256Single(i00), f00);
            var dx1 = Vector256.Create(dp[b + 1 * nb]);
            f01 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx1), Avx.ConvertToVector256Single(i01), f01);
            var dx2 = Vector256.Create(dp[b + 2 * nb]);
            f02 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx2), Avx.ConvertToVector256Single(i02), f02);
            if (TF.HasMin)
            {
                var m0 = Vector256.Load((float*)(pb + 288));
                var sx0 = Vector256.Create(sp[b]);
                f00 = Fma.MultiplyAdd(m0, sx0, f00);
                var sx1 = Vector256.Create(sp[b + 1 * nb]);
                f01 = Fma.MultiplyAdd(m0, sx1, f01);
                var sx2 = Vector256.Create(sp[b + 2 * nb]);
                f02 = Fma.MultiplyAdd(m0, sx2, f02);
            }
        }
        Store8(f00, y, n);
        Store8(f01, y + 1L * yStride, n);
        Store8(f02, y + 2L * yStride, n);
    }

    /// <summary>8 repacked rows × 2 tokens (the rest after 4-token tiles): per block, 8 steps of 1 weight vector × 2 broadcast activation dwords.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Gemm8x2(byte* pack, in ActivationView x, int t, int nb, float* y, int yStride, int n)
    {
        long cols = x.Cols;
        sbyte* xp = x.Q + t * cols;
        float* dp = x.D + (long)t * nb;
        float* sp = x.S + (long)t * nb;
        int* cp = x.Sums + (long)t * nb;
        int stride = PackStride * 1;
        Vector256<float> f00 = default, f01 = default;
        for (int b = 0; b < nb; b++, xp += 32)
        {
            byte* pb = pack + (long)b * stride;
            var i00 = Seed(cp, b);
            var i01 = Seed(cp, b + 1 * nb);
            var w00 = Vector256.Load(pb + 0);
            var m00 = Magnitude(w00);
            var x00 = Bcast4(xp + 0);
            i00 = DotPacked(i00, w00, m00, x00);
            var x10 = Bcast4(xp + 1 * cols + 0);
            i01 = DotPacked(i01, w00, m00, x10);
            var w01 = Vector256.Load(pb + 32);
            var m01 = Magnitude(w01);
            var x01 = Bcast4(xp + 4);
            i00 = DotPacked(i00, w01, m01, x01);
            var x11 = Bcast4(xp + 1 * cols + 4);
            i01 = DotPacked(i01, w01, m01, x11);
            var w02 = Vector256.Load(pb + 64);
            var m02 = Magnitude(w02);
            var x02 = Bcast4(xp + 8);
            i00 = DotPacked(i00, w02, m02, x02);
            var x12 = Bcast4(xp + 1 * cols + 8);
            i01 = DotPacked(i01, w02, m02, x12);
            var w03 = Vector256.Load(pb + 96);
            var m03 = Magnitude(w03);
            var x03 = Bcast4(xp + 12);
            i00 = DotPacked(i00, w03, m03, x03);
            var x13 = Bcast4(xp + 1 * cols + 12);
            i01 = DotPacked(i01, w03, m03, x13);
            var w04 = Vector256.Load(pb + 128);
            var m04 = Magnitude(w04);
            var x04 = Bcast4(xp + 16);
            i00 = DotPacked(i00, w04, m04, x04);
            var x14 = Bcast4(xp + 1 * cols + 16);
            i01 = DotPacked(i01, w04, m04, x14);
            var w05 = Vector256.Load(pb + 160);
            var m05 = Magnitude(w05);
            var x05 = Bcast4(xp + 20);
            i00 = DotPacked(i00, w05, m05, x05);
            var x15 = Bcast4(xp + 1 * cols + 20);
            i01 = DotPacked(i01, w05, m05, x15);
            var w06 = Vector256.Load(pb + 192);
            var m06 = Magnitude(w06);
            var x06 = Bcast4(xp + 24);
            i00 = DotPacked(i00, w06, m06, x06);
            var x16 = Bcast4(xp + 1 * cols + 24);
            i01 = DotPacked(i01, w06, m06, x16);
            var w07 = Vector256.Load(pb + 224);
            var m07 = Magnitude(w07);
            var x07 = Bcast4(xp + 28);
            i00 = DotPacked(i00, w07, m07, x07);
            var x17 = Bcast4(xp + 1 * cols + 28);
            i01 = DotPacked(i01, w07, m07, x17);
            var dw0 = Vector256.Load((float*)(pb + 256));
            var dx0 = Vector256.Create(dp[b]);
            f00 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx0), Avx.ConvertToVector256Single(i00), f00);
            var dx1 = Vector256.Create(dp[b + 1 * nb]);
            f01 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx1), Avx.ConvertToVector256Single(i01), f01);
            if (TF.HasMin)
            {
                var m0 = Vector256.Load((float*)(pb + 288));
                var sx0 = Vector256.Create(sp[b]);
                f00 = Fma.MultiplyAdd(m0, sx0, f00);
                var sx1 = Vector256.Create(sp[b + 1 * nb]);
                f01 = Fma.MultiplyAdd(m0, sx1, f01);
            }
        }
        Store8(f00, y, n);
        Store8(f01, y + 1L * yStride, n);
    }

}
