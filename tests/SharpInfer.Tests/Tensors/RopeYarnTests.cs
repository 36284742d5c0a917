using SharpInfer.Gguf;
using SharpInfer.Tensors;

namespace SharpInfer.Tests.Tensors;

/// <summary>YaRN RoPE scaling against an independent double-precision implementation of YaRN (the paper's reference
/// code: correction range from the wavelengths, a linear ramp over the pair index, (1 − m)·θ/s + m·θ, magnitude
/// 0.1·ln s + 1), and exactly where ggml's float arithmetic is exact: pure extrapolation below the range, pure
/// interpolation above it, plain RoPE when ext_factor is 0.</summary>
public unsafe class RopeYarnTests
{
    // gpt-oss: head 64 (all rotated), base 150000, YaRN factor 32 over an original context of 4096
    private const int NRot = 64, OrigCtx = 4096;
    private const float Base = 150000f, Factor = 32f;

    private static double CorrectionDimRef(double rotations, int dims, double freqBase, int origCtx) =>
        dims * Math.Log(origCtx / (rotations * 2 * Math.PI)) / (2 * Math.Log(freqBase));

    [Fact]
    public void CorrectionRangeIsWherePairsRotateBetaTimesInTheOriginalContext()
    {
        var yarn = RopeYarn.Create(NRot, Base, 1 / Factor, OrigCtx);
        double fast = CorrectionDimRef(32, NRot, Base, OrigCtx), slow = CorrectionDimRef(1, NRot, Base, OrigCtx);
        Assert.Equal(Math.Max(0, Math.Floor(fast)), yarn.Low);
        Assert.Equal(Math.Min(NRot - 1, Math.Ceiling(slow)), yarn.High);
        Assert.Equal((8f, 18f), (yarn.Low, yarn.High));
        // the defining property: pair `dim` has wavelength 2π·base^(2·dim/d), which fits beta times in the context
        foreach (var (dim, beta) in new[] { (fast, 32.0), (slow, 1.0) })
            Assert.Equal(beta, OrigCtx / (2 * Math.PI * Math.Pow(Base, 2 * dim / NRot)), 4);
        // clamped to [0, nDims − 1]
        Assert.Equal(0f, RopeYarn.CorrectionDims(8, 16, 10000f, 32, 1).Low);         // would be negative
        Assert.Equal(7f, RopeYarn.CorrectionDims(8, 1 << 30, 10000f, 32, 1).High);   // would be 9
    }

    [Fact]
    public void AnglesMatchTheDoublePrecisionYarnReference()
    {
        var yarn = RopeYarn.Create(NRot, Base, 1 / Factor, OrigCtx);
        double mscale = 0.1 * Math.Log(Factor) + 1;
        float* cs = stackalloc float[NRot];
        foreach (int pos in new[] { 0, 1, 2, 7, 31, 100, 300, 4095, 20000 })
        {
            yarn.Angles(pos, NRot, Base, null, cs);
            // θ_i by ggml's float chain (position · base^(−2/d), multiplied i times), the rest in double
            float theta = pos, thetaScale = MathF.Pow(Base, -2f / NRot);
            for (int i = 0; i < NRot / 2; i++, theta *= thetaScale)
            {
                double ramp = 1 - Math.Clamp((i - 8.0) / (18.0 - 8.0), 0, 1);
                double angle = theta / (double)Factor * (1 - ramp) + theta * ramp;
                double tol = mscale * 4 * Math.Pow(2, -23) * Math.Max(1, angle) + 1e-6;   // a few float roundings of the angle
                Assert.True(Math.Abs(cs[2 * i] - Math.Cos(angle) * mscale) <= tol, $"pos {pos} pair {i}: cos {cs[2 * i]} vs {Math.Cos(angle) * mscale}");
                Assert.True(Math.Abs(cs[2 * i + 1] - Math.Sin(angle) * mscale) <= tol, $"pos {pos} pair {i}: sin {cs[2 * i + 1]} vs {Math.Sin(angle) * mscale}");
            }
        }
    }

    [Fact]
    public void OutsideTheRampTheAnglesArePlainRopeExactly()
    {
        var yarn = RopeYarn.Create(NRot, Base, 1 / Factor, OrigCtx);
        float mscale = 1.0f + 0.1f * MathF.Log(Factor);
        float* cs = stackalloc float[NRot];
        float* extrap = stackalloc float[NRot];
        float* interp = stackalloc float[NRot];
        var factors = new float[NRot / 2];
        for (int i = 0; i < factors.Length; i++) factors[i] = 1 + i % 3;   // frequency factors divide θ first
        foreach (int pos in new[] { 1, 17, 5000 })
        {
            yarn.Angles(pos, NRot, Base, factors, cs);
            Rope.Angles(pos, NRot, Base, 1f, factors, extrap);
            Rope.Angles(pos, NRot, Base, 1 / Factor, factors, interp);
            for (int i = 0; i < NRot / 2; i++)
            {
                if (i > yarn.Low && i < yarn.High) continue;
                float* want = i <= yarn.Low ? extrap : interp;   // high frequencies keep θ, low ones take θ/s
                Assert.Equal(want[2 * i] * mscale, cs[2 * i]);
                Assert.Equal(want[2 * i + 1] * mscale, cs[2 * i + 1]);
            }
        }
    }

    [Fact]
    public void WithoutExtrapolationItIsLinearScalingTimesTheAttentionFactor()
    {
        var yarn = RopeYarn.Create(NRot, Base, 0.25f, OrigCtx, extFactor: 0f, attnFactor: 1f);
        float* cs = stackalloc float[NRot];
        float* plain = stackalloc float[NRot];
        yarn.Angles(123, NRot, Base, null, cs);
        Rope.Angles(123, NRot, Base, 0.25f, null, plain);
        for (int i = 0; i < NRot; i++) Assert.Equal(plain[i], cs[i]);
    }

    [Fact]
    public void SettingsComeFromTheGptOssMetadata()
    {
        using var g = GgufFile.Open(TestModels.Get("gpt-oss-tiny", "q8_0"));
        var yarn = RopeYarn.FromGguf(g, "gpt-oss", NRot, Base);
        Assert.NotNull(yarn);
        Assert.Equal(1 / Factor, yarn.FreqScale);
        Assert.Equal(OrigCtx, yarn.OriginalContext);
        Assert.Equal((1f, 1f, 32f, 1f), (yarn.ExtFactor, yarn.AttnFactor, yarn.BetaFast, yarn.BetaSlow));
        Assert.Equal((8f, 18f), (yarn.Low, yarn.High));

        using var plain = GgufFile.Open(TestModels.Get("mistral-tiny", "f32"));
        Assert.Null(RopeYarn.FromGguf(plain, "llama", 64, 10000f));
    }
}
