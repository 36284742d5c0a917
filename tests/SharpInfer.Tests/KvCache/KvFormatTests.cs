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

    /// <summary>Q8_0 rows are the scalar path's bytes on every instruction path: random rows, blocks whose products land
    /// exactly on and next to halves (amax 127 makes the scale 1, so x·id = x: rounding half away from zero is
    /// visible), and blocks with an infinity or a NaN.</summary>
    [Fact]
    public void Q8_0_rows_are_the_scalar_paths_bytes_on_every_path_including_ties_and_non_finite_blocks()
    {
        const int D = 128;
        var rng = new Random(5);
        var rows = new List<float[]>();
        for (int r = 0; r < 64; r++) rows.Add(Enumerable.Range(0, D).Select(_ => (float)(rng.NextDouble() * 2 - 1) * (r + 1) * 0.37f).ToArray());
        float[] ties = [0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 126.5f, -126.5f, 0.49999997f, -0.49999997f, 0.50000006f, 3.4999998f, 3.5000002f, 0f, -0f, 64.5f];
        var tieRow = new float[D];
        for (int i = 0; i < D; i++) tieRow[i] = i % 32 == 0 ? 127f : ties[i % ties.Length];
        rows.Add(tieRow);
        var bad = (float[])rows[3].Clone();
        bad[5] = float.PositiveInfinity;
        bad[40] = float.NaN;
        bad[100] = float.NegativeInfinity;
        rows.Add(bad);
        var format = KvFormat.Q8_0;
        long rowBytes = format.RowBytes(D);
        foreach (var row in rows)
        {
            var expected = new byte[rowBytes];
            fixed (float* x = row) fixed (byte* e = expected) format.WriteRow(x, e, D, IsaLevel.Scalar);
            foreach (var level in KernelHarness.Levels())
            {
                var got = new byte[rowBytes];
                fixed (float* x = row) fixed (byte* o = got) format.WriteRow(x, o, D, level);
                Assert.True(expected.AsSpan().SequenceEqual(got), $"{level}: {Convert.ToHexString(got)} vs scalar {Convert.ToHexString(expected)}");
            }
        }
        // the tie row's codes: half away from zero (0.5 → 1, −0.5 → −1, 2.5 → 3), just below a half stays
        var codes = new byte[rowBytes];
        fixed (float* x = tieRow) fixed (byte* o = codes) format.WriteRow(x, o, D, IsaLevel.Avx512);
        Assert.Equal(new sbyte[] { 127, -1, 2, -2, 3, -3, 127, -127, 0, 0, 1, 3, 4, 0, 0, 65 },
                     codes.Skip(2).Take(16).Select(c => (sbyte)c).ToArray());
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
