using SharpInfer.KvCache;
using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tests.Tensors;
using SharpInfer.Tests.Tensors.Kernels;

namespace SharpInfer.Tests.KvCache;

/// <summary>Each KV format's rows: written bit-exactly as ggml's quantizer writes them, widened bit-exactly as
/// ggml's to_float on every instruction path, and within the format's error bound for heads shorter than a block.</summary>
public unsafe class KvFormatTests
{
    [Theory]
    [InlineData("q8_0", KvDataType.Q8_0, 128)]
    [InlineData("q8_0", KvDataType.Q8_0, 64)]
    [InlineData("q4_0", KvDataType.Q4_0, 128)]
    [InlineData("q4_0", KvDataType.Q4_0, 32)]
    [InlineData("f16", KvDataType.F16, 128)]
    public void Rows_match_ggml_bytes_and_widen_to_ggml_values_on_every_path(string golden, KvDataType type, int headDim)
    {
        var g = QuantGoldenCase.Get(golden);
        var format = KvFormat.Of(type);
        int rows = g.Input.Length / headDim;
        long rowBytes = format.RowBytes(headDim);
        Assert.Equal(g.Quantized.Length, rows * rowBytes);   // ggml's layout: the same bytes per value
        var stored = new byte[g.Quantized.Length];
        fixed (float* x = g.Input) fixed (byte* dst = stored)
            for (int r = 0; r < rows; r++) format.WriteRow(x + r * headDim, dst + r * rowBytes, headDim, IsaLevel.Avx512);
        Assert.Equal(Convert.ToHexString(g.Quantized), Convert.ToHexString(stored));
        foreach (var level in KernelHarness.Levels())
        {
            var widened = new float[g.Input.Length];
            fixed (byte* src = stored) fixed (float* dst = widened)
            {
                float* y = format.Widen(src, dst, rows, headDim, level, finite: true);
                for (int i = 0; i < widened.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(y[i]) == BitConverter.SingleToInt32Bits(g.Dequantized[i]), $"{level} value {i}: {y[i]} vs ggml {g.Dequantized[i]}");
            }
        }
    }

    [Theory]
    [InlineData(KvDataType.Q8_0, 8, 1 / 127.0)]
    [InlineData(KvDataType.Q4_0, 8, 1 / 8.0)]
    [InlineData(KvDataType.Q8_0, 40, 1 / 127.0)]
    public void Heads_shorter_than_a_ggml_block_quantize_per_head_within_half_a_step(KvDataType type, int headDim, double step)
    {
        var format = KvFormat.Of(type);
        Assert.Equal(KvFormat.QuantBlockLength(headDim), headDim);
        var rng = new Random(headDim);
        var x = Enumerable.Range(0, headDim).Select(_ => (float)KernelHarness.Gaussian(rng)).ToArray();
        var row = new byte[format.RowBytes(headDim)];
        var y = new float[headDim];
        fixed (float* xp = x) fixed (byte* rp = row) fixed (float* yp = y)
        {
            format.WriteRow(xp, rp, headDim, IsaLevel.Scalar);
            format.Widen(rp, yp, 1, headDim, IsaLevel.Avx512, finite: true);
        }
        double amax = x.Max(v => Math.Abs(v));
        for (int i = 0; i < headDim; i++)
            Assert.True(Math.Abs(x[i] - y[i]) <= amax * step * 0.5 * 1.01 + 1e-6, $"value {i}: {x[i]} stored as {y[i]}");
    }

    [Fact]
    public void Row_sizes_are_ggmls()
    {
        Assert.Equal(34 * 4, KvFormat.Q8_0.RowBytes(128));
        Assert.Equal(18 * 4, KvFormat.Q4_0.RowBytes(128));
        Assert.Equal(256, KvFormat.F16.RowBytes(128));
        Assert.Equal(512, KvFormat.F32.RowBytes(128));
        Assert.Equal(2 + 8, KvFormat.Q8_0.RowBytes(8));
        Assert.Equal(2 + 4, KvFormat.Q4_0.RowBytes(8));
        Assert.Throws<UnsupportedModelException>(() => KvFormat.Q4_0.CheckHeadDim(7));
    }
}
