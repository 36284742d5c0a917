using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using SharpInfer.Engine;
using SharpInfer.Engine.Pooling;
using SharpInfer.Extensions.AI;
using SharpInfer.Tests.Engine;
using SharpInfer.Tests.Server;

namespace SharpInfer.Tests.ExtensionsAI;

/// <summary><c>llm.AsEmbeddingGenerator()</c>: the vectors are the engine's pooling and <c>/v1/embeddings</c>'s for the
/// same text, a batch equals its texts embedded one by one, <c>Dimensions</c> truncates and re-normalizes, usage counts
/// the prompt tokens, bad input is an argument error, and <c>AddSharpInfer</c> registers the generator.</summary>
public class EmbeddingGeneratorTests
{
    private static LlmOptions Options() => new() { Threads = 2, ContextLength = 512, ParallelSequences = 2, KvCacheBytes = 16L << 20 };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task VectorsEqualTheEnginesPoolingAndTheEmbeddingsEndpoint()
    {
        var texts = EmbeddingParityTests.Texts;
        // the server harness's KV cache is F32: the attention of the pooled states reads it, so the same here
        var options = Options();
        options.KvCacheType = SharpInfer.KvCache.KvDataType.F32;
        await using var llm = Llm.FromModel(ServerModels.Qwen, options);
        using var generator = llm.AsEmbeddingGenerator();
        var result = await generator.GenerateAsync(texts, cancellationToken: Ct);
        Assert.Equal(texts.Length, result.Count);

        await using var server = await ServerHarness.StartAsync(ServerModels.Qwen);
        var body = await server.PostOkAsync("/v1/embeddings", new JsonObject { ["input"] = new JsonArray([.. texts.Select(t => (JsonNode)t)]) });
        int tokens = texts.Sum(t => ServerModels.Qwen.Tokenizer.Encode(t).Length);
        Assert.Equal(tokens, (int)body["usage"]!["prompt_tokens"]!);
        Assert.Equal(tokens, result.Usage!.InputTokenCount);
        Assert.Equal(tokens, result.Usage.TotalTokenCount);

        for (int i = 0; i < texts.Length; i++)
        {
            var vector = result[i].Vector.ToArray();
            Assert.Equal(llm.EmbeddingLength, vector.Length);
            Assert.Equal(llm.ModelId, result[i].ModelId);
            // the engine's own pooling request for the text, alone: the same numbers
            var alone = await llm.Engine.PoolAsync(EngineRequest.ForPooling(ServerModels.Qwen.Tokenizer.Encode(texts[i]), PoolingParams.Default), Ct);
            Assert.Equal(alone.Vectors[0], vector);
            var served = body["data"]![i]!["embedding"]!.AsArray().Select(x => (float)x!).ToArray();
            AssertClose(served, vector);
        }
    }

    [Fact]
    public async Task ABatchEqualsItsTextsOneByOne()
    {
        var texts = EmbeddingParityTests.Texts.Concat(["one more", "and the last"]).ToArray();
        await using var llm = Llm.FromModel(ServerModels.Qwen, Options());
        var generator = llm.AsEmbeddingGenerator();
        var batch = await generator.GenerateAsync(texts, cancellationToken: Ct);   // more texts than ParallelSequences: queued
        for (int i = 0; i < texts.Length; i++)
        {
            var single = await generator.GenerateAsync([texts[i]], cancellationToken: Ct);
            Assert.Equal(ServerModels.Qwen.Tokenizer.Encode(texts[i]).Length, single.Usage!.InputTokenCount);
            AssertClose(single[0].Vector.ToArray(), batch[i].Vector.ToArray());
        }
        Assert.Equal(1, Norm(batch[0].Vector.Span), 5);   // unit vectors, as OpenAI's
    }

    [Fact]
    public async Task DimensionsKeepsTheFirstValuesAndRenormalizes()
    {
        await using var llm = Llm.FromModel(ServerModels.Qwen, Options());
        var generator = llm.AsEmbeddingGenerator();
        string text = EmbeddingParityTests.Texts[0];
        var full = (await generator.GenerateAsync([text], cancellationToken: Ct))[0].Vector.ToArray();
        var cut = (await generator.GenerateAsync([text], new EmbeddingGenerationOptions { Dimensions = 16 }, Ct))[0].Vector.ToArray();
        Assert.Equal(16, cut.Length);
        double norm = Norm(full.AsSpan(0, 16));
        AssertClose(full.Take(16).Select(x => (float)(x / norm)).ToArray(), cut, tolerance: 1e-6f);   // our division vs the engine's

        var metadata = generator.GetService<EmbeddingGeneratorMetadata>()!;
        Assert.Equal("sharpinfer", metadata.ProviderName);
        Assert.Equal(llm.EmbeddingLength, metadata.DefaultModelDimensions);
        Assert.Same(llm, generator.GetService<Llm>());
    }

    [Fact]
    public async Task BadInputIsAnArgumentErrorAndTheEngineKeepsServing()
    {
        await using var llm = Llm.FromModel(ServerModels.Qwen, new LlmOptions { Threads = 2, ContextLength = 16, KvCacheBytes = 8L << 20 });
        var generator = llm.AsEmbeddingGenerator();
        await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync(["fine", ""], cancellationToken: Ct));
        var tooLong = await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync([string.Join(' ', Enumerable.Repeat("word", 200))], cancellationToken: Ct));
        Assert.Contains("16", tooLong.Message);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            generator.GenerateAsync(["fine"], new EmbeddingGenerationOptions { Dimensions = llm.EmbeddingLength + 1 }, Ct));
        Assert.Single(await generator.GenerateAsync(["fine"], cancellationToken: Ct));

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => generator.GenerateAsync(["fine", "also fine"], cancellationToken: cancelled.Token));
    }

    [Fact]
    public async Task AddSharpInferRegistersAnEmbeddingGeneratorOverTheSameLlm()
    {
        var services = new ServiceCollection();
        services.AddSharpInfer(o =>
        {
            o.ModelPath = TestPaths.Stories260K;
            o.Threads = 2;
            o.ContextLength = 128;
            o.ParallelSequences = 2;
        });
        await using var provider = services.BuildServiceProvider();
        var generator = provider.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        Assert.Same(provider.GetRequiredService<Llm>(), generator.GetService<Llm>());
        var e = await generator.GenerateAsync(["Once upon a time"], cancellationToken: Ct);
        Assert.Equal(provider.GetRequiredService<Llm>().EmbeddingLength, e[0].Vector.Length);
    }

    private static double Norm(ReadOnlySpan<float> v)
    {
        double s = 0;
        foreach (var x in v) s += (double)x * x;
        return Math.Sqrt(s);
    }

    /// <summary>Equal values (exactly, unless a <paramref name="tolerance"/> allows for rounding).</summary>
    private static void AssertClose(float[] expected, float[] actual, float tolerance = 0)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"[{i}]: {expected[i]} vs {actual[i]}");
    }
}
