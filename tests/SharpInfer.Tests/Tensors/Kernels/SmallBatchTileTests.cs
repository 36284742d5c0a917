using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tensors.Kernels;

namespace SharpInfer.Tests.Tensors.Kernels;

/// <summary>
/// The int8 tiles at the token counts of speculative verification (1–9: 4-token tiles plus 3-, 2- and 1-token rests)
/// and row counts that do not fill a tile group, on every instruction path, from the mapped rows and from the copy
/// packed at load: each output equals ggml's float sequence over exact integer block sums (computed here from the
/// bytes), bit for bit, and a token's outputs are the same alone and in any batch. Q8_0 and IQ4_NL take the sign
/// trick on CPUs without VNNI (every code, −128 included); Q4_0 keeps the offset form.
/// </summary>
public class SmallBatchTileTests
{
    private const int Cols = 32 * 7;
    private static readonly int[] RowCounts = [5, 8, 13, 16, 17, 40];

    /// <summary>Q8_0 rows: random bytes (codes −128..127) with finite scales, some blocks all +127, all −128, all 0.</summary>
    private static byte[] Q8Rows(int rows, Random rng)
    {
        var w = new byte[rows * Cols / 32 * 34];
        rng.NextBytes(w);
        for (int blk = 0; blk < w.Length / 34; blk++)
        {
            var b = w.AsSpan(blk * 34, 34);
            BitConverter.TryWriteBytes(b, Fp16.FromFloat((float)(rng.NextDouble() * 0.02 - 0.01)));
            if (blk % 5 == 1) b[2..].Fill(0x7F);
            if (blk % 5 == 3) b[2..].Fill(0x80);
            if (blk % 11 == 7) b[2..].Clear();
        }
        return w;
    }

    /// <summary>Activations whose first blocks quantize to ±127 everywhere, then Gaussian ones.</summary>
    private static float[] Activations(int tokens, Random rng)
    {
        var x = new float[tokens * Cols];
        for (int i = 0; i < x.Length; i++)
            x[i] = (i % Cols) < 64 ? ((i / 3) % 2 == 0 ? 1f : -1f) : (float)KernelHarness.Gaussian(rng);
        return x;
    }

    /// <summary>ggml's Q8_0 × Q8_0: per block the exact integer Σ w·x, then acc = fma(d_w·d_x, isum, acc) in block order.</summary>
    private static unsafe float ExactQ8(byte[] w, int row, in ActivationView x, int t)
    {
        float acc = 0;
        for (int b = 0; b < Cols / 32; b++)
        {
            int o = (row * (Cols / 32) + b) * 34;
            long isum = 0;
            for (int j = 0; j < 32; j++) isum += (sbyte)w[o + 2 + j] * (long)x.Q[t * Cols + b * 32 + j];
            acc = MathF.FusedMultiplyAdd(Fp16.ToFloat(BitConverter.ToUInt16(w, o)) * x.D[t * (Cols / 32) + b], isum, acc);
        }
        return acc;
    }

    private static unsafe float[] Compute(MatMulKernel k, WeightMatrix w, ActivationView x, IsaLevel level)
    {
        var y = new float[x.Tokens * w.Rows];
        var scratch = new float[k.ScratchFloats(Cols)];
        fixed (float* yp = y) fixed (float* sp = scratch)
            k.Compute(w, x, yp, w.Rows, 0, w.Rows, level, sp);
        return y;
    }

    private static void SameBits(float want, float got, string what) =>
        Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(got), $"{what}: {got}, expected {want}");

    [Fact]
    public unsafe void Q8_0TilesGiveTheExactIntegerSumsForOneToNineTokens()
    {
        var kernel = KernelRegistry.For(GgmlType.Q8_0, MatMulPrecision.Fast);
        foreach (int rows in RowCounts)
            for (int tokens = 1; tokens <= 9; tokens++)
            {
                var rng = new Random(rows * 16 + tokens);
                var w = Q8Rows(rows, rng);
                using var input = new KernelHarness.QuantizedInput(kernel.Format, Activations(tokens, rng), tokens, Cols);
                fixed (byte* wp = w)
                    foreach (var level in KernelHarness.Levels())
                        foreach (bool packed in new[] { false, true })
                        {
                            var m = new WeightMatrix("w", GgmlType.Q8_0, rows, Cols, wp);
                            using var packing = new WeightPacking();
                            if (packed)
                            {
                                packing.Pack([m], level);
                                if (m.Packed == null) continue;   // a level without tiles, or SHARPINFER_NO_REPACK
                            }
                            var y = Compute(kernel, m, input.View, level);
                            for (int t = 0; t < tokens; t++)
                            {
                                var alone = Compute(kernel, m, input.Token(t), level);
                                for (int r = 0; r < rows; r++)
                                {
                                    string what = $"rows {rows} T={tokens} {level}{(packed ? " packed" : "")} row {r} token {t}";
                                    SameBits(ExactQ8(w, r, input.View, t), y[t * rows + r], what);
                                    SameBits(alone[r], y[t * rows + r], what + " (alone vs batched)");
                                }
                            }
                        }
            }
    }

    [Theory]
    [InlineData(GgmlType.IQ4_NL)]
    [InlineData(GgmlType.Q4_0)]
    public unsafe void OtherLegacyFormatsMatchTheScalarPathForOneToNineTokens(Enum typeValue)
    {
        var type = (GgmlType)typeValue;
        var kernel = KernelRegistry.For(type, MatMulPrecision.Fast);
        foreach (int rows in RowCounts)
            for (int tokens = 1; tokens <= 9; tokens++)
            {
                var rng = new Random(rows * 16 + tokens);
                long rowBytes = GgmlTypeInfo.RowSize(type, Cols);
                var w = new byte[rowBytes * rows];
                rng.NextBytes(w);   // every code; scales set below to finite values
                int blockBytes = (int)GgmlTypeInfo.RowSize(type, 32);
                for (int blk = 0; blk < w.Length / blockBytes; blk++)
                    BitConverter.TryWriteBytes(w.AsSpan(blk * blockBytes, 2), Fp16.FromFloat((float)(rng.NextDouble() * 0.02 - 0.01)));
                using var input = new KernelHarness.QuantizedInput(kernel.Format, Activations(tokens, rng), tokens, Cols);
                fixed (byte* wp = w)
                {
                    var m = new WeightMatrix("w", type, rows, Cols, wp);
                    var want = Compute(kernel, m, input.View, IsaLevel.Scalar);
                    foreach (var level in KernelHarness.Levels())
                    {
                        var y = Compute(kernel, m, input.View, level);
                        for (int i = 0; i < y.Length; i++) SameBits(want[i], y[i], $"{type} rows {rows} T={tokens} {level} output {i}");
                    }
                }
            }
    }
}
