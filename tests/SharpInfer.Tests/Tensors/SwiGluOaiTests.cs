using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tests.Tensors.Kernels;

namespace SharpInfer.Tests.Tensors;

/// <summary>gpt-oss's clamped SwiGLU (ggml's swiglu_oai): against the formula in double, with the clamps at their
/// edges, and every vector path against the scalar one, independent of position.</summary>
public unsafe class SwiGluOaiTests
{
    private const float Alpha = 1.702f, Limit = 7f;

    private static double Reference(double g, double u)
    {
        double x = Math.Min(g, Limit), y = Math.Clamp(u, -Limit, Limit);
        return x / (1 + Math.Exp(-Alpha * x)) * (y + 1);
    }

    [Fact]
    public void ClampsTheGateAboveAndTheUpBothWays()
    {
        float[] g = [10f, 7f, -10f, 0f, 2f, 3f, -30f];
        float[] u = [-9f, 100f, 1f, 5f, -7.5f, 6.5f, 0f];
        var y = (float[])g.Clone();
        fixed (float* gp = y) fixed (float* up = u) VecOps.SwiGluOai(gp, up, g.Length, Alpha, Limit, IsaLevel.Scalar);
        // gate 10 → 7, up −9 → −7: 7·σ(1.702·7)·(−6)
        Assert.Equal(7 / (1 + Math.Exp(-Alpha * 7)) * -6, y[0], 5);
        Assert.True(Math.Abs(y[0] / -6 * 8 - y[1]) <= 1e-5 * 56, $"up 100 → 7: same gate, factor 8; got {y[1]}");
        Assert.Equal(0f, y[3]);
        Assert.True(y[2] < 0 && y[2] > -1e-5, $"a very negative gate is not clamped and gives ~0, got {y[2]}");
        for (int i = 0; i < g.Length; i++)
            Assert.True(Math.Abs(y[i] - Reference(g[i], u[i])) <= 1e-6 * Math.Abs(Reference(g[i], u[i])) + 1e-30, $"{g[i]}, {u[i]}: {y[i]}");
    }

    [Fact]
    public void VectorPathsMatchTheScalarPathAndDoNotDependOnPosition()
    {
        var rng = new Random(4);
        int n = 777;
        var g = new float[n];
        var u = new float[n];
        for (int i = 0; i < n; i++)
        {
            g[i] = (float)(KernelHarness.Gaussian(rng) * (i % 9 == 0 ? 20 : 3));
            u[i] = (float)(KernelHarness.Gaussian(rng) * (i % 7 == 0 ? 20 : 2));
        }
        g[3] = Limit; u[4] = -Limit; u[5] = Limit; g[6] = -0f;
        var scalar = (float[])g.Clone();
        fixed (float* sp = scalar) fixed (float* up = u) VecOps.SwiGluOai(sp, up, n, Alpha, Limit, IsaLevel.Scalar);
        for (int i = 0; i < n; i++)
        {
            double r = Reference(g[i], u[i]);
            // the float product alpha·x carries a relative rounding that e^(…) turns into ~|alpha·x|·2^-24 of the result
            double rel = 1e-6 + 1.2e-7 * Math.Abs(Alpha * Math.Min(g[i], Limit));
            Assert.True(Math.Abs(scalar[i] - r) <= rel * Math.Abs(r) + 1e-30, $"swiglu_oai({g[i]:R}, {u[i]:R}) = {scalar[i]:R}, exact {r:R}");
        }
        foreach (var level in KernelHarness.Levels())
        {
            var all = (float[])g.Clone();
            fixed (float* ap = all) fixed (float* up = u) VecOps.SwiGluOai(ap, up, n, Alpha, Limit, level);
            for (int i = 0; i < n; i++)
                Assert.True(Math.Abs(all[i] - scalar[i]) <= 5e-7 * Math.Abs(scalar[i]) + 1e-37,
                    $"{level}: swiglu_oai({g[i]:R}, {u[i]:R}) = {all[i]:R}, scalar {scalar[i]:R}");
            foreach (var (start, len) in new[] { (0, 1), (3, 17), (1, 15), (100, 33), (770, 7), (5, 772) })
            {
                var part = (float[])g.Clone();
                fixed (float* pp = part) fixed (float* up = u) VecOps.SwiGluOai(pp + start, up + start, len, Alpha, Limit, level);
                for (int i = start; i < start + len; i++)
                    Assert.Equal(BitConverter.SingleToInt32Bits(all[i]), BitConverter.SingleToInt32Bits(part[i]));
            }
        }
    }
}
