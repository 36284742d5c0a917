using SharpInfer.Engine;
using SharpInfer.Engine.Pooling;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Engine;

/// <summary>Pooling requests inside the serving engine: batch invariance with generation traffic, per-token output,
/// Matryoshka truncation, the prefix cache left alone, the rank head, and clear errors for impossible requests.</summary>
public class PoolingEngineTests
{
    private static Model Load() => Model.Load(TestModels.Get("qwen3-tiny", "f32"));

    private static EngineOptions Options(int budget = 512, int seqs = 8) =>
        new() { Threads = 2, MaxNumSeqs = seqs, MaxNumBatchedTokens = budget, MaxModelLen = 512, KvType = KvDataType.F32 };

    [Fact]
    public async Task A_vector_is_the_same_alone_and_batched_with_generation()
    {
        using var model = Load();
        var texts = EmbeddingParityTests.Texts;
        float[][] alone;
        using (var engine = new LlmEngine(model, Options()))
        {
            alone = new float[texts.Length][];
            for (int i = 0; i < texts.Length; i++)
                alone[i] = (await engine.PoolAsync(EngineRequest.ForPooling(model.Tokenizer.Encode(texts[i])))).Vectors[0];
        }
        using (var engine = new LlmEngine(model, Options(budget: 24)))
        {
            // generation requests already decoding when the pooling requests arrive, sharing every step with them
            var generation = Enumerable.Range(0, 3).Select(i => Drain(engine.AddRequest(new EngineRequest
            {
                PromptTokens = model.Tokenizer.Encode($"Story {i}: once upon a time"),
                Sampling = new SamplingParams { Temperature = 0, MaxTokens = 40, IgnoreEos = true },
            }))).ToArray();
            var pooled = await Task.WhenAll(texts.Select(t => engine.PoolAsync(EngineRequest.ForPooling(model.Tokenizer.Encode(t)))));
            await Task.WhenAll(generation);
            for (int i = 0; i < texts.Length; i++) Assert.Equal(alone[i], pooled[i].Vectors[0]);
            Assert.True(engine.Stats.MaxConcurrency > 1, "the pooling requests never shared a step");
        }
    }

    private static async Task<int> Drain(IAsyncEnumerable<RequestOutput> stream)
    {
        int n = 0;
        await foreach (var o in stream) n += o.TokenIds.Length;
        return n;
    }

    [Fact]
    public async Task None_gives_one_vector_per_token_and_mean_is_their_average()
    {
        using var model = Load();
        using var engine = new LlmEngine(model, Options(budget: 8));
        var tokens = model.Tokenizer.Encode(EmbeddingParityTests.Texts[1]);
        var raw = await engine.PoolAsync(EngineRequest.ForPooling(tokens, new PoolingParams { Type = PoolingType.None, Normalize = -1 }));
        Assert.Equal(tokens.Length, raw.Vectors.Length);
        var mean = (await engine.PoolAsync(EngineRequest.ForPooling(tokens, new PoolingParams { Type = PoolingType.Mean, Normalize = -1 }))).Vectors[0];
        var last = (await engine.PoolAsync(EngineRequest.ForPooling(tokens, new PoolingParams { Type = PoolingType.Last, Normalize = -1 }))).Vectors[0];
        var cls = (await engine.PoolAsync(EngineRequest.ForPooling(tokens, new PoolingParams { Type = PoolingType.Cls, Normalize = -1 }))).Vectors[0];
        Assert.Equal(raw.Vectors[^1], last);
        Assert.Equal(raw.Vectors[0], cls);
        for (int d = 0; d < mean.Length; d++)
            Assert.Equal(raw.Vectors.Average(v => (double)v[d]), mean[d], 5);
    }

    [Fact]
    public async Task Dimensions_truncate_then_normalize_again()
    {
        using var model = Load();
        using var engine = new LlmEngine(model, Options());
        var tokens = model.Tokenizer.Encode("Matryoshka");
        var full = (await engine.PoolAsync(EngineRequest.ForPooling(tokens, new PoolingParams { Normalize = -1 }))).Vectors[0];
        var cut = (await engine.PoolAsync(EngineRequest.ForPooling(tokens, new PoolingParams { Dimensions = 32 }))).Vectors[0];
        Assert.Equal(32, cut.Length);
        Assert.Equal(1.0, Math.Sqrt(cut.Sum(x => (double)x * x)), 5);
        Assert.True(EmbeddingParityTests.Cosine(full.AsSpan(0, 32), cut) > 0.99999);
    }

    [Fact]
    public async Task Pooling_requests_neither_use_nor_fill_the_prefix_cache()
    {
        using var model = Load();
        using var engine = new LlmEngine(model, Options() with { EnablePrefixCaching = true });
        var tokens = model.Tokenizer.Encode(string.Join(" ", Enumerable.Repeat("A long shared prefix for the cache.", 8)));
        Assert.True(tokens.Length > 3 * 16);
        var first = await engine.PoolAsync(EngineRequest.ForPooling(tokens));
        var second = await engine.PoolAsync(EngineRequest.ForPooling(tokens));
        Assert.Equal(first.Vectors[0], second.Vectors[0]);
        Assert.Equal(0, engine.Stats.PrefixCacheBlocks);
        Assert.Equal(0, engine.Stats.PrefixCacheHits);
    }

    [Fact]
    public async Task Impossible_requests_are_refused_clearly()
    {
        using var model = Load();
        using var engine = new LlmEngine(model, Options());
        var tokens = model.Tokenizer.Encode("hi");
        Assert.False(engine.HasClassifier);
        var rank = Assert.Throws<InvalidRequestException>(() => engine.AddRequest(EngineRequest.ForPooling(tokens, new PoolingParams { Type = PoolingType.Rank })));
        Assert.Contains("classification head", rank.Message);
        Assert.Throws<InvalidRequestException>(() => engine.AddRequest(EngineRequest.ForPooling(tokens, new PoolingParams { Dimensions = 0 })));
        Assert.Throws<InvalidRequestException>(() => engine.AddRequest(EngineRequest.ForPooling(tokens, new PoolingParams { Dimensions = 257 })));
        Assert.Throws<InvalidRequestException>(() => engine.AddRequest(EngineRequest.ForPooling(tokens, new PoolingParams { Normalize = -2 })));
        Assert.Throws<InvalidRequestException>(() => engine.AddRequest(EngineRequest.ForPooling([])));
        // a pooling prompt may fill the whole context (nothing is generated after it), one more token may not
        var full = Enumerable.Repeat(tokens[0], engine.MaxModelLen).ToArray();
        Assert.Single((await engine.PoolAsync(EngineRequest.ForPooling(full))).Vectors);
        Assert.Throws<ContextLengthExceededException>(() => engine.AddRequest(EngineRequest.ForPooling([.. full, tokens[0]])));
    }

    [Fact]
    public void Pooling_type_comes_from_the_option_then_the_file_then_mean()
    {
        using var model = Load();
        using (var engine = new LlmEngine(model, Options())) Assert.Equal(PoolingType.Mean, engine.DefaultPooling);
        using (var engine = new LlmEngine(model, Options() with { Pooling = PoolingType.Last })) Assert.Equal(PoolingType.Last, engine.DefaultPooling);
        using var reranker = Model.Load(RerankerModel.Get());
        using (var engine = new LlmEngine(reranker, Options())) Assert.Equal(PoolingType.Rank, engine.DefaultPooling);
    }
}
