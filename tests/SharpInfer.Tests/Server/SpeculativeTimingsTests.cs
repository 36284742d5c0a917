using System.Text.Json.Nodes;
using SharpInfer.Engine.Speculation;
using SharpInfer.Tests.Engine;

namespace SharpInfer.Tests.Server;

/// <summary>llama.cpp's <c>timings</c> object in responses: <c>draft_n</c> / <c>draft_n_accepted</c> (speculative
/// decoding) in a non-streamed response and in the final streamed chunk, matching the engine's own counters.</summary>
public class SpeculativeTimingsTests
{
    // the prompt repeats, so n-gram lookup finds proposals (TinyStories text also repeats itself)
    private const string Prompt = "Once upon a time, there was a little girl named Lily. She loved to play in the park. " +
                                  "Once upon a time, there was a little girl named Lily. She loved to play";

    private static JsonObject Body(bool stream) => new()
    {
        ["prompt"] = Prompt,
        ["max_tokens"] = 48,
        ["temperature"] = 0,
        ["stream"] = stream,
    };

    [Fact]
    public async Task DraftCountsAreReportedPerResponseAndMatchTheEngine()
    {
        var spec = new SpeculativeConfig { NumSpeculativeTokens = 5, PromptLookupMin = 1, PromptLookupMax = 4 };
        await using var s = await ServerHarness.StartAsync(configure: o => o with { Engine = o.Engine with { Speculative = spec } });
        var r = await s.PostOkAsync("v1/completions", Body(stream: false));
        var t = r["timings"]!;
        int drafted = t["draft_n"]!.GetValue<int>(), accepted = t["draft_n_accepted"]!.GetValue<int>();
        await EngineExactnessTests.WaitIdle(s.Engine);
        Assert.True(drafted > 0 && accepted > 0 && accepted <= drafted, $"draft_n {drafted}, accepted {accepted}");
        Assert.Equal(s.Engine.Stats.SpecDraftTokens, drafted);         // the only request so far
        Assert.Equal(s.Engine.Stats.SpecAcceptedTokens, accepted);
        Assert.Equal(r["usage"]!["completion_tokens"]!.GetValue<int>(), t["predicted_n"]!.GetValue<int>());

        // streamed: the final chunk carries this request's counts, no other chunk has timings
        using var res = await s.PostStreamAsync("v1/completions", Body(stream: true), TestContext.Current.CancellationToken);
        var (chunks, done) = await ServerHarness.ReadAllSseAsync(res, TestContext.Current.CancellationToken);
        Assert.True(done);
        var last = chunks[^1];
        Assert.NotNull(last["choices"]![0]!["finish_reason"]);
        Assert.All(chunks.Take(chunks.Count - 1), c => Assert.False(c.ContainsKey("timings")));
        await EngineExactnessTests.WaitIdle(s.Engine);
        // the same greedy request proposes and accepts exactly the same again
        Assert.Equal(drafted, last["timings"]!["draft_n"]!.GetValue<int>());
        Assert.Equal(accepted, last["timings"]!["draft_n_accepted"]!.GetValue<int>());
        Assert.Equal(2L * drafted, s.Engine.Stats.SpecDraftTokens);
    }

    [Fact]
    public async Task WithoutSpeculationTimingsHaveNoDraftCounts()
    {
        await using var s = await ServerHarness.StartAsync();
        var r = await s.PostOkAsync("v1/completions", Body(stream: false));
        var t = r["timings"]!.AsObject();
        Assert.Equal(r["usage"]!["completion_tokens"]!.GetValue<int>(), t["predicted_n"]!.GetValue<int>());
        Assert.False(t.ContainsKey("draft_n"));
    }
}
