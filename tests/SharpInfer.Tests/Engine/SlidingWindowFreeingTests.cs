using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Engine;

/// <summary>
/// Freeing the KV blocks of sliding-window layers (KV-cache groups) changes no result: gemma3-tiny (window 16, five
/// windowed layers and a global one) and gpt-oss-tiny (window 16 on one of its two layers) give the same greedy tokens
/// and bit-identical top log-probs with freeing as with every position kept (<see cref="EngineOptions.SwaFull"/>), with
/// prompts and outputs well past the window: alone, batched with prompts in chunks, with prefix-cache hits (which need
/// the windowed groups' last blocks), and after preemption in a cache too small for everyone. And freeing is real: a
/// long sequence holds the blocks the arithmetic says, and a cache size that forces --swa-full to preempt runs the
/// same requests side by side without.
/// </summary>
public class SlidingWindowFreeingTests
{
    public static TheoryData<string, string> Models => new() { { "gemma3-tiny", "f32" }, { "gpt-oss-tiny", "q8_0" } };

    private static Model Load(string preset, string type) =>
        Model.Load(preset == "gemma3-tiny" ? TestModels.GetLarge(preset, type) : TestModels.Get(preset, type));

    private static SamplingParams Greedy(int max) => new() { Temperature = 0, MaxTokens = max, Logprobs = 5, IgnoreEos = true };

    private sealed record Result(int[] Tokens, (int Id, int LogProbBits)[][] Top, int Cached);

    private static async Task<Result> Collect(IAsyncEnumerable<RequestOutput> stream)
    {
        var tokens = new List<int>();
        var tops = new List<(int, int)[]>();
        int cached = -1;
        await foreach (var o in stream)
        {
            tokens.AddRange(o.TokenIds);
            if (o.LogProbs != null) foreach (var lp in o.LogProbs) tops.Add(lp.Top.Select(t => (t.Id, BitConverter.SingleToInt32Bits(t.LogProb))).ToArray());
            cached = o.CachedPromptTokens;
        }
        return new Result(tokens.ToArray(), tops.ToArray(), cached);
    }

    /// <summary>Prompts of 40–70 tokens (window 16), the first 48 shared by all but the last (prefix-cache hits).</summary>
    private static int[][] Prompts()
    {
        var rng = new Random(5);
        var shared = Enumerable.Range(0, 48).Select(_ => rng.Next(1000, 200000)).ToArray();
        var prompts = new List<int[]>();
        for (int i = 0; i < 5; i++)
            prompts.Add([.. shared, .. Enumerable.Range(0, 1 + rng.Next(22)).Select(_ => rng.Next(1000, 200000))]);
        prompts.Add([.. Enumerable.Range(0, 40).Select(_ => rng.Next(1000, 200000))]);
        return [.. prompts];
    }

    private const int MaxTokens = 30;

    private static EngineOptions Options(bool swaFull, bool caching, int maxSeqs, long? kvBytes = null) => new()
    {
        Threads = 2,
        MaxNumSeqs = maxSeqs,
        MaxNumBatchedTokens = 24,   // prompts in chunks that cross the window
        MaxModelLen = 512,
        KvType = KvDataType.F32,
        EnablePrefixCaching = caching,
        KvCacheMemoryBytes = kvBytes,
        SwaFull = swaFull,
    };

    private static async Task<Result[]> OneAtATime(LlmEngine engine, int[][] prompts)
    {
        var results = new Result[prompts.Length];
        for (int i = 0; i < prompts.Length; i++)
            results[i] = await Collect(engine.AddRequest(new EngineRequest { PromptTokens = prompts[i], Sampling = Greedy(MaxTokens) }));
        return results;
    }

    private static Task<Result[]> AllAtOnce(LlmEngine engine, int[][] prompts) =>
        Task.WhenAll(prompts.Select(p => Collect(engine.AddRequest(new EngineRequest { PromptTokens = p, Sampling = Greedy(MaxTokens) }))));

