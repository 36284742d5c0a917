using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Engine;

/// <summary>
/// What runs a model (vLLM's model runner): the compute pool, the transformer with its scratch sized for the largest
/// step, and the paged KV cache with its block manager. The engine, the batched benchmark and the test harnesses
/// build it here, so the cache's size formula and the assembly order live in one place.
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

    /// <summary>Blocks of <paramref name="blockSize"/> tokens that <paramref name="bytes"/> of KV memory hold (at least one).</summary>
    public static int BlocksForBytes(ModelConfig c, KvDataType type, int blockSize, long bytes, KvDataType? valueType = null) =>
        (int)Math.Max(1, Math.Min(int.MaxValue, bytes / (KvBytesPerToken(c, type, valueType) * blockSize)));

    private readonly bool _ownsPool;

    public ModelRunner(Model model, int threads, int maxBatchTokens, int blockSize, int blockCount, KvDataType kvType,
                       MatMulPrecision precision = MatMulPrecision.Fast, IsaLevel? isa = null,
                       bool prefixCaching = false, IKvBlockStore? store = null, ComputePool? sharedPool = null,
                       KvDataType? kvValueType = null)
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
                KvFormat.Of(kvType), KvFormat.Of(kvValueType ?? kvType)), prefixCaching, store);
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
