using SharpInfer.Tensors;
using static SharpInfer.Tests.Tensors.QuantTestUtil;

namespace SharpInfer.Tests.Tensors;

/// <summary>Every quantizer on inputs the golden row doesn't contain: all-zero, constant, tiny, spiky and
/// large blocks, and its quality on Gaussian data measured against the format's bit budget.</summary>
public class QuantizerRobustnessTests
{
    /// <summary>Type and bits per weight code (the quality budget).</summary>
    public static TheoryData<Enum, int> Types() => new()
    {
        { GgmlType.F16, 11 }, { GgmlType.BF16, 8 }, { GgmlType.Q8_0, 8 }, { GgmlType.Q8_1, 8 }, { GgmlType.Q8_K, 8 },
        { GgmlType.Q6_K, 6 }, { GgmlType.Q5_0, 5 }, { GgmlType.Q5_1, 5 }, { GgmlType.Q5_K, 5 },
        { GgmlType.Q4_0, 4 }, { GgmlType.Q4_1, 4 }, { GgmlType.Q4_K, 4 }, { GgmlType.IQ4_NL, 4 }, { GgmlType.MXFP4, 4 },
        { GgmlType.Q3_K, 3 }, { GgmlType.Q2_K, 2 },
    };

    [Theory]
    [MemberData(nameof(Types))]
    public void GaussianRowsKeepErrorWithinTheBitBudget(Enum typeValue, int bits)
    {
        var type = (GgmlType)typeValue;
        const int n = 256 * 16;
        var x = Gaussian(600 + (int)type, n);
        var y = DequantizeRow(type, QuantizeRow(type, x), n);
        double se = 0, ss = 0;
        for (int i = 0; i < n; i++) { se += (y[i] - x[i]) * (double)(y[i] - x[i]); ss += x[i] * (double)x[i]; }
        double relRmse = Math.Sqrt(se / ss);
        // A uniform b-bit grid over ±3σ has RMS error 6σ/2^b/√12 ≈ 1.7·2^-b σ; every ggml format does at
        // least as well as twice that (the extreme-value scaling wastes some range, the searches win it back).
        Assert.True(relRmse < 3.5 * Math.Pow(2, -bits), $"{type}: relative RMS error {relRmse}");
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void EdgeCaseBlocksQuantizeSanely(Enum typeValue, int bits)
    {
        var type = (GgmlType)typeValue;
        _ = bits;
        const int n = 256 * 8;
        var x = new float[n];
        var g = Gaussian(700, n);
        for (int s = 0; s < 8; s++)
        {
            var blk = x.AsSpan(256 * s, 256);
            switch (s)
            {
                case 0: break;                                                           // zeros
                case 1: blk.Fill(0.7f); break;                                           // positive constant
                case 2: blk.Fill(-1.3f); break;                                          // negative constant
                case 3: for (int i = 0; i < 256; i++) blk[i] = g[256 * s + i] * 1e-20f; break; // below ggml's 1e-15 "zero" cut-off
                case 4: blk[37] = 5f; blk[200] = -2f; break;                             // sparse spikes
                case 5: for (int i = 0; i < 256; i++) blk[i] = g[256 * s + i] * 1000f; break; // large but fp16-safe scales
                case 6: for (int i = 0; i < 256; i++) blk[i] = MathF.Abs(g[256 * s + i]) + 2f; break; // all positive, offset
                default: for (int i = 0; i < 256; i++) blk[i] = g[256 * s + i]; break;
            }
        }
        var y = DequantizeRow(type, QuantizeRow(type, x), n);
        for (int s = 0; s < 8; s++)
        {
            var xb = x.AsSpan(256 * s, 256);
            var yb = y.AsSpan(256 * s, 256);
            float amax = 0f;
            foreach (float v in xb) amax = Math.Max(amax, MathF.Abs(v));
            for (int i = 0; i < 256; i++)
            {
                Assert.True(float.IsFinite(yb[i]), $"{type} block {s} elt {i}: {yb[i]}");
                if (amax == 0f) Assert.Equal(0f, yb[i]);
                // Nothing decodes further from its input than the block's own magnitude.
                Assert.True(Math.Abs(yb[i] - xb[i]) <= amax * 1.0001f, $"{type} block {s} elt {i}: {xb[i]} → {yb[i]}");
            }
        }
    }
}
