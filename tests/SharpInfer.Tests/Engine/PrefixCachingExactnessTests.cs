using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Engine;

/// <summary>
/// Automatic prefix caching end to end on the trained stories260K: a request whose prefix comes from the cache (memory
/// or disk) produces the same greedy tokens and bit-identical top log-probs as one computed from scratch, alone or
/// in any batch, after preemption and eviction, and across an engine restart through the disk tier.
/// </summary>
public class PrefixCachingExactnessTests
{
    private const string Shared =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. One day, she saw a big red ball " +
        "in the park. Tom was a happy dog who liked to run. The bird sang a song in the tall green tree.";
    private static readonly string[] Tails =
    [
        "Mom said, \"Be careful!\"", "They went to the store to buy some milk.", "The cat was sad because it lost its toy.",
        "Ben and Sue built a tall tower of blocks.", "The sun was hot and the sky was blue.", "He wanted to help his friend.",
        "The little boat sailed on the lake.", "Lily and Tom played with the ball all day.",
    ];

    private static SamplingParams Greedy(int max) => new() { Temperature = 0, MaxTokens = max, Logprobs = 5 };

    private sealed record Result(int[] Tokens, (int Id, int LogProbBits)[][] Top, FinishReason Finish, int Cached);

    private static async Task<Result> Collect(IAsyncEnumerable<RequestOutput> stream)
    {
        var tokens = new List<int>();
        var tops = new List<(int, int)[]>();
        var finish = FinishReason.Abort;
        int cached = -1;
        await foreach (var o in stream)
        {
            tokens.AddRange(o.TokenIds);
            if (o.LogProbs != null) foreach (var lp in o.LogProbs) tops.Add(lp.Top.Select(t => (t.Id, BitConverter.SingleToInt32Bits(t.LogProb))).ToArray());
            if (o.Finish is { } f) finish = f;
            cached = o.CachedPromptTokens;
        }
        return new Result(tokens.ToArray(), tops.ToArray(), finish, cached);
    }

    private static int[][] SharedPrefixPrompts(Model model) =>
        Tails.Select(t => model.Tokenizer.Encode(Shared + " " + t)).ToArray();

    private static EngineOptions Options(bool caching, int maxSeqs = 8, long? kvBytes = null, string? dir = null) => new()
    {
        Threads = 2,
        MaxNumSeqs = maxSeqs,
        MaxNumBatchedTokens = 48,   // prompts arrive in chunks
        KvType = KvDataType.F32,
        EnablePrefixCaching = caching,
        KvCacheMemoryBytes = kvBytes,
        PrefixCacheDir = dir,
    };

    /// <summary>The reference: each prompt computed from scratch in an engine without a prefix cache, one at a time.</summary>
    private static async Task<Result[]> Uncached(Model model, int[][] prompts, int maxTokens)
    {
        using var engine = new LlmEngine(model, Options(caching: false, maxSeqs: 1));
        var results = new Result[prompts.Length];
        for (int i = 0; i < prompts.Length; i++)
            results[i] = await Collect(engine.AddRequest(new EngineRequest { PromptTokens = prompts[i], Sampling = Greedy(maxTokens) }));
        Assert.All(results, r => Assert.Equal(0, r.Cached));
        return results;
    }

