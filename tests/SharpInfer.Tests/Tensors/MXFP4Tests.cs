using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Gguf;
using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tensors.Kernels;
using SharpInfer.Tests.Tensors.Kernels;
using static SharpInfer.Tests.Tensors.QuantTestUtil;

namespace SharpInfer.Tests.Tensors;

/// <summary>MXFP4 (ggml type 39): the E8M0 scale, decoding against the E2M1 definition (not ggml's table), the
/// reference quantizer's choices, and the int8 kernel on the 3-D expert tensors of the synthetic gpt-oss file,
/// read through per-expert <see cref="WeightMatrix"/> row views as the MoE layer reads them.</summary>
public class MXFP4Tests
{
    /// <summary>E2M1 from its definition: sign bit 3, exponent bits 2–1 (bias 1), mantissa bit 0; exponent 0 is
    /// subnormal (m·0.5).</summary>
    private static float E2M1(int code)
    {
        int exp = (code >> 1) & 3, m = code & 1;
        float v = exp == 0 ? m * 0.5f : (1 + m * 0.5f) * MathF.Pow(2, exp - 1);
        return (code & 8) != 0 ? -v : v;
    }

    /// <summary>E8M0: 2^(e−127).</summary>
    private static double E8M0(int e) => Math.ScaleB(1.0, e - 127);

    [Fact]
    public void HalfScaleIsHalfTheE8M0ValueForEveryByte()
    {
        for (int e = 0; e < 256; e++)
            Assert.Equal((float)(E8M0(e) / 2), BlockMXFP4.HalfScale((byte)e));
    }

    [Fact]
    public void VectorScalesEqualTheScalarOnesForEveryByte()
    {
        if (!Avx2.IsSupported) return;
        for (int e = 0; e < 256; e += 8)
        {
            // the three code bytes that follow the scale in a block head are junk to the conversion
            var heads = Vector256.Create(e, e + 1, e + 2, e + 3, e + 4, e + 5, e + 6, e + 7) | Vector256.Create(unchecked((int)0xA5C3E100));
            var v = MXFP4Format.Scales(heads);
            for (int i = 0; i < 8; i++)
                Assert.Equal(BitConverter.SingleToInt32Bits(BlockMXFP4.HalfScale((byte)(e + i))), BitConverter.SingleToInt32Bits(v.GetElement(i)));
        }
    }

    [Fact]
    public void DequantizedValuesAreE2M1TimesE8M0()
    {
        var rng = new Random(5);
        const int blocks = 64;
        var bytes = new byte[blocks * BlockMXFP4.Size];
        rng.NextBytes(bytes);
        for (int b = 0; b < blocks; b++) bytes[b * 17] = (byte)(b < 4 ? b : rng.Next(2, 250)); // include the subnormal scales
        var y = DequantizeRow(GgmlType.MXFP4, bytes, blocks * 32);
        for (int b = 0; b < blocks; b++)
        {
            int e = bytes[b * 17];
            for (int j = 0; j < 32; j++)
            {
                byte packed = bytes[b * 17 + 1 + j % 16];
                int code = j < 16 ? packed & 0x0F : packed >> 4;   // element j low nibble, j + 16 high nibble
                Assert.Equal((float)(E2M1(code) * E8M0(e)), y[b * 32 + j]);
            }
        }
    }

    [Fact]
    public void QuantizerPicksTheE8M0ExponentOfAmaxOverFour()
    {
        // amax in [4, 8)·2^k → scale 2^k (levels up to 6·2^k); amax = 8·2^k moves to the next scale
        foreach (var (amax, scaleExp) in new[] { (4f, 0), (7.9f, 0), (8f, 1), (6f, 0), (0.75f, -3), (1e-30f, -102) })
        {
            var x = new float[32];
            x[3] = amax;
            x[20] = -amax / 3;
            var q = QuantizeRow(GgmlType.MXFP4, x);
            Assert.Equal(127 + scaleExp, q[0]);
        }
        var zero = QuantizeRow(GgmlType.MXFP4, new float[32]);
        Assert.All(zero, b => Assert.Equal(0, b));   // e = 0, every code +0
    }

