using SharpInfer.KvCache;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Models;

/// <summary>
/// The forward pass of a decoder-only transformer (llama, qwen2, qwen3 families): embeddings, then per layer
/// RMSNorm → Q/K/V projections (+bias, +per-head QK norm) → RoPE → KV-cache write → paged attention → output
/// projection + residual → RMSNorm → SwiGLU FFN + residual; then the final norm and the output projection for the
/// tokens that want logits. Batches larger than <see cref="MaxBatchTokens"/> are processed in consecutive
/// micro-batches (tokens of a sequence must appear in position order). All buffers are allocated once.
/// </summary>
public sealed unsafe class Transformer : IDisposable
{
    public ModelConfig Config { get; }
    public ModelWeights Weights { get; }
    public ComputePool Pool { get; }
    public int MaxBatchTokens { get; }

    private readonly MatMul _matmul;
    private readonly ForwardProfiler? _prof = ForwardProfiler.Enabled ? new ForwardProfiler() : null;
    private readonly PagedAttention _attention;
    private readonly NativeBuffer<float> _x, _xn, _q, _k, _v, _att, _gate, _up, _tmp, _rope;
    private readonly TokenPrep _prep;
    private readonly MoeFeedForward? _moe;

    public Transformer(ModelConfig config, ModelWeights weights, ComputePool pool, int maxBatchTokens, int kvBlockSize,
                       MatMulPrecision precision = MatMulPrecision.Fast, IsaLevel? isa = null)
    {
        Config = config;
        Weights = weights;
        Pool = pool;
        MaxBatchTokens = Math.Max(1, maxBatchTokens);
        var c = config;
        int T = MaxBatchTokens;
        int maxCols = Math.Max(Math.Max(c.EmbeddingLength, c.FeedForwardLength), c.HeadCount * c.ValueHeadDim);
        _matmul = new MatMul(pool, T, maxCols, precision, isa);
        // int8 kernels read some formats from a copy packed at load (once per model; exact mode reads the mapped rows)
        if (precision == MatMulPrecision.Fast) weights.PackForKernels(_matmul.Level);
        _attention = new PagedAttention(pool, c, kvBlockSize, _matmul.Level);
        _x = new NativeBuffer<float>((long)T * c.EmbeddingLength);
        _xn = new NativeBuffer<float>((long)T * Math.Max(c.EmbeddingLength, c.HeadCount * c.ValueHeadDim));
        _q = new NativeBuffer<float>((long)T * c.QueryDim);
        _k = new NativeBuffer<float>((long)T * c.KeyDim);
        _v = new NativeBuffer<float>((long)T * c.ValueDim);
        _att = new NativeBuffer<float>((long)T * c.HeadCount * c.ValueHeadDim);
        _gate = new NativeBuffer<float>((long)T * c.FeedForwardLength);
        _up = new NativeBuffer<float>((long)T * c.FeedForwardLength);
        _tmp = new NativeBuffer<float>((long)T * c.EmbeddingLength);
        _rope = new NativeBuffer<float>((long)T * c.RopeDimensions);
        _prep = new TokenPrep(this);
        _moe = c.IsMoe ? new MoeFeedForward(c, _matmul, T, _gate, _up) : null;
    }

    /// <summary>
    /// Runs the model over <paramref name="batch"/>, writing every token's keys and values into
    /// <paramref name="cache"/> (the blocks in each sequence's table must already cover its positions) and the
    /// logits of the batch's logit tokens, in order, into <paramref name="logits"/> (LogitCount × vocab).
    /// </summary>
    public void Forward(ForwardBatch batch, IKvCache cache, Span<float> logits)
    {
        int V = Config.VocabSize;
        if (logits.Length < (long)batch.LogitCount * V)
            throw new ArgumentException($"logits buffer holds {logits.Length} floats, need {batch.LogitCount} × {V}");
        if (_prof != null) { _prof.Passes++; _prof.Tokens += batch.TokenCount; }
        fixed (float* logitsPtr = logits)
        {
            int logitIndex = 0;
            for (int start = 0; start < batch.TokenCount; start += MaxBatchTokens)
            {
                int count = Math.Min(MaxBatchTokens, batch.TokenCount - start);
                ForwardChunk(batch, cache, start, count);
                _prof?.Start();
                // logits for the chunk's logit tokens
                var lt = batch.LogitTokens;
                int first = logitIndex;
                while (logitIndex < lt.Length && lt[logitIndex] < start + count)
                {
                    int t = lt[logitIndex] - start;
                    VecOps.RmsNorm(_x.Pointer + (long)t * Config.EmbeddingLength, ArrayPtr(Weights.OutputNorm),
                        _xn.Pointer + (long)(logitIndex - first) * Config.EmbeddingLength, Config.EmbeddingLength, Config.RmsNormEpsilon);
                    logitIndex++;
                }
                if (logitIndex > first)
                    _matmul.Run(Weights.Output, _xn.Pointer, logitIndex - first, logitsPtr + (long)first * V, V);
                _prof?.Stop(ForwardProfiler.Op.Logits);
            }
        }
    }