    private static void AssertSame(Result[] expected, Result[] actual)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(expected[i].Tokens.SequenceEqual(actual[i].Tokens),
                $"request {i}: [{string.Join(",", expected[i].Tokens)}] without the cache vs [{string.Join(",", actual[i].Tokens)}] with it");
            Assert.Equal(expected[i].Finish, actual[i].Finish);
            Assert.Equal(expected[i].Top.Length, actual[i].Top.Length);
            for (int s = 0; s < expected[i].Top.Length; s++) Assert.Equal(expected[i].Top[s], actual[i].Top[s]);   // ids and log-prob bits
        }
    }

    private static long PerToken(Model m) => ModelRunner.KvBytesPerToken(m.Config, KvDataType.F32);

    [Fact]
    public async Task CacheHitsGiveTheSameTokensAndLogProbsAloneAndInAnyBatch()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var prompts = SharedPrefixPrompts(model);
        Assert.True(prompts.Min(p => p.Length) > 48, "the shared prefix spans several blocks");
        var reference = await Uncached(model, prompts, 24);
        Assert.Contains(reference, r => r.Tokens.Distinct().Count() > 8);   // real text

        using var engine = new LlmEngine(model, Options(caching: true));
        // 1. one at a time: from the second request on, the shared prefix is a hit
        var sequential = new Result[prompts.Length];
        for (int i = 0; i < prompts.Length; i++)
            sequential[i] = await Collect(engine.AddRequest(new EngineRequest { PromptTokens = prompts[i], Sampling = Greedy(24) }));
        AssertSame(reference, sequential);
        Assert.Equal(0, sequential[0].Cached);
        Assert.All(sequential[1..], r => Assert.True(r.Cached >= 48, $"cached {r.Cached}"));

        // 2. all at once, in another order, mixed with an unrelated prompt: hits inside a batch of strangers
        var order = new[] { 5, 2, 7, 0, 3, 6, 1, 4 };
        var tasks = order.Select(i => Collect(engine.AddRequest(new EngineRequest { PromptTokens = prompts[i], Sampling = Greedy(24) }))).ToList();
        var stranger = model.Tokenizer.Encode("The dog ran to the big tree and barked at the bird.");
        var strangerTask = Collect(engine.AddRequest(new EngineRequest { PromptTokens = stranger, Sampling = Greedy(24) }));
        var batched = await Task.WhenAll(tasks);
        var inOrder = new Result[prompts.Length];
        for (int k = 0; k < order.Length; k++) inOrder[order[k]] = batched[k];
        AssertSame(reference, inOrder);
        Assert.All(inOrder, r => Assert.True(r.Cached > 0));
        AssertSame(await Uncached(model, [stranger], 24), [await strangerTask]);

        // 3. the counters saw it
        var stats = engine.Stats;
        Assert.True(stats.PrefixCacheHits > 0 && stats.PrefixCacheHits <= stats.PrefixCacheQueries);
        await EngineExactnessTests.WaitIdle(engine);
        Assert.Equal(0, engine.Stats.KvBlocksUsed);   // everything released: cached blocks count as free
    }

    [Fact]
    public async Task PreemptionAndEvictionInATinyCacheKeepResultsExact()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var prompts = SharedPrefixPrompts(model).Concat(SharedPrefixPrompts(model)).ToArray();
        var reference = await Uncached(model, prompts, 40);
        Assert.True(prompts.Max(p => p.Length) + 40 <= 16 * 16, "every request must fit the small cache alone");
        using var engine = new LlmEngine(model, Options(caching: true, maxSeqs: 16, kvBytes: PerToken(model) * 16 * 16));   // 16 blocks
        var results = await Task.WhenAll(prompts.Select(p => Collect(engine.AddRequest(new EngineRequest { PromptTokens = p, Sampling = Greedy(40) }))));
        AssertSame(reference, results);
        var stats = engine.Stats;
        Assert.True(stats.Preemptions > 0, "the tiny cache should have forced preemption");
        Assert.True(stats.PrefixCacheEvictions > 0, "the tiny cache should have evicted cached blocks");
        await EngineExactnessTests.WaitIdle(engine);
        Assert.Equal(0, engine.Stats.KvBlocksUsed);
    }

    [Fact]
    public async Task TheNextTurnHitsOnThePreviousPromptAndAnswer()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var turn1 = model.Tokenizer.Encode(Shared);
        using var engine = new LlmEngine(model, Options(caching: true));
        var first = await Collect(engine.AddRequest(new EngineRequest { PromptTokens = turn1, Sampling = Greedy(40) }));
        Assert.Equal(40, first.Tokens.Length);
        // the conversation so far plus a new message: the whole previous prompt and answer is history
        var turn2 = turn1.Concat(first.Tokens).Concat(model.Tokenizer.Encode(" Tom said hello.")).ToArray();
        var second = await Collect(engine.AddRequest(new EngineRequest { PromptTokens = turn2, Sampling = Greedy(24) }));
        // everything the first turn computed is reused: its prompt and all but the last answer token, the full blocks
        // and the partly filled last one
        int computed = turn1.Length + first.Tokens.Length - 1;
        Assert.NotEqual(0, computed % 16);   // so that the partial block is exercised
        Assert.Equal(computed, second.Cached);
        Assert.True(second.Cached > turn1.Length, "the hit reaches into the answer's blocks");
        AssertSame(await Uncached(model, [turn2], 24), [second]);
    }

    [Fact]
    public async Task ConversationsReusingPartialBlocksStayExactInABatch()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var prompts = SharedPrefixPrompts(model)[..4];
        using var engine = new LlmEngine(model, Options(caching: true, maxSeqs: 4));
        // turn 1 of four conversations at once, then turn 2 of each (history + answer + a new message) at once
        var firsts = await Task.WhenAll(prompts.Select(p => Collect(engine.AddRequest(new EngineRequest { PromptTokens = p, Sampling = Greedy(21) with { IgnoreEos = true } }))));
        var more = model.Tokenizer.Encode(" Then they went home.");
        var turn2 = prompts.Select((p, i) => p.Concat(firsts[i].Tokens).Concat(more).ToArray()).ToArray();
        var seconds = await Task.WhenAll(turn2.Select(p => Collect(engine.AddRequest(new EngineRequest { PromptTokens = p, Sampling = Greedy(16) }))));
        AssertSame(await Uncached(model, turn2, 16), seconds);
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(prompts[i].Length + firsts[i].Tokens.Length - 1, seconds[i].Cached);
        await EngineExactnessTests.WaitIdle(engine);
        Assert.Equal(0, engine.Stats.KvBlocksUsed);
    }

    [Fact]
    public async Task DifferentSaltsNeverShareBlocks()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var prompt = SharedPrefixPrompts(model)[0];
        using var engine = new LlmEngine(model, Options(caching: true));
        async Task<Result> Run(string? salt) =>
            await Collect(engine.AddRequest(new EngineRequest { PromptTokens = prompt, Sampling = Greedy(8), CacheSalt = salt }));
        Assert.Equal(0, (await Run("alice")).Cached);
        Assert.Equal(0, (await Run("bob")).Cached);      // same tokens, other tenant: computed
        Assert.Equal(0, (await Run(null)).Cached);       // no salt is a tenant of its own
        var again = await Run("alice");
        // alice's first request computed the prompt and 7 answer tokens: the full blocks of the prompt are hits, and
        // when those tokens end in the same block as the prompt, that partial block's share of the prompt too (its
        // last token excepted)
        int computed = prompt.Length + 7, full = (prompt.Length - 1) / 16;
        Assert.Equal(computed / 16 == full ? prompt.Length - 1 : full * 16, again.Cached);
    }

    [Fact]
    public async Task ADiskTierMakesARestartedEngineWarmWithIdenticalResults()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var prompts = SharedPrefixPrompts(model);
        var reference = await Uncached(model, prompts[..2], 16);
        var dir = Directory.CreateTempSubdirectory("sharpinfer-prefix-").FullName;
        try
        {
            var warnings = new List<string>();
            using (var engine = new LlmEngine(model, Options(caching: true) with { PrefixCacheDir = dir, Warn = warnings.Add }))
            {
                var r = await Collect(engine.AddRequest(new EngineRequest { PromptTokens = prompts[0], Sampling = Greedy(16) }));
                AssertSame(reference[..1], [r]);
            }   // stopping hands the cached blocks to the disk tier
            Assert.NotEmpty(Directory.EnumerateFiles(dir, "*.kvb", SearchOption.AllDirectories));

            using (var restarted = new LlmEngine(model, Options(caching: true) with { PrefixCacheDir = dir, Warn = warnings.Add }))
            {
                var r = await Collect(restarted.AddRequest(new EngineRequest { PromptTokens = prompts[1], Sampling = Greedy(16) }));
                AssertSame(reference[1..2], [r]);
                Assert.True(r.Cached >= 48, $"cached {r.Cached}");
                Assert.Equal(r.Cached, restarted.Stats.PrefixCacheDiskHits);   // all of it came from disk
            }
            // damage every stored file: a third engine must not use any of them, and still be exact
            foreach (var f in Directory.EnumerateFiles(dir, "*.kvb", SearchOption.AllDirectories))
            {
                var bytes = File.ReadAllBytes(f);
                bytes[^1] ^= 0xFF;
                File.WriteAllBytes(f, bytes);
            }
            using (var third = new LlmEngine(model, Options(caching: true) with { PrefixCacheDir = dir, Warn = warnings.Add }))
            {
                var r = await Collect(third.AddRequest(new EngineRequest { PromptTokens = prompts[1], Sampling = Greedy(16) }));
                AssertSame(reference[1..2], [r]);
                Assert.Equal(0, r.Cached);
                Assert.True(third.DiskStore!.Rejected > 0);
            }
            Assert.Empty(warnings);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
