using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Engine;

/// <summary>
/// Cascade attention end to end: requests that hit the same cached prefix decode together, their shared blocks walked
/// once per step for the whole group (docs/kv-cache.md), and still produce the greedy tokens and top log-prob bits of
/// each request computed alone without a cache. qwen3-tiny (head size 64, GQA 2) takes the AVX-512 tile kernels, so on
/// an AVX-512 machine the cascade path runs; elsewhere the test still checks the results.
/// </summary>
public class CascadeEngineTests
{
    private static readonly string[] Tails =
    [
        "and then the rain began.", "but the door was closed.", "so they sang a song together.", "when the bell rang twice.",
        "while the cat slept on the mat.", "after the long walk home.",
    ];

    private static EngineOptions Options(bool caching, int maxSeqs) => new()
    {
        Threads = 2,
        MaxNumSeqs = maxSeqs,
        KvType = KvDataType.F16,
        EnablePrefixCaching = caching,
        KvCacheMemoryBytes = 64L << 20,
    };

    private static async Task<(int[] Tokens, int[][] TopBits)> Collect(IAsyncEnumerable<RequestOutput> stream)
    {
        var tokens = new List<int>();
        var tops = new List<int[]>();
        await foreach (var o in stream)
        {
            tokens.AddRange(o.TokenIds);
            if (o.LogProbs != null)
                foreach (var lp in o.LogProbs) tops.Add(lp.Top.SelectMany(t => new[] { t.Id, BitConverter.SingleToInt32Bits(t.LogProb) }).ToArray());
        }
        return (tokens.ToArray(), tops.ToArray());
    }

    [Fact]
    public async Task RequestsDecodingOverOneCachedPrefixMatchEachAloneUncached()
    {
        using var model = Model.Load(TestModels.Get("qwen3-tiny", "f32"));
        string shared = string.Join(" ", Enumerable.Range(0, 30).Select(i => $"Line {i}: the little fox ran past the old mill and the river."));
        var prompts = Tails.Select(t => model.Tokenizer.Encode(shared + " " + t)).ToArray();
        Assert.True(prompts.Min(p => p.Length) > 8 * 16, "the shared prefix spans more than the cascade's minimum of blocks");
        var sampling = new SamplingParams { Temperature = 0, MaxTokens = 12, Logprobs = 3 };

        var reference = new (int[] Tokens, int[][] TopBits)[prompts.Length];
        using (var plain = new LlmEngine(model, Options(caching: false, maxSeqs: 1)))
            for (int i = 0; i < prompts.Length; i++)
                reference[i] = await Collect(plain.AddRequest(new EngineRequest { PromptTokens = prompts[i], Sampling = sampling }));

        using var engine = new LlmEngine(model, Options(caching: true, maxSeqs: 8));
        // the first request fills the cache; the others then hit its prefix and decode side by side
        var first = await Collect(engine.AddRequest(new EngineRequest { PromptTokens = prompts[0], Sampling = sampling }));
        var rest = await Task.WhenAll(prompts.Skip(1).Select(p => Collect(engine.AddRequest(new EngineRequest { PromptTokens = p, Sampling = sampling }))));
        var all = rest.Prepend(first).ToArray();
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.True(reference[i].Tokens.SequenceEqual(all[i].Tokens), $"request {i}: tokens differ with shared cached blocks");
            Assert.Equal(reference[i].TopBits.Length, all[i].TopBits.Length);
            for (int s = 0; s < all[i].TopBits.Length; s++) Assert.Equal(reference[i].TopBits[s], all[i].TopBits[s]);
        }
        Assert.True(engine.Stats.PrefixCacheHits > 0);
    }
}
