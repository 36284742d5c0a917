using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors;

/// <summary>
/// Causal attention over a paged KV cache for every token of a forward batch, flash-attention style: for each
/// (token, KV head) the query heads that share that KV head walk the sequence's blocks in position order, one
/// block at a time, keeping a running max, running sum and output accumulator (online softmax). No score matrix
/// is formed; memory is O(head_dim) per query head whatever the context length. Tiles are whole cache blocks,
/// aligned to absolute positions, so a token's result does not depend on which other tokens share the batch or
/// on how its prompt was chunked.
/// </summary>
public sealed unsafe class PagedAttention : IParallelWork, IDisposable
{
    private readonly ComputePool _pool;
    private readonly NativeBuffer<float>[] _scratch;
    private readonly int _groupSize, _headDim, _kvHeads, _qStride;

    // current job
    private IKvCache _cache = null!;
    private ForwardBatch _batch = null!;
    private int _layer, _tokenOffset;
    private float* _q, _out;
    private float _scale;

    public PagedAttention(ComputePool pool, ModelConfig c, int blockSize)
    {
        _pool = pool;
        _groupSize = c.GroupSize;
        _headDim = c.HeadDim;
        _kvHeads = c.KvHeadCount;
        _qStride = c.QueryDim;
        _scratch = new NativeBuffer<float>[pool.Threads];
        for (int i = 0; i < _scratch.Length; i++)
            _scratch[i] = new NativeBuffer<float>(_groupSize * (blockSize + _headDim + 2) + 2 * _headDim);
    }

    /// <summary>Attention for batch tokens [tokenOffset, tokenOffset + count): q is [count × n_head·D], out likewise.</summary>
    public void Run(IKvCache cache, ForwardBatch batch, int layer, int tokenOffset, int count, float* q, float* output)
    {
        _cache = cache; _batch = batch; _layer = layer; _tokenOffset = tokenOffset; _q = q; _out = output;
        _scale = 1.0f / MathF.Sqrt(_headDim);
        _pool.Run(this, count * _kvHeads);
    }

    public void Execute(int task, int thread)
    {
        int t = task / _kvHeads, g = task % _kvHeads;
        int bt = _tokenOffset + t;
        int position = _batch.Positions[bt];
        var table = _batch.Table(_batch.SequenceOf[bt]);
        float* q = _q + (long)t * _qStride + g * _groupSize * _headDim;
        float* o = _out + (long)t * _qStride + g * _groupSize * _headDim;
        Attend(_cache, _layer, g, table, position + 1, q, o, _groupSize, _headDim, _scale, _scratch[thread].Pointer);
    }

    /// <summary>Attention of <paramref name="groupSize"/> query heads (consecutive, headDim apart) against the
    /// first <paramref name="length"/> positions of one KV head of a sequence.</summary>
    public static void Attend(IKvCache cache, int layer, int kvHead, BlockTable table, int length,
                              float* q, float* output, int groupSize, int headDim, float scale, float* scratch)
    {
        int bs = cache.BlockSize;
        float* scores = scratch;                         // bs
        float* m = scores + bs;                          // groupSize running maxima
        float* l = m + groupSize;                        // groupSize running sums
        float* acc = output;                             // accumulate directly into the output rows
        float* kRow = l + groupSize;                     // headDim (F16 conversion buffer)
        float* vRow = kRow + headDim;
        bool f16 = cache.DataType == KvDataType.F16;
        for (int h = 0; h < groupSize; h++)
        {
            m[h] = float.NegativeInfinity;
            l[h] = 0;
            new Span<float>(acc + h * headDim, headDim).Clear();
        }
        int nBlocks = (length + bs - 1) / bs;
        for (int b = 0; b < nBlocks; b++)
        {
            int n = Math.Min(bs, length - b * bs);
            byte* kb = cache.KeyBlock(layer, table[b], kvHead);
            byte* vb = cache.ValueBlock(layer, table[b], kvHead);
            for (int h = 0; h < groupSize; h++)
            {
                float* qh = q + h * headDim;
                float* oh = acc + h * headDim;
                float blockMax = float.NegativeInfinity;
                for (int j = 0; j < n; j++)
                {
                    float* kj = f16 ? ToFloat((Half*)kb + j * headDim, kRow, headDim) : (float*)kb + j * headDim;
                    float s = VecOps.Dot(qh, kj, headDim) * scale;
                    scores[j] = s;
                    if (s > blockMax) blockMax = s;
                }
                float mNew = MathF.Max(m[h], blockMax);
                float correction = m[h] == float.NegativeInfinity ? 0f : MathF.Exp(m[h] - mNew);
                float sum = l[h] * correction;
                VecOps.Scale(oh, correction, headDim);
                for (int j = 0; j < n; j++)
                {
                    float p = MathF.Exp(scores[j] - mNew);
                    sum += p;
                    float* vj = f16 ? ToFloat((Half*)vb + j * headDim, vRow, headDim) : (float*)vb + j * headDim;
                    VecOps.AddScaled(oh, vj, p, headDim);
                }
                l[h] = sum;
                m[h] = mNew;
            }
        }
        for (int h = 0; h < groupSize; h++) VecOps.Scale(acc + h * headDim, 1.0f / l[h], headDim);
    }

    private static float* ToFloat(Half* src, float* dst, int n)
    {
        for (int i = 0; i < n; i++) dst[i] = (float)src[i];
        return dst;
    }

    public void Dispose()
    {
        foreach (var s in _scratch) s.Dispose();
    }
}