    [Fact]
    public void QuantizerTakesTheNearestLevelAndTheFirstOnATie()
    {
        // scale 1 (amax 6): levels 0, ±0.5, ±1, ±1.5, ±2, ±3, ±4, ±6
        float[] x = [6f, 7.5f, 2.5f, -2.5f, 0.25f, -0.25f, 5f, 0.74f, 0.76f, -3.4f, 1.25f, -0f];
        float[] want = [6f, 6f, 2f, -2f, 0f, 0f, 4f, 0.5f, 1f, -3f, 1f, 0f];
        var row = new float[32];
        x.CopyTo(row, 0);
        var q = QuantizeRow(GgmlType.MXFP4, row);
        Assert.Equal(127, q[0]);
        var y = DequantizeRow(GgmlType.MXFP4, q, 32);
        for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], y[i]);
        // ties go to the lower index: +0 (code 0), never −0 (code 8), and 2.5 → 2 (code 4) before 3 (code 5)
        Assert.Equal(0, q[1 + 4] & 0x0F);
        Assert.Equal(0, q[1 + 5] & 0x0F);
        Assert.Equal(4, q[1 + 2] & 0x0F);
        Assert.Equal(12, q[1 + 3] & 0x0F);
    }

    [Fact]
    public void RequantizingDecodedBlocksKeepsTheirValues()
    {
        // every decoded block is a set of k·2^e values that the reference quantizer represents again exactly
        var rng = new Random(11);
        const int blocks = 400;
        var bytes = new byte[blocks * 17];
        rng.NextBytes(bytes);
        for (int b = 0; b < blocks; b++) bytes[b * 17] = (byte)rng.Next(2, 250);
        var y = DequantizeRow(GgmlType.MXFP4, bytes, blocks * 32);
        var again = DequantizeRow(GgmlType.MXFP4, QuantizeRow(GgmlType.MXFP4, y), blocks * 32);
        Assert.Equal(y, again);
    }

    /// <summary>gpt-oss's MXFP4 experts as a [cols, rows, experts] tensor: one matrix over all experts' rows, one row view
    /// per expert (what the MoE layer builds). Each view's rows decode to the matching slice of the tensor, and the
    /// int8 kernel on every instruction path agrees with ggml's reference dot and with the exact dequantize-then-dot.</summary>
    [Theory]
    [InlineData("blk.0.ffn_up_exps.weight")]
    [InlineData("blk.1.ffn_down_exps.weight")]
    public unsafe void ExpertRowViewsOfTheSyntheticGptOssFileMultiplyCorrectly(string name)
    {
        using var g = GgufFile.Open(TestModels.Get("gpt-oss-tiny", "q8_0"));
        Assert.True(g.TryGetTensor(name, out var t));
        Assert.Equal(GgmlType.MXFP4, t.Type);
        Assert.Equal(3, t.Dims.Length);
        int cols = (int)t.Dims[0], rows = (int)t.Dims[1], experts = (int)t.Dims[2];
        var all = new WeightMatrix(name, t.Type, rows * experts, cols, g.TensorData(t));
        var tensorBytes = g.TensorBytes(t);
        long rowBytes = GgmlTypeInfo.RowSize(GgmlType.MXFP4, cols);
        Assert.Equal(tensorBytes.Length, rowBytes * rows * experts);

        var kernel = KernelRegistry.For(GgmlType.MXFP4, MatMulPrecision.Fast);
        Assert.IsType<MXFP4Kernel>(kernel);
        const int tokens = 5;
        var x = Gaussian(17, tokens * cols);
        using var input = new KernelHarness.QuantizedInput(kernel.Format, x, tokens, cols);
        var scratch = new float[kernel.ScratchFloats(cols)];
        var wf = new float[cols];
        foreach (int e in new[] { 0, 3, experts - 1 })
        {
            var view = new WeightMatrix($"{name}[expert {e}]", all.Type, rows, cols, all.Row(e * rows));
            for (int r = 0; r < rows; r += 37)
            {
                view.DequantizeRow(r, wf);
                var slice = tensorBytes.Slice((int)(((long)e * rows + r) * rowBytes), (int)rowBytes);
                Assert.Equal(DequantizeRow(GgmlType.MXFP4, slice, cols), wf);
            }
            foreach (var level in KernelHarness.Levels())
            {
                var y = new float[tokens * rows];
                fixed (float* yp = y) fixed (float* sp = scratch)
                    kernel.Compute(view, input.View, yp, rows, 0, rows, level, sp);
                for (int r = 0; r < rows; r++)
                {
                    view.DequantizeRow(r, wf);
                    for (int tk = 0; tk < tokens; tk++)
                    {
                        var xt = x.AsSpan(tk * cols, cols);
                        float reference = ReferenceDot.QuantizedActivations(GgmlType.MXFP4, view.RowSpan(r), input.GgmlBlocks(tk));
                        double exact = Dot(wf, xt), mag = 0;
                        for (int i = 0; i < cols; i++) mag += Math.Abs(wf[i] * (double)xt[i]);
                        float got = y[tk * rows + r];
                        Assert.True(Math.Abs(got - reference) <= 1e-5 * mag, $"{level} expert {e} row {r} token {tk}: {got} vs ggml {reference}");
                        // 8-bit activations: within ~1% of the activations' magnitude of the exact product
                        Assert.True(Math.Abs(got - exact) <= 0.02 * mag, $"{level} expert {e} row {r} token {tk}: {got} vs exact {exact}");
                    }
                }
            }
        }
    }
}
