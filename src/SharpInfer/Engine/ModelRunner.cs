using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Engine;

/// <summary>
/// What runs a model (vLLM's model runner): the compute pool, the transformer with its scratch sized for the largest
/// step, and the paged KV cache with its block manager. The engine, the batched benchmark and the test harnesses
/// build it here, so the cache's size formula and the assembly order live in one place. The cache has one block group
/// unless <c>kvGroups</c> says otherwise (the engine's sliding-window freeing; callers that keep their own block
/// tables use one group).
/// </summary>
internal sealed class ModelRunner : IDisposable
{
    public Model Model { get; }
    public ComputePool Pool { get; }
    public Transformer Transformer { get; }
    public BlockManager Blocks { get; }
    public PagedKvCache Cache => Blocks.Cache;

    /// <summary>Bytes of keys and values one token occupies across all layers.</summary>
    public static long KvBytesPerToken(ModelConfig c, KvDataType type, KvDataType? valueType = null) =>
        PagedKvCache.BytesPerTokenFor(c.LayerCount, c.KvHeadCount, c.HeadDim, KvFormat.Of(type), KvFormat.Of(valueType ?? type));

    /// <summary>Blocks of <paramref name="blockSize"/> tokens that <paramref name="bytes"/> of KV memory hold (at least
    /// one); with <paramref name="groups"/>, blocks of one group's layers.</summary>
    public static int BlocksForBytes(ModelConfig c, KvDataType type, int blockSize, long bytes, KvDataType? valueType = null,
                                     KvCacheGroups? groups = null) =>
        (int)Math.Max(1, Math.Min(int.MaxValue, bytes / (KvBytesPerBlockToken(c, type, valueType, groups) * blockSize)));

    /// <summary>Bytes of keys and values one token slot of one physical block occupies: all layers, or one group's.</summary>
    public static long KvBytesPerBlockToken(ModelConfig c, KvDataType type, KvDataType? valueType = null, KvCacheGroups? groups = null) =>
        PagedKvCache.BytesPerTokenFor(groups?.LayersPerGroup ?? c.LayerCount, c.KvHeadCount, c.HeadDim, KvFormat.Of(type), KvFormat.Of(valueType ?? type));

    /// <summary>The KV-cache groups of a model: one per kind of attention (full, each sliding window) cut to equal
    /// sizes, so that windowed layers free what they no longer see; <paramref name="swaFull"/> (llama.cpp's
    /// <c>--swa-full</c>): one group that keeps every position of every layer.</summary>
    public static KvCacheGroups KvGroups(ModelConfig c, bool swaFull) =>
        swaFull ? KvCacheGroups.Single(c.LayerCount) : KvCacheGroups.For([.. Enumerable.Range(0, c.LayerCount).Select(l => c.Layer(l).Window)]);

    private readonly bool _ownsPool;

    public ModelRunner(Model model, int threads, int maxBatchTokens, int blockSize, int blockCount, KvDataType kvType,
                       MatMulPrecision precision = MatMulPrecision.Fast, IsaLevel? isa = null,
                       bool prefixCaching = false, IKvBlockStore? store = null, ComputePool? sharedPool = null,
                       KvDataType? kvValueType = null, KvCacheGroups? kvGroups = null)
    {
        Model = model;
        var c = model.Config;
        // a second model in the same engine (a speculative draft) runs on the first one's threads: one pool per process
        _ownsPool = sharedPool == null;
        Pool = sharedPool ?? new ComputePool(threads);
        try
        {
            Transformer = new Transformer(c, model.Weights, Pool, maxBatchTokens, blockSize, precision, isa);
            Blocks = new BlockManager(new PagedKvCache(c.LayerCount, c.KvHeadCount, c.HeadDim, blockSize, blockCount,
                KvFormat.Of(kvType), KvFormat.Of(kvValueType ?? kvType), kvGroups), prefixCaching, store);
        }
        catch
        {
            Transformer?.Dispose();
            store?.Dispose();
            if (_ownsPool) Pool.Dispose();
            throw;
        }
    }

    /// <summary>One forward pass (see <see cref="Transformer.Forward"/>) over this runner's KV cache.</summary>
    public void Forward(ForwardBatch batch, Span<float> logits) => Transformer.Forward(batch, Blocks.Cache, logits);

    /// <summary>One forward pass that also returns the batch's hidden states (see <see cref="Transformer.Forward(ForwardBatch, IKvCache, Span{float}, Span{float})"/>).</summary>
    public void Forward(ForwardBatch batch, Span<float> logits, Span<float> hidden) => Transformer.Forward(batch, Blocks.Cache, logits, hidden);

    public void Dispose()
    {
        Transformer.Dispose();
        Blocks.Dispose();
        if (_ownsPool) Pool.Dispose();
    }
}