    private static void AssertSame(Result[] expected, Result[] actual, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(expected[i].Tokens.SequenceEqual(actual[i].Tokens),
                $"{what}, request {i}: [{string.Join(",", expected[i].Tokens)}] keeping every position vs [{string.Join(",", actual[i].Tokens)}] freeing");
            Assert.Equal(expected[i].Top.Length, actual[i].Top.Length);
            for (int s = 0; s < expected[i].Top.Length; s++) Assert.Equal(expected[i].Top[s], actual[i].Top[s]);   // ids and log-prob bits
        }
    }

    /// <summary>Bytes of one block of the engine's layout for this model (grouped unless <paramref name="swaFull"/>).</summary>
    private static long BlockBytes(Model m, bool swaFull) =>
        ModelRunner.KvBytesPerBlockToken(m.Config, KvDataType.F32, groups: ModelRunner.KvGroups(m.Config, swaFull)) * 16;

    [Theory]
    [MemberData(nameof(Models))]
    public async Task FreeingGivesTheSameTokensAndLogProbsAloneBatchedWithHitsAndPreempted(string preset, string type)
    {
        using var model = Load(preset, type);
        Assert.Equal(16, model.Config.SlidingWindow);
        var groups = ModelRunner.KvGroups(model.Config, swaFull: false);
        Assert.True(groups.WindowGroupCount > 0 && groups.FullGroupCount > 0);
        var prompts = Prompts();
        Result[] reference;
        using (var engine = new LlmEngine(model, Options(swaFull: true, caching: false, maxSeqs: 1))) reference = await OneAtATime(engine, prompts);
        Assert.All(reference, r => Assert.Equal(MaxTokens, r.Tokens.Length));
        Assert.Contains(reference, r => r.Tokens.Distinct().Count() > 3);   // not one token repeated

        // alone, nothing cached
        using (var engine = new LlmEngine(model, Options(swaFull: false, caching: false, maxSeqs: 1)))
            AssertSame(reference, await OneAtATime(engine, prompts), "alone");

        // batched, prompts in chunks, then the same prompts again: hits that need the windowed groups' last blocks
        using (var engine = new LlmEngine(model, Options(swaFull: false, caching: true, maxSeqs: 8)))
        {
            AssertSame(reference, await AllAtOnce(engine, prompts), "batched");
            var again = await OneAtATime(engine, prompts);
            AssertSame(reference, again, "prefix-cache hits");
            Assert.All(again, r => Assert.True(r.Cached >= 32, $"cached {r.Cached}"));
            await EngineExactnessTests.WaitIdle(engine);
            Assert.Equal(0, engine.Stats.KvBlocksUsed);
        }

        // a cache too small for everyone at once: preemption, with and without prefix caching
        foreach (bool caching in new[] { false, true })
        {
            // room for two requests' full-attention groups, and every windowed group's window and a prompt chunk
            long blocks = groups.FullGroupCount * 2 * BlockTable.BlocksFor(70 + MaxTokens, 16) + groups.WindowGroupCount * 8;
            using var engine = new LlmEngine(model, Options(swaFull: false, caching, maxSeqs: 6, kvBytes: blocks * BlockBytes(model, false)));
            AssertSame(reference, await AllAtOnce(engine, prompts), $"preempted (prefix caching {caching})");
            Assert.True(engine.Stats.Preemptions > 0, "the small cache should have forced preemption");
            await EngineExactnessTests.WaitIdle(engine);
            Assert.Equal(0, engine.Stats.KvBlocksUsed);
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public async Task TheDiskTierKeepsEveryGroupsBlocksAcrossARestart(string preset, string type)
    {
        using var model = Load(preset, type);
        var prompts = Prompts();
        Result[] reference;
        using (var engine = new LlmEngine(model, Options(swaFull: true, caching: false, maxSeqs: 1))) reference = await OneAtATime(engine, prompts[..2]);
        var dir = Directory.CreateTempSubdirectory("sharpinfer-swa-").FullName;
        try
        {
            var warnings = new List<string>();
            using (var engine = new LlmEngine(model, Options(swaFull: false, caching: true, maxSeqs: 1) with { PrefixCacheDir = dir, Warn = warnings.Add }))
                AssertSame(reference[..1], await OneAtATime(engine, prompts[..1]), "before the restart");
            // stopping handed the cached blocks, windowed groups' included, to the disk tier
            using (var restarted = new LlmEngine(model, Options(swaFull: false, caching: true, maxSeqs: 1) with { PrefixCacheDir = dir, Warn = warnings.Add }))
            {
                var r = await OneAtATime(restarted, prompts[1..2]);
                AssertSame(reference[1..2], r, "after the restart");
                Assert.True(r[0].Cached >= 32, $"cached {r[0].Cached}");
                Assert.Equal(r[0].Cached, restarted.Stats.PrefixCacheDiskHits);   // all of it from disk, counted once per position
            }
            Assert.Empty(warnings);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public async Task ALongSequenceHoldsOnlyTheWindowOfItsWindowedLayers(string preset, string type)
    {
        using var model = Load(preset, type);
        var groups = ModelRunner.KvGroups(model.Config, swaFull: false);
        var rng = new Random(9);
        var prompt = Enumerable.Range(0, 180).Select(_ => rng.Next(1000, 200000)).ToArray();
        using var engine = new LlmEngine(model, Options(swaFull: false, caching: false, maxSeqs: 1));
        var result = await Collect(engine.AddRequest(new EngineRequest { PromptTokens = prompt, Sampling = Greedy(60) }));
        await EngineExactnessTests.WaitIdle(engine);
        long maxHeld = engine.Stats.KvBlocksPeak;   // the most the sequence ever held, prompt chunks included
        int length = prompt.Length + result.Tokens.Length;
        Assert.Equal(240, length);
        // the most a 240-token sequence may hold: every block in the full groups, the window and a 24-token chunk in the
        // others (a chunk of n tokens at C needs blocks ⌊(C − 15) / 16⌋ … ⌈(C + n) / 16⌉ − 1: at most 4)
        long bound = groups.FullGroupCount * (long)BlockTable.BlocksFor(length, 16)
                     + groups.WindowGroupCount * (long)(KvCacheGroups.WindowBlocks(16, 16) + BlockTable.BlocksFor(24, 16));
        Assert.True(maxHeld <= bound, $"held {maxHeld} blocks, bound {bound}");
        long fullLayout = (long)BlockTable.BlocksFor(length, 16) * model.Config.LayerCount;   // layer-blocks kept by --swa-full
        Assert.True(maxHeld * groups.LayersPerGroup < fullLayout, $"{maxHeld * groups.LayersPerGroup} layer-blocks held vs {fullLayout} keeping everything");
        // and --swa-full holds exactly every position of every layer
        using var full = new LlmEngine(model, Options(swaFull: true, caching: false, maxSeqs: 1));
        await Collect(full.AddRequest(new EngineRequest { PromptTokens = prompt, Sampling = Greedy(60) }));
        await EngineExactnessTests.WaitIdle(full);
        Assert.Equal(BlockTable.BlocksFor(length - 1, 16), full.Stats.KvBlocksPeak);   // the last token's keys are never computed
    }

    [Theory]
    [MemberData(nameof(Models))]
    public async Task AMemorySizeThatMakesSwaFullPreemptRunsEveryoneAtOnceWhenFreeing(string preset, string type)
    {
        using var model = Load(preset, type);
        var rng = new Random(13);
        var prompts = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, 300).Select(_ => rng.Next(1000, 200000)).ToArray()).ToArray();
        // what --swa-full needs for two 330-token sequences: three cannot run at once (freeing, they fit: gpt-oss keeps
        // half its layers whole, so 3 × 21 blocks of its full layer and a few of its windowed one, against 2 × 21 × 2)
        long bytes = 2L * BlockTable.BlocksFor(300 + MaxTokens, 16) * BlockBytes(model, swaFull: true);
        var preemptions = new Dictionary<bool, long>();
        var results = new Dictionary<bool, Result[]>();
        foreach (bool swaFull in new[] { true, false })
        {
            using var engine = new LlmEngine(model, Options(swaFull, caching: false, maxSeqs: 4, kvBytes: bytes));
            results[swaFull] = await AllAtOnce(engine, prompts);
            preemptions[swaFull] = engine.Stats.Preemptions;
            Assert.True(engine.KvCacheBytes <= bytes);
        }
        AssertSame(results[true], results[false], "same memory");
        Assert.True(preemptions[true] > 0, "three long sequences should not fit what two need with every position kept");
        Assert.Equal(0, preemptions[false]);
    }
}
