using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Engine;

/// <summary>
/// The serving engine's central promise: a request produces exactly the same tokens and bit-identical top
/// log-probs whether it runs alone or batched with others — with chunked prefill, paging, staggered arrivals and
/// preemption. Relies on batch-invariant kernels.
/// </summary>
public class EngineExactnessTests
{
    private static readonly string[] Sentences =
    [
        "Once upon a time, there was a little girl named Lily.", "She loved to play outside in the sun.",
        "One day, she saw a big red ball in the park.", "Tom was a happy dog who liked to run.",
        "The bird sang a song in the tall green tree.", "Mom said, \"Be careful!\"", "They went to the store to buy some milk.",
        "The cat was sad because it lost its toy.", "Ben and Sue built a tall tower of blocks.", "The sun was hot and the sky was blue.",
        "He wanted to help his friend.", "The little boat sailed on the lake.",
    ];

    internal static int[][] Prompts(Model model, int count, int seed)
    {
        var rng = new Random(seed);
        var prompts = new int[count][];
        for (int i = 0; i < count; i++)
        {
            int sentences = 1 + (i * 7 % 11);           // 1..11 sentences: about 10..150 tokens
            var text = string.Join(" ", Enumerable.Range(0, sentences).Select(_ => Sentences[rng.Next(Sentences.Length)]));
            prompts[i] = model.Tokenizer.Encode(text);
        }
        return prompts;
    }

    private static SamplingParams Greedy(int max) => new() { Temperature = 0, MaxTokens = max, Logprobs = 5 };

    private sealed record Result(int[] Tokens, (int Id, float LogProb)[][] Top, FinishReason Finish);

    private static async Task<Result> Collect(IAsyncEnumerable<RequestOutput> stream)
    {
        var tokens = new List<int>();
        var tops = new List<(int, float)[]>();
        FinishReason finish = FinishReason.Abort;
        await foreach (var o in stream)
        {
            tokens.AddRange(o.TokenIds);
            if (o.LogProbs != null) foreach (var lp in o.LogProbs) tops.Add(lp.Top.Select(t => (t.Id, t.LogProb)).ToArray());
            if (o.Finish is { } f) finish = f;
        }
        return new Result(tokens.ToArray(), tops.ToArray(), finish);
    }

    private static async Task<Result[]> RunAlone(Model model, int[][] prompts, int maxTokens)
    {
        using var engine = new LlmEngine(model, new EngineOptions { Threads = 2, MaxNumSeqs = 1, MaxNumBatchedTokens = 512, KvType = KvDataType.F32 });
        var results = new Result[prompts.Length];
        for (int i = 0; i < prompts.Length; i++)
            results[i] = await Collect(engine.AddRequest(new EngineRequest { PromptTokens = prompts[i], Sampling = Greedy(maxTokens) }));
        return results;
    }

    private static async Task<Result[]> RunTogether(LlmEngine engine, int[][] prompts, int maxTokens, int seed)
    {
        var rng = new Random(seed);
        var tasks = new List<Task<Result>>();
        foreach (var p in prompts)
        {
            tasks.Add(Collect(engine.AddRequest(new EngineRequest { PromptTokens = p, Sampling = Greedy(maxTokens) })));
            if (rng.Next(3) == 0) await Task.Delay(rng.Next(1, 15));   // staggered arrivals: join a running batch
        }
        return await Task.WhenAll(tasks);
    }

    private static void AssertSame(Result[] alone, Result[] together)
    {
        for (int i = 0; i < alone.Length; i++)
        {
            Assert.True(alone[i].Tokens.SequenceEqual(together[i].Tokens),
                $"request {i}: alone [{string.Join(",", alone[i].Tokens)}] vs together [{string.Join(",", together[i].Tokens)}]");
            Assert.Equal(alone[i].Finish, together[i].Finish);
            Assert.Equal(alone[i].Top.Length, together[i].Top.Length);
            for (int s = 0; s < alone[i].Top.Length; s++)
                for (int k = 0; k < alone[i].Top[s].Length; k++)
                {
                    Assert.Equal(alone[i].Top[s][k].Id, together[i].Top[s][k].Id);
                    Assert.True(BitConverter.SingleToInt32Bits(alone[i].Top[s][k].LogProb) == BitConverter.SingleToInt32Bits(together[i].Top[s][k].LogProb),
                        $"request {i} step {s}: log-prob {alone[i].Top[s][k].LogProb:R} alone vs {together[i].Top[s][k].LogProb:R} together");
                }
        }
    }

    [Fact]
    public async Task BatchedChunkedStaggeredRequestsMatchRunningAlone()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var prompts = Prompts(model, 32, seed: 1);
        Assert.True(prompts.Max(p => p.Length) > 100 && prompts.Min(p => p.Length) < 20);
        var alone = await RunAlone(model, prompts, 40);
        Assert.Contains(alone, r => r.Tokens.Distinct().Count() > 10);   // real text, not a collapsed loop
        using var engine = new LlmEngine(model, new EngineOptions
        {
            Threads = 2,
            MaxNumSeqs = 12,
            MaxNumBatchedTokens = 48,
            KvType = KvDataType.F32,   // prompts arrive in chunks
        });
        var together = await RunTogether(engine, prompts, 40, seed: 2);
        AssertSame(alone, together);
        Assert.True(engine.Stats.MaxConcurrency > 4, $"max concurrency {engine.Stats.MaxConcurrency}: requests did not overlap");
        await WaitIdle(engine);
        Assert.Equal(0, engine.Stats.KvBlocksUsed);
    }

    [Fact]
    public async Task PreemptionUnderTinyKvCacheStillMatchesRunningAlone()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var prompts = Prompts(model, 32, seed: 3);
        Assert.True(prompts.Max(p => p.Length) + 40 <= 20 * 16, "every request must fit the small cache alone");
        var alone = await RunAlone(model, prompts, 40);
        var c = model.Config;
        long perToken = 2L * c.LayerCount * c.KvHeadCount * c.HeadDim * 4;
        using var engine = new LlmEngine(model, new EngineOptions
        {
            Threads = 2,
            MaxNumSeqs = 16,
            MaxNumBatchedTokens = 64,
            KvType = KvDataType.F32,
            KvCacheMemoryBytes = perToken * 16 * 20,   // 20 blocks of 16 tokens: a few sequences at a time
        });
        var together = await RunTogether(engine, prompts, 40, seed: 4);
        AssertSame(alone, together);
        Assert.True(engine.Stats.Preemptions > 0, "the tiny cache should have forced preemption");
        await WaitIdle(engine);
        Assert.Equal(0, engine.Stats.KvBlocksUsed);
    }

    /// <summary>Polls until the engine is idle; the 5-minute limit is only a hang guard (callers then assert the state),
    /// so a slow, loaded machine cannot make it give up early.</summary>
    internal static async Task WaitIdle(LlmEngine engine)
    {
        var deadline = DateTime.UtcNow.AddMinutes(5);
        while ((engine.ActiveRequests > 0 || engine.Stats.Running > 0 || engine.Stats.Waiting > 0 || engine.Stats.KvBlocksUsed > 0)
               && DateTime.UtcNow < deadline)
            await Task.Delay(10);
    }
}
