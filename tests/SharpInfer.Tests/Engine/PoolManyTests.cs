using SharpInfer.Engine;
using SharpInfer.Engine.Pooling;
using SharpInfer.KvCache;
using SharpInfer.Models;

namespace SharpInfer.Tests.Engine;

/// <summary><see cref="LlmEngine.PoolManyAsync"/>, the one bounded fail-fast loop behind <c>Llm.EmbedAsync</c>, the
/// embedding and rerank endpoints and <c>sharpinfer embed</c>: order, the concurrency bound, the failing index.</summary>
public class PoolManyTests
{
    private static LlmEngine NewEngine(Model model) => new(model, new EngineOptions
    { Threads = 2, MaxNumSeqs = 8, MaxNumBatchedTokens = 512, MaxModelLen = 512, KvType = KvDataType.F32 });

    [Fact]
    public async Task Results_come_in_prompt_order_equal_to_one_by_one_with_at_most_the_bound_in_flight()
    {
        using var model = Model.Load(TestModels.Get("qwen3-tiny", "f32"));
        var prompts = EmbeddingParityTests.Texts.Select(t => model.Tokenizer.Encode(t)).ToArray();
        Assert.True(prompts.Length > 2, "the bound needs more prompts than seats");
        using var engine = NewEngine(model);
        var alone = new float[prompts.Length][];
        for (int i = 0; i < prompts.Length; i++)
            alone[i] = (await engine.PoolAsync(EngineRequest.ForPooling(prompts[i]))).Vectors[0];

        using var bounded = NewEngine(model);
        var many = await bounded.PoolManyAsync(prompts, PoolingParams.Default, maxConcurrent: 2);
        Assert.Equal(prompts.Length, many.Length);
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(alone[i], many[i].Vectors[0]);
        Assert.InRange(bounded.Stats.MaxConcurrency, 1, 2);
    }

    [Fact]
    public async Task A_failing_prompt_is_reported_by_index_with_the_engines_error()
    {
        using var model = Model.Load(TestModels.Get("qwen3-tiny", "f32"));
        using var engine = NewEngine(model);
        var good = model.Tokenizer.Encode("a good text");
        int[] bad = [model.Config.VocabSize + 5];
        var e = await Assert.ThrowsAsync<PoolingInputException>(() =>
            engine.PoolManyAsync([good, good, bad, good, good], PoolingParams.Default, maxConcurrent: 2));
        Assert.Equal(2, e.Index);
        Assert.IsType<InvalidRequestException>(e.InnerException);
        Assert.Contains("outside the vocabulary", e.InnerException!.Message);
        // the engine is left usable: nothing of the failed call is still running
        var after = await engine.PoolManyAsync([good], PoolingParams.Default, maxConcurrent: 1);
        Assert.Single(after);
    }

    [Fact]
    public async Task A_cancelled_call_ends_in_OperationCanceledException()
    {
        using var model = Model.Load(TestModels.Get("qwen3-tiny", "f32"));
        using var engine = NewEngine(model);
        var good = model.Tokenizer.Encode("a good text");
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            engine.PoolManyAsync([good, good, good], PoolingParams.Default, maxConcurrent: 1, cts.Token));
    }
}
