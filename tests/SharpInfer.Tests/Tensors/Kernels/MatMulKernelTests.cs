using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tensors.Kernels;

namespace SharpInfer.Tests.Tensors.Kernels;

/// <summary>Every matmul kernel on every instruction path: against the scalar reference and for batch invariance,
/// with odd row counts, odd token counts and row lengths that leave tails.</summary>
public class MatMulKernelTests
{
    public static TheoryData<Enum, MatMulPrecision, int, int, int> Cases()
    {
        var d = new TheoryData<Enum, MatMulPrecision, int, int, int>();
        foreach (var (type, precision) in new[]
                 {
                     (GgmlType.Q8_0, MatMulPrecision.Fast),
                     (GgmlType.Q2_K, MatMulPrecision.Fast), (GgmlType.Q3_K, MatMulPrecision.Fast), (GgmlType.Q4_K, MatMulPrecision.Fast),
                     (GgmlType.Q5_K, MatMulPrecision.Fast), (GgmlType.Q6_K, MatMulPrecision.Fast),
                     (GgmlType.Q8_0, MatMulPrecision.Exact), (GgmlType.Q4_0, MatMulPrecision.Exact), (GgmlType.Q4_K, MatMulPrecision.Exact),
                     (GgmlType.Q6_K, MatMulPrecision.Exact), (GgmlType.F16, MatMulPrecision.Exact), (GgmlType.F32, MatMulPrecision.Exact),
                 })
        {
            int block = GgmlTypeInfo.BlockSize(type) == 256 ? 256 : 32;
            d.Add(type, precision, 13, block * 3, 7);
            d.Add(type, precision, 4, block * 8, 1);
            d.Add(type, precision, 9, block, 5);
            if (precision == MatMulPrecision.Fast && block == 256)
            {
                // K-quant int8 kernels: token tiles of 8 (AVX-512) and 4 (AVX2) with 1-token remainders
                d.Add(type, precision, 7, block * 5, 19);
                d.Add(type, precision, 3, block * 2, 8);
                d.Add(type, precision, 5, block * 22, 12);
                foreach (int tokens in new[] { 2, 31, 33 }) d.Add(type, precision, 3, block * 2, tokens);
            }
        }
        // the int8 kernels for 32-element formats: decode (1-3 tokens) and repacked prefill tiles (4+), full and
        // partial 8-row groups, odd token counts, row lengths that are not a multiple of 128
        foreach (var type in new[] { GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.IQ4_NL, GgmlType.MXFP4 })
        {
            d.Add(type, MatMulPrecision.Fast, 13, 32 * 3, 7);
            d.Add(type, MatMulPrecision.Fast, 4, 32 * 8, 1);
            d.Add(type, MatMulPrecision.Fast, 9, 32, 5);
            d.Add(type, MatMulPrecision.Fast, 16, 32 * 5, 1);
            d.Add(type, MatMulPrecision.Fast, 21, 32 * 7, 3);
            d.Add(type, MatMulPrecision.Fast, 24, 32 * 12, 9);
            d.Add(type, MatMulPrecision.Fast, 8, 32 * 33, 4);
        }
        // float weights: both modes use FloatKernel; any row length (tails past the 16-element chunks), several
        // K-blocks, token counts on both sides of the packing threshold and past one token block
        foreach (var type in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16 })
        {
            d.Add(type, MatMulPrecision.Fast, 13, 96, 7);
            d.Add(type, MatMulPrecision.Exact, 5, 1, 3);
            d.Add(type, MatMulPrecision.Fast, 7, 15, 2);
            d.Add(type, MatMulPrecision.Exact, 12, 17, 9);
            d.Add(type, MatMulPrecision.Fast, 11, 63, 1);
            d.Add(type, MatMulPrecision.Exact, 4, 1024, 6);
            d.Add(type, MatMulPrecision.Fast, 8, 2 * FloatKernel.KBlock + 48 + 5, 13);
            d.Add(type, MatMulPrecision.Exact, 6, 1037, FloatKernel.TokenBlock + 6);
        }
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void KernelMatchesReferenceOnEveryPathAndIsBatchInvariant(Enum typeValue, MatMulPrecision precision, int rows, int cols, int tokens)
    {
        var type = (GgmlType)typeValue;
        var kernel = KernelRegistry.For(type, precision);
        KernelHarness.Check(type, kernel, rows, cols, tokens, seed: rows * 1000 + cols + tokens);
    }

