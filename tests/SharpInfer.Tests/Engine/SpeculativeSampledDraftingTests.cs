using SharpInfer.Engine;
using SharpInfer.Engine.Speculation;
using SharpInfer.Models;
using SharpInfer.Sampling;
using static SharpInfer.Tests.Engine.SpeculativeDecodingTests;

namespace SharpInfer.Tests.Engine;

/// <summary>
/// Sampled drafting (Leviathan/Chen with a full proposal distribution q): the draft draws from its own processed
/// distribution, the target accepts with min(1, p/q) and otherwise draws from norm(max(0, p − q)). The output must be
/// distributed exactly as plain sampling — checked on the sampler alone against the exact p, and end to end through
/// the engine with a real draft/target pair — and a deliberately wrong residual must be caught by the same tests.
/// </summary>
public class SpeculativeSampledDraftingTests(ITestOutputHelper output)
{
    // a target that departs further from its draft (--noise 0.08: llama.cpp's table gives greedy acceptance
    // near 0 from 0.05 on), so that rejections, and with them the residual, are frequent and p − q is large
    private static readonly Lazy<string> NoisyWidened = new(() => Widen("widened-tiny-noise08-f32.gguf", "--noise", "0.08"));

    // chi-square upper 0.001 critical values for 1..10 degrees of freedom
    private static readonly double[] Critical = [10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588];

    private static readonly float[] TargetLogits = [2f, 1.5f, 1f, 0.5f, 0f, -0.5f, -1f, -3f];
    private static readonly float[] DraftLogits = [0f, 1f, 2f, 0.5f, -1f, 1f, -2f, 0f];   // a quite different q

    /// <summary>softmax, then the smallest most-likely set holding top-p of the mass, renormalised.</summary>
    private static double[] Processed(float[] logits, float topP)
    {
        double max = logits.Max();
        var e = logits.Select(l => Math.Exp(l - max)).ToArray();
        double sum = e.Sum();
        var p = e.Select(x => x / sum).ToArray();
        var order = Enumerable.Range(0, p.Length).OrderByDescending(i => p[i]).ToArray();
        var kept = new double[p.Length];
        double acc = 0;
        foreach (int i in order)
        {
            kept[i] = p[i];
            acc += p[i];
            if (acc >= topP) break;
        }
        return kept.Select(x => x / acc).ToArray();
    }

    private static (int[] Counts, int Accepted) Trials(float topP, bool wrongResidual, int n)
    {
        var sampler = new Sampler(new SamplingParams { Temperature = 1, TopP = topP, Seed = 7 }, 8, []);
        var scratch = new SamplerScratch(8);
        var q = new float[8];
        var target = new float[8];
        var draft = new float[8];
        var counts = new int[8];
        int accepted = 0;
        for (int t = 0; t < n; t++)
        {
            DraftLogits.CopyTo(draft, 0);
            TargetLogits.CopyTo(target, 0);
            int x = sampler.Propose(draft, scratch, q);
            Assert.True(q[x] > 0, "the proposal must come from q");
            int token = sampler.Verify(target, scratch, x, q, out bool ok, wrongResidual);
            if (ok)
            {
                Assert.Equal(x, token);
                accepted++;
            }
            counts[token]++;
        }
        return (counts, accepted);
    }

    private static double ChiSquareAgainst(int[] counts, double[] p, out int df)
    {
        double n = counts.Sum(), chi = 0;
        df = -1;
        for (int i = 0; i < p.Length; i++)
        {
            if (p[i] == 0)
            {
                Assert.Equal(0, counts[i]);   // a token outside the nucleus must never come out
                continue;
            }
            double e = n * p[i];
            chi += (counts[i] - e) * (counts[i] - e) / e;
            df++;
        }
        return chi;
    }