    private void ForwardChunk(ForwardBatch batch, IKvCache cache, int start, int T)
    {
        var c = Config;
        int E = c.EmbeddingLength, D = c.HeadDim, QD = c.QueryDim, KD = c.KeyDim, VD = c.ValueDim, F = c.FeedForwardLength;
        float eps = c.RmsNormEpsilon;
        float* x = _x.Pointer, xn = _xn.Pointer, q = _q.Pointer, k = _k.Pointer, v = _v.Pointer;

        var tokens = batch.Tokens;
        _prof?.Start();
        for (int t = 0; t < T; t++)
        {
            int id = tokens[start + t];
            if ((uint)id >= (uint)c.VocabSize) throw new InvalidRequestException($"token id {id} is outside the vocabulary (0..{c.VocabSize - 1})", "tokens");
            Weights.TokenEmbedding.DequantizeRow(id, new Span<float>(x + (long)t * E, E));
            Rope.Angles(batch.Positions[start + t], c.RopeDimensions, c.RopeFreqBase, c.RopeFreqScale, Weights.RopeFreqFactors,
                _rope.Pointer + (long)t * c.RopeDimensions);
        }

        _prof?.Stop(ForwardProfiler.Op.Embed);
        for (int li = 0; li < c.LayerCount; li++)
        {
            var L = Weights.Layers[li];
            float* attnNorm = ArrayPtr(L.AttnNorm);
            for (int t = 0; t < T; t++) VecOps.RmsNorm(x + (long)t * E, attnNorm, xn + (long)t * E, E, eps);
            _prof?.Stop(ForwardProfiler.Op.Norm);
            _matmul.SetInput(xn, T, E);
            _matmul.Run(L.Q, q, QD, L.K, k, KD, L.V, v, VD);
            _prof?.Stop(ForwardProfiler.Op.QkvProj);
            _prep.Cache = cache; _prep.Batch = batch; _prep.Layer = L; _prep.LayerIndex = li; _prep.Start = start;
            Pool.Run(_prep, T);
            _prof?.Stop(ForwardProfiler.Op.QkNormRope);
            _attention.Run(cache, batch, li, start, T, q, _att.Pointer);
            _prof?.Stop(ForwardProfiler.Op.Attention);
            _matmul.Run(L.O, _att.Pointer, T, _tmp.Pointer, E);
            _prof?.Stop(ForwardProfiler.Op.OutProj);
            for (int t = 0; t < T; t++) VecOps.Add(x + (long)t * E, _tmp.Pointer + (long)t * E, E);

            float* ffnNorm = ArrayPtr(L.FfnNorm);
            for (int t = 0; t < T; t++) VecOps.RmsNorm(x + (long)t * E, ffnNorm, xn + (long)t * E, E, eps);
            _prof?.Stop(ForwardProfiler.Op.Norm);
            if (L.Experts != null)
            {
                _moe!.Run(L, xn, T, _tmp.Pointer);
                _prof?.Stop(ForwardProfiler.Op.Down);
            }
            else
            {
                _matmul.SetInput(xn, T, E);
                _matmul.Run(L.Gate!, _gate.Pointer, F, L.Up!, _up.Pointer, F);
                _prof?.Stop(ForwardProfiler.Op.GateUp);
                VecOps.SiluMul(_gate.Pointer, _up.Pointer, T * F, _matmul.Level);
                _prof?.Stop(ForwardProfiler.Op.SiluMul);
                _matmul.Run(L.Down!, _gate.Pointer, T, _tmp.Pointer, E);
                _prof?.Stop(ForwardProfiler.Op.Down);
            }
            for (int t = 0; t < T; t++) VecOps.Add(x + (long)t * E, _tmp.Pointer + (long)t * E, E);
            _prof?.Stop(ForwardProfiler.Op.Residual);
        }
    }