    /// <summary>The K-quant int8 kernels do their float steps identically on every path (only the exact integer sums
    /// are vectorized), so every instruction path gives the same bits.</summary>
    [Theory]
    [InlineData(GgmlType.Q2_K)]
    [InlineData(GgmlType.Q3_K)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q5_K)]
    [InlineData(GgmlType.Q6_K)]
    public unsafe void KQuantKernelsGiveTheSameBitsOnEveryPath(Enum typeValue)
    {
        var type = (GgmlType)typeValue;
        var kernel = KernelRegistry.For(type, MatMulPrecision.Fast);
        foreach (var (rows, cols, tokens) in new[] { (9, 768, 1), (6, 1280, 19), (5, 512, 12) })
        {
            var rng = new Random(rows + cols + tokens);
            long rowBytes = GgmlTypeInfo.RowSize(type, cols);
            var weights = new byte[rowBytes * rows];
            var f = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                for (int i = 0; i < cols; i++) f[i] = (float)KernelHarness.Gaussian(rng);
                Quantize.Row(type, f, weights.AsSpan((int)(r * rowBytes), (int)rowBytes));
            }
            var x = new float[tokens * cols];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(KernelHarness.Gaussian(rng) * (i % 11 == 0 ? 5 : 1));
            using var input = new KernelHarness.QuantizedInput(kernel.Format, x, tokens, cols);
            float[]? first = null;
            fixed (byte* wp = weights)
            {
                var w = new WeightMatrix("w", type, rows, cols, wp);
                foreach (var level in KernelHarness.Levels())
                {
                    var y = new float[tokens * rows];
                    fixed (float* yp = y) kernel.Compute(w, input.View, yp, rows, 0, rows, level, null);
                    first ??= y;
                    for (int i = 0; i < y.Length; i++)
                        Assert.True(BitConverter.SingleToInt32Bits(y[i]) == BitConverter.SingleToInt32Bits(first[i]),
                            $"{type} {level} {rows}x{cols} T={tokens}: output {i} = {y[i]}, scalar path {first[i]}");
                }
            }
        }
    }

    [Fact]
    public unsafe void Q8_KActivationQuantizationVectorPathEqualsScalar()
    {
        const int blocks = 40;
        var rng = new Random(7);
        var x = new float[256 * blocks];
        for (int i = 0; i < x.Length; i++) x[i] = (float)KernelHarness.Gaussian(rng) * (i % 5 == 0 ? 10 : 1);
        for (int b = 0; b < blocks; b++)
        {
            int o = 256 * b;
            switch (b % 8)
            {
                case 0: Array.Clear(x, o, 256); break;                                   // all zero
                case 1: x[o + 3] = 50f; x[o + 200] = -50f; break;                        // extreme twice, + first
                case 2: x[o + 3] = -50f; x[o + 200] = 50f; break;                        // extreme twice, - first
                case 3: x[o + 255] = 127f; for (int j = 0; j < 255; j++) x[o + j] = (j - 127) + 0.5f; break; // exact .5 ties
                case 4: x[o] = float.Epsilon; for (int j = 1; j < 256; j++) x[o + j] = 0f; break;     // denormal extreme
                case 5: x[o + 17] = float.PositiveInfinity; break;                       // falls back to scalar
            }
        }
        var qs = new sbyte[x.Length]; var qv = new sbyte[x.Length];
        var ds = new float[blocks]; var dv = new float[blocks];
        var bs = new short[16 * blocks]; var bv = new short[16 * blocks];
        fixed (float* xp = x) fixed (sbyte* a = qs) fixed (sbyte* b = qv) fixed (float* da = ds) fixed (float* db = dv)
        fixed (short* ba = bs) fixed (short* bb = bv)
        {
            ActivationQuantizer.Row(ActivationFormat.Q8_K, xp, x.Length, a, da, null, ba, IsaLevel.Scalar);
            ActivationQuantizer.Row(ActivationFormat.Q8_K, xp, x.Length, b, db, null, bb, IsaLevel.Avx2);
        }
        Assert.Equal(qs, qv);
        Assert.Equal(bs, bv);
        for (int i = 0; i < blocks; i++) Assert.Equal(BitConverter.SingleToInt32Bits(ds[i]), BitConverter.SingleToInt32Bits(dv[i]));
    }

    [Fact]
    public unsafe void Q8_0ActivationQuantizationVectorPathEqualsScalar()
    {
        var rng = new Random(5);
        var x = new float[32 * 64];
        for (int i = 0; i < x.Length; i++) x[i] = (float)KernelHarness.Gaussian(rng) * (i % 5 == 0 ? 10 : 1);
        for (int i = 0; i < 64; i++) x[i * 32 + 3] = 63.5f / 127f * 2f * (i % 2 == 0 ? 1 : -1); // exact ties
        var qs = new sbyte[x.Length]; var qv = new sbyte[x.Length];
        var ds = new float[64]; var dv = new float[64];
        fixed (float* xp = x) fixed (sbyte* a = qs) fixed (sbyte* b = qv) fixed (float* da = ds) fixed (float* db = dv)
        {
            ActivationQuantizer.Row(ActivationFormat.Q8_0, xp, x.Length, a, da, null, null, IsaLevel.Scalar);
            ActivationQuantizer.Row(ActivationFormat.Q8_0, xp, x.Length, b, db, null, null, IsaLevel.Avx2);
        }
        Assert.Equal(qs, qv);
        Assert.Equal(ds, dv);
    }
}
