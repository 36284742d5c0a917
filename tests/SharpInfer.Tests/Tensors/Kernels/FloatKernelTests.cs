using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tensors.Kernels;

namespace SharpInfer.Tests.Tensors.Kernels;

/// <summary>
/// The float-weight kernel and the vectorized half/bfloat16 conversions: every instruction path gives exactly the
/// scalar arithmetic (the kernel's per-pair definition, <see cref="FloatKernel.DotScalar"/>), for every token count
/// (decode tiles, packed prefill tiles, token blocks) and row range.
/// </summary>
public unsafe class FloatKernelTests
{
    [Fact]
    public void EveryHalfWidensExactlyOnEveryPath()
    {
        var src = new ushort[65536 + 7];
        for (int i = 0; i < src.Length; i++) src[i] = (ushort)(i * 40503 + 11);   // odd multiplier: all 65536 values
        var dst = new float[src.Length];
        foreach (var level in KernelHarness.Levels())
        {
            fixed (ushort* s = src) fixed (float* d = dst) FloatConvert.HalfToSingle(s, d, src.Length, level);
            for (int i = 0; i < src.Length; i++)
            {
                uint got = BitConverter.SingleToUInt32Bits(dst[i]), want = BitConverter.SingleToUInt32Bits(Fp16.ToFloat(src[i]));
                Assert.True(got == want, $"{level}: half 0x{src[i]:X4} → 0x{got:X8}, want 0x{want:X8}");
            }
        }
    }

    [Fact]
    public void EveryBf16WidensExactlyOnEveryPath()
    {
        var src = new ushort[65536 + 5];
        for (int i = 0; i < src.Length; i++) src[i] = (ushort)i;
        var dst = new float[src.Length];
        foreach (var level in KernelHarness.Levels())
        {
            fixed (ushort* s = src) fixed (float* d = dst) FloatConvert.Bf16ToSingle(s, d, src.Length, level);
            for (int i = 0; i < src.Length; i++)
                Assert.Equal(BitConverter.SingleToUInt32Bits(Bf16.ToFloat(src[i])), BitConverter.SingleToUInt32Bits(dst[i]));
        }
    }

    /// <summary>Float → half on every path equals <see cref="Fp16.FromFloat"/> for all sign/exponent/high-mantissa
    /// patterns combined with low-mantissa patterns around the rounding point (ties, just above, just below),
    /// which covers normal, subnormal, overflow, infinity and NaN inputs.</summary>
    [Fact]
    public void FloatsNarrowToHalfLikeTheScalarConversionOnEveryPath()
    {
        uint[] lows = [0, 1, 0xFFF, 0x1000, 0x1001, 0x1FFF, 0x0800, 0x17FF, 0x1800];
        var rng = new Random(3);
        int n = (1 << 19) * (lows.Length + 1) + 13;
        var src = new float[n];
        int j = 0;
        for (uint hi = 0; hi < 1u << 19; hi++)
        {
            foreach (var lo in lows) src[j++] = BitConverter.UInt32BitsToSingle(hi << 13 | lo);
            src[j++] = BitConverter.UInt32BitsToSingle(hi << 13 | (uint)rng.Next(0x2000));
        }
        while (j < n) src[j++] = (float)rng.NextDouble();
        var dst = new ushort[n];
        foreach (var level in KernelHarness.Levels())
        {
            Array.Clear(dst);
            fixed (float* s = src) fixed (ushort* d = dst) FloatConvert.SingleToHalf(s, d, n, level);
            for (int i = 0; i < n; i++)
            {
                ushort want = Fp16.FromFloat(src[i]);
                Assert.True(dst[i] == want, $"{level}: 0x{BitConverter.SingleToUInt32Bits(src[i]):X8} → 0x{dst[i]:X4}, want 0x{want:X4}");
            }
        }
    }