    /// <summary>Token t's work between the Q/K/V projections and attention: biases, per-head Q/K norm, RoPE and the
    /// KV-cache write. Tokens are independent (own rows, own cache slot), so the pool runs them in parallel.</summary>
    private void PrepareToken(IKvCache cache, ForwardBatch batch, LayerWeights L, int li, int start, int t)
    {
        var c = Config;
        int D = c.HeadDim, QD = c.QueryDim, KD = c.KeyDim, VD = c.ValueDim;
        float eps = c.RmsNormEpsilon;
        float* qt = _q.Pointer + (long)t * QD, kt = _k.Pointer + (long)t * KD, vt = _v.Pointer + (long)t * VD;
        if (L.QBias != null) { VecOps.Add(qt, ArrayPtr(L.QBias), QD); VecOps.Add(kt, ArrayPtr(L.KBias!), KD); VecOps.Add(vt, ArrayPtr(L.VBias!), VD); }
        if (L.QNorm != null)
        {
            for (int h = 0; h < c.HeadCount; h++) VecOps.RmsNorm(qt + h * D, ArrayPtr(L.QNorm), qt + h * D, D, eps);
            for (int h = 0; h < c.KvHeadCount; h++) VecOps.RmsNorm(kt + h * D, ArrayPtr(L.KNorm!), kt + h * D, D, eps);
        }
        if (c.LayerUsesRope(li))
        {
            float* cs = _rope.Pointer + (long)t * c.RopeDimensions;
            Rope.Apply(qt, c.HeadCount, D, c.RopeDimensions, c.RopeStyle, cs, _matmul.Level);
            Rope.Apply(kt, c.KvHeadCount, D, c.RopeDimensions, c.RopeStyle, cs, _matmul.Level);
        }
        WriteKv(cache, batch, li, start + t, kt, vt);
    }

    /// <summary>The pool job of <see cref="PrepareToken"/>: fields set per layer, so dispatching allocates nothing.</summary>
    private sealed class TokenPrep(Transformer owner) : IParallelWork
    {
        public IKvCache Cache = null!;
        public ForwardBatch Batch = null!;
        public LayerWeights Layer = null!;
        public int LayerIndex, Start;
        public void Execute(int task, int thread) => owner.PrepareToken(Cache, Batch, Layer, LayerIndex, Start, task);
    }

    private void WriteKv(IKvCache cache, ForwardBatch batch, int layer, int bt, float* k, float* v)
    {
        int pos = batch.Positions[bt];
        var table = batch.Table(batch.SequenceOf[bt]);
        int bs = cache.BlockSize, blockIdx = pos / bs, slot = pos % bs;
        if (blockIdx >= table.Count)
            throw new InvalidOperationException($"position {pos} has no KV block (the sequence has {table.Count} blocks of {bs})");
        int block = table[blockIdx];
        int D = Config.HeadDim;
        KvFormat kf = cache.KeyFormat, vf = cache.ValueFormat;
        long kRow = kf.RowBytes(D), vRow = vf.RowBytes(D);
        bool finite = true;
        for (int h = 0; h < Config.KvHeadCount; h++)
        {
            finite &= kf.WriteRow(k + h * D, cache.KeyBlock(layer, block, h) + slot * kRow, D, _matmul.Level);
            finite &= vf.WriteRow(v + h * D, cache.ValueBlock(layer, block, h) + slot * vRow, D, _matmul.Level);
        }
        // attention's fast F16 widening assumes finite values until told otherwise
        if (!finite && !cache.MayHoldNonFinite) cache.MarkNonFinite();
    }

    /// <summary>Norm and bias vectors live on the pinned object heap (see ModelWeights), so a raw pointer stays valid.</summary>
    private static float* ArrayPtr(float[] a) => (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(a));

    public void Dispose()
    {
        if (_prof != null) Console.Error.Write(_prof.Report());
        _matmul.Dispose();
        _attention.Dispose();
        foreach (var b in new[] { _x, _xn, _q, _k, _v, _att, _gate, _up, _tmp, _rope }) b.Dispose();
        _moe?.Dispose();
    }
}