    [Theory]
    [InlineData(1.0f)]
    [InlineData(0.9f)]
    public void TheFullRuleGivesExactlyTheTargetDistributionAndAWrongResidualIsCaught(float topP)
    {
        var p = Processed(TargetLogits, topP);
        var q = Processed(DraftLogits, topP);
        const int N = 100_000;
        var (counts, accepted) = Trials(topP, wrongResidual: false, N);
        double chi = ChiSquareAgainst(counts, p, out int df);
        Assert.True(chi < Critical[df - 1], $"chi-square {chi:F1}, df {df}: [{string.Join(", ", counts)}] vs p [{string.Join(", ", p.Select(x => x.ToString("F3")))}]");
        // the acceptance rate is Σ min(p, q) (standard error about 0.0016 here)
        double expected = p.Zip(q, Math.Min).Sum();
        Assert.InRange(accepted / (double)N, expected - 0.01, expected + 0.01);

        var (wrong, _) = Trials(topP, wrongResidual: true, N);
        double chiWrong = ChiSquareAgainst(wrong, p, out int dfWrong);
        Assert.True(chiWrong > Critical[dfWrong - 1], $"redrawing from p went unnoticed: chi-square {chiWrong:F1}, df {dfWrong}");
    }

    /// <summary>End to end at temperature 1 (each run is ~60,000 tokens on two models, about a minute of the suite);
    /// top-p 0.9 is covered by the sampler-level test above and by the n-gram end-to-end test in
    /// SpeculativeDecodingTests, which run the same Verify code.</summary>
    [Fact]
    public async Task ADrawingDraftModelKeepsTheSampledDistributionEndToEnd()
    {
        const float topP = 1.0f;
        using var model = Model.Load(NoisyWidened.Value);
        var sampling = new SamplingParams { Temperature = 1.0f, TopP = topP, MaxTokens = 8, IgnoreEos = true };
        const int Requests = 2600;   // × 8 tokens ≥ 20,000 per side
        var plain = await Histogram(model, null, sampling, Requests, 1);
        EngineStats sampled = null!;
        var spec = await Histogram(model, Draft(3), sampling, Requests, 1_000_000, s => sampled = s);
        Assert.True(plain.Values.Sum() >= 20_000 && spec.Values.Sum() >= 20_000);
        var (chi, df) = ChiSquare(plain, spec);
        Assert.True(df >= 10 && chi < Critical001(df), $"chi-square {chi:F1} with {df} degrees of freedom (critical {Critical001(df):F1})");

        double rate = sampled.SpecAcceptedTokens / (double)sampled.SpecDraftTokens;
        output.WriteLine($"top-p {topP}: sampled drafting accepted {sampled.SpecAcceptedTokens} of {sampled.SpecDraftTokens} ({rate:P1}); chi-square {chi:F1} (df {df})");

        // the test can fail: redrawing rejected positions from p instead of max(0, p − q) skews the output
        var wrong = await Histogram(model, Draft(3) with { WrongResidualForTests = true }, sampling, Requests, 2_000_000);
        var (chiWrong, dfWrong) = ChiSquare(plain, wrong);
        output.WriteLine($"wrong residual: chi-square {chiWrong:F1} (df {dfWrong}, critical {Critical001(dfWrong):F1})");
        Assert.True(chiWrong > Critical001(dfWrong), $"a wrong residual went unnoticed: chi-square {chiWrong:F1}, df {dfWrong}");

        // drawing from q accepts more than proposing the draft's argmax (a one-hot q) at temperature 1
        EngineStats argmax = null!;
        await Histogram(model, Draft(3) with { ArgmaxDraftsForTests = true }, sampling, Requests / 4, 3_000_000, s => argmax = s);
        double argmaxRate = argmax.SpecAcceptedTokens / (double)argmax.SpecDraftTokens;
        output.WriteLine($"argmax drafting accepted {argmax.SpecAcceptedTokens} of {argmax.SpecDraftTokens} ({argmaxRate:P1})");
        Assert.True(rate > argmaxRate, $"sampled drafting accepted {rate:P1}, argmax drafting {argmaxRate:P1}");
    }
}
