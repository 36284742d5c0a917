using SharpInfer.Engine;
using SharpInfer.Engine.Speculation;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Sampling;
using static SharpInfer.Tests.Engine.SpeculativeDecodingTests;

namespace SharpInfer.Tests.Engine;

/// <summary>
/// The number of proposals per request follows its measured acceptance (<see cref="AdaptiveDraftLimit"/>): the rule
/// itself, and end to end that a draft that agrees more with its target gets longer proposal runs while the output
/// stays exactly plain decoding's.
/// </summary>
public class SpeculativeAdaptiveTests
{
    [Fact]
    public void TheLimitGrowsAfterAFullyAcceptedRunAndFallsToWhatStoodAfterARejection()
    {
        Assert.Equal(4, AdaptiveDraftLimit.Next(current: 3, proposed: 3, accepted: 3, max: 8));   // all stood: one more
        Assert.Equal(8, AdaptiveDraftLimit.Next(current: 8, proposed: 8, accepted: 8, max: 8));   // never past the maximum
        Assert.Equal(3, AdaptiveDraftLimit.Next(current: 8, proposed: 8, accepted: 2, max: 8));   // rejected at 2: 2 + 1
        Assert.Equal(1, AdaptiveDraftLimit.Next(current: 5, proposed: 5, accepted: 0, max: 8));   // never below one
        Assert.Equal(4, AdaptiveDraftLimit.Next(current: 3, proposed: 2, accepted: 2, max: 8));   // fewer proposed (n-gram), all stood
    }

    [Fact]
    public void FailingProposalsBackOffExponentiallyAndOneAcceptedTokenEndsIt()
    {
        int failures = 0;
        for (int i = 1; i < AdaptiveDraftLimit.FailuresBeforePause; i++)
            Assert.Equal(0, AdaptiveDraftLimit.PauseAfter(ref failures, accepted: 0));   // a few failures: no pause
        var pauses = new List<int>();
        for (int i = 0; i < 9; i++) pauses.Add(AdaptiveDraftLimit.PauseAfter(ref failures, accepted: 0));
        Assert.Equal([1, 2, 4, 8, 16, 32, 32, 32, 32], pauses);                     // doubling, capped
        Assert.Equal(0, AdaptiveDraftLimit.PauseAfter(ref failures, accepted: 1));   // anything accepted: back to normal
        Assert.Equal(0, failures);
        for (int i = 1; i < AdaptiveDraftLimit.FailuresBeforePause; i++)
            Assert.Equal(0, AdaptiveDraftLimit.PauseAfter(ref failures, accepted: 0));
        Assert.Equal(1, AdaptiveDraftLimit.PauseAfter(ref failures, accepted: 0));
        for (int i = 0; i < 100; i++) AdaptiveDraftLimit.PauseAfter(ref failures, accepted: 0);
        Assert.Equal(AdaptiveDraftLimit.MaxPause, AdaptiveDraftLimit.PauseAfter(ref failures, accepted: 0));   // no overflow
    }

    private static (int[][] Tokens, EngineStats Stats) Generate(Model model, SpeculativeConfig? spec, int[][] prompts)
    {
        using var engine = new LlmEngine(model, new EngineOptions
        {
            Threads = 2,
            MaxNumSeqs = 4,
            MaxNumBatchedTokens = 128,
            KvType = KvDataType.F32,
            Speculative = spec,
            EnablePrefixCaching = false,
        });
        var tokens = prompts.Select(p => engine.Generate(new EngineRequest { PromptTokens = p, Sampling = SamplingParams.Greedy(40) })
                                               .SelectMany(o => o.TokenIds).ToArray()).ToArray();
        EngineExactnessTests.WaitIdle(engine).GetAwaiter().GetResult();
        return (tokens, engine.Stats);
    }

    [Fact]
    public void ProposalRunsFollowAcceptanceAndTheOutputStaysExact()
    {
        var spec = Draft(SpeculativeConfig.MaxSpeculativeTokens);
        double Mean(EngineStats s) => s.SpecDraftTokens / (double)s.SpecDrafts;
        double close, far;
        {
            using var model = Model.Load(WidenedPath.Value);   // --noise 0.02: the draft mostly agrees
            var prompts = EngineExactnessTests.Prompts(model, 4, seed: 11);
            var plain = Generate(model, null, prompts).Tokens;
            var (tokens, stats) = Generate(model, spec, prompts);
            for (int i = 0; i < prompts.Length; i++) Assert.Equal(plain[i], tokens[i]);
            close = Mean(stats);
            // the first run of every request proposes the maximum (15 after rounding to the kernels' tiles); rejections
            // must have brought later runs down
            Assert.True(close < 15, $"mean proposals per run {close:F2}: the limit never came down after rejections");
        }
        {
            using var model = Model.Load(Widen("widened-tiny-noise08-f32.gguf", "--noise", "0.08"));   // agrees less
            var prompts = EngineExactnessTests.Prompts(model, 4, seed: 11);
            var plain = Generate(model, null, prompts).Tokens;
            var (tokens, stats) = Generate(model, spec, prompts);
            for (int i = 0; i < prompts.Length; i++) Assert.Equal(plain[i], tokens[i]);
            far = Mean(stats);
        }
        Assert.True(close > far, $"mean proposals per run: {close:F2} with the closer target, {far:F2} with the farther one");
    }
}