    public static TheoryData<Enum, int, int, int> Shapes()
    {
        var d = new TheoryData<Enum, int, int, int>();
        foreach (var type in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16 })
        {
            d.Add(type, 9, 3, 4);
            d.Add(type, 8, 16, 1);
            d.Add(type, 12, 40, 5);
            d.Add(type, 16, 64, 6);
            d.Add(type, 7, 200, 11);
            d.Add(type, 8, FloatKernel.KBlock, 2);
            d.Add(type, 5, FloatKernel.KBlock + 16, 7);
            d.Add(type, 12, 3 * FloatKernel.KBlock + 33, 3);
            d.Add(type, 4, 96, FloatKernel.TokenBlock * 2 + 3);
            // AVX2's 3-row panels and 3 × 2 tiles: row counts on each side of a multiple of 3, odd and even token
            // counts around 32
            foreach (int tokens in new[] { 31, 32, 33 }) d.Add(type, 10, 48, tokens);
            d.Add(type, 11, 64, 2);
        }
        return d;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void EveryPathComputesExactlyTheScalarArithmetic(Enum typeValue, int rows, int cols, int tokens)
    {
        var type = (GgmlType)typeValue;
        var rng = new Random(rows * 7919 + cols * 31 + tokens);
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        var weights = new byte[rowBytes * rows];
        var f = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < cols; i++)
                f[i] = (i + r) % 11 == 3 ? (float)(KernelHarness.Gaussian(rng) * 3e-6)          // subnormal halves
                     : (i + r) % 17 == 5 ? ((i & 1) == 0 ? 0f : -0f)
                     : (float)(KernelHarness.Gaussian(rng) * (1 + r % 3));
            Quantize.Row(type, f, weights.AsSpan((int)(r * rowBytes), (int)rowBytes));
        }
        var x = new float[tokens * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)KernelHarness.Gaussian(rng);

        var expected = new float[tokens * rows];
        fixed (byte* wp = weights) fixed (float* xp = x)
        {
            var w = new WeightMatrix("w", type, rows, cols, wp);
            for (int r = 0; r < rows; r++)
                for (int t = 0; t < tokens; t++)
                    expected[t * rows + r] = FloatKernel.DotScalar(type, w.Row(r), xp + t * cols, cols);
            var kernel = new FloatKernel();
            var scratch = new float[kernel.ScratchFloats(cols)];
            var view = new ActivationView { F32 = xp, Tokens = tokens, Cols = cols };
            foreach (var level in KernelHarness.Levels())
            {
                // whole range, then split at every multiple of 4 (how MatMul cuts rows) and at an odd point
                foreach (int split in new[] { 0, 4, rows / 8 * 4, rows - 1 }.Distinct())
                {
                    var y = new float[tokens * rows];
                    fixed (float* yp = y) fixed (float* sp = scratch)
                    {
                        kernel.Compute(w, view, yp, rows, 0, Math.Max(0, split), level, sp);
                        kernel.Compute(w, view, yp, rows, Math.Max(0, split), rows, level, sp);
                    }
                    for (int i = 0; i < y.Length; i++)
                        Assert.True(BitConverter.SingleToInt32Bits(y[i]) == BitConverter.SingleToInt32Bits(expected[i]),
                            $"{type} {level} split {split}: token {i / rows} row {i % rows}: {y[i]:R} vs scalar {expected[i]:R}");
                }
            }
        }
    }

    /// <summary>Infinite and NaN F16 weights (the matrix then takes the exact widening instead of the decode
    /// path's scaled form), and activations of 2^16 and more (where the scaled form would overflow): still the
    /// scalar arithmetic, NaN for NaN. <paramref name="lastOnly"/>: the only special half is among the matrix's
    /// last halves (the special-value scan's scalar tail).</summary>
    [Theory]
    [InlineData(GgmlType.F16, 1, false)]
    [InlineData(GgmlType.F16, 1, true)]
    [InlineData(GgmlType.F16, 3, false)]
    [InlineData(GgmlType.F16, 9, false)]
    [InlineData(GgmlType.BF16, 2, false)]
    [InlineData(GgmlType.F32, 1, false)]
    public void SpecialWeightsAndLargeActivationsKeepTheScalarArithmetic(Enum typeValue, int tokens, bool lastOnly)
    {
        var type = (GgmlType)typeValue;
        const int rows = 12, cols = 81;
        var rng = new Random(tokens);
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        var weights = new byte[rowBytes * rows];
        var f = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < cols; i++) f[i] = (float)KernelHarness.Gaussian(rng);
            if (lastOnly) { if (r == rows - 1) f[cols - 6] = float.NegativeInfinity; }   // a vector chunk, and the scan's tail
            else
            {
                if (r == 1) f[17] = float.PositiveInfinity;
                if (r == 2) f[40] = float.NaN;
                if (r == 9) { f[3] = float.NegativeInfinity; f[70] = 65504f; }
            }
            Quantize.Row(type, f, weights.AsSpan((int)(r * rowBytes), (int)rowBytes));
        }
        var x = new float[tokens * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)KernelHarness.Gaussian(rng);
        x[cols - 5] = 70000f;            // token 0 too large for the scaled form
        if (tokens > 1) x[cols + 2] = -1e30f;
        var kernel = new FloatKernel();
        var scratch = new float[kernel.ScratchFloats(cols)];
        fixed (byte* wp = weights) fixed (float* xp = x) fixed (float* sp = scratch)
        {
            var w = new WeightMatrix("w", type, rows, cols, wp);
            foreach (var level in KernelHarness.Levels())
                for (int variant = 0; variant < 2; variant++)
                {
                    // variant 1: the same rows with small activations only
                    if (variant == 1) for (int i = 0; i < x.Length; i++) x[i] = MathF.Max(-100, MathF.Min(100, x[i]));
                    var view = new ActivationView { F32 = xp, Tokens = tokens, Cols = cols };
                    var y = new float[tokens * rows];
                    fixed (float* yp = y) kernel.Compute(w, view, yp, rows, 0, rows, level, sp);
                    for (int r = 0; r < rows; r++)
                        for (int t = 0; t < tokens; t++)
                        {
                            float want = FloatKernel.DotScalar(type, w.Row(r), xp + t * cols, cols), got = y[t * rows + r];
                            Assert.True(float.IsNaN(want) ? float.IsNaN(got) : BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(got),
                                $"{type} {level} variant {variant}: token {t} row {r}: {got:R} vs scalar {want:R}");
                        }
                }
        }
    }

    [Fact]
    public void RegistryUsesTheFloatKernelForFloatWeightsInBothModes()
    {
        foreach (var type in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16 })
            foreach (var p in new[] { MatMulPrecision.Exact, MatMulPrecision.Fast })
                Assert.IsType<FloatKernel>(KernelRegistry.For(type, p));
    }
}
