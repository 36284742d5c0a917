using SharpInfer.KvCache;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Models;

/// <summary>
/// The forward pass of a decoder-only transformer. Per layer the model's family (<see cref="Architecture.ForwardLayer"/>)
/// composes the shared <see cref="Blocks"/>: RMSNorm, attention (Q/K/V projections → biases, per-head QK norm, RoPE
/// with the layer's base → KV-cache write → paged attention over the layer's window → output projection), a dense
/// gated FFN (SiLU or GELU) or mixture of experts, and the residual add. Around the layers: embeddings (optionally
/// scaled), then the final norm, the output projection for the tokens that want logits and optional soft-capping.
/// Batches larger than <see cref="MaxBatchTokens"/> are processed in consecutive micro-batches (tokens of a sequence
/// must appear in position order). All buffers are allocated once.
/// </summary>
internal sealed unsafe class Transformer : IDisposable
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
    private readonly Architecture _family;
    private readonly Blocks _blocks;
    private readonly LayerAttributes[] _layers;
    /// <summary>Distinct (RoPE base, scale) pairs of the layers: each has its own cos/sin table per token.</summary>
    private readonly (float Base, float Scale)[] _ropeTables;
    /// <summary>Per RoPE table: its YaRN settings (with the table's base and scale), null for plain RoPE.</summary>
    private readonly RopeYarn?[] _yarnOfTable;
    /// <summary>Per layer: its index in <see cref="_ropeTables"/>, −1 when the layer applies no RoPE.</summary>
    private readonly int[] _ropeTableOfLayer;
    /// <summary>Per micro-batch token: the first key position a sliding-window layer lets it see.</summary>
    private readonly int[] _firstVisible;
    /// <summary>Queries are multiplied by this so that attention's 1/sqrt(head_dim) gives the family's scale (1: none).</summary>
    private readonly float _queryScale;

    // the micro-batch being computed (set by ForwardChunk for the blocks)
    private ForwardBatch _batch = null!;
    private IKvCache _cache = null!;
    private int _start, _count;
    private IActivationObserver? _observer;

    /// <summary>Sees the input of every weight product (sharpinfer imatrix); null (the default) costs nothing.</summary>
    public IActivationObserver? ActivationObserver
    {
        get => _observer;
        set
        {
            _observer = value;
            if (_moe != null) _moe.Observer = value;
        }
    }

    public Transformer(ModelConfig config, ModelWeights weights, ComputePool pool, int maxBatchTokens, int kvBlockSize,
                       MatMulPrecision precision = MatMulPrecision.Fast, IsaLevel? isa = null)
    {
        Config = config;
        Weights = weights;
        Pool = pool;
        MaxBatchTokens = Math.Max(1, maxBatchTokens);
        var c = config;
        int T = MaxBatchTokens;
        _family = c.Family;
        _layers = Enumerable.Range(0, c.LayerCount).Select(c.Layer).ToArray();
        _ropeTables = _layers.Where(a => a.UsesRope).Select(a => (a.RopeFreqBase, a.RopeFreqScale)).Distinct().ToArray();
        if (_ropeTables.Length == 0) _ropeTables = [(c.RopeFreqBase, c.RopeFreqScale)];
        _yarnOfTable = _ropeTables.Select(t => c.Yarn is { } y
            ? RopeYarn.Create(c.RopeDimensions, t.Base, t.Scale, y.OriginalContext, y.ExtFactor, y.AttnFactor, y.BetaFast, y.BetaSlow)
            : null).ToArray();
        _ropeTableOfLayer = _layers.Select(a => a.UsesRope ? Array.IndexOf(_ropeTables, (a.RopeFreqBase, a.RopeFreqScale)) : -1).ToArray();
        _firstVisible = new int[T];
        // attention applies 1/sqrt(head_dim) itself: only another scale needs the queries scaled (and only exactly
        // that comparison, since 1/sqrt(d)·sqrt(d) is not exactly 1 in float for every d)
        float defaultScale = 1f / MathF.Sqrt(c.HeadDim);
        _queryScale = c.AttentionScale > 0 && c.AttentionScale != defaultScale ? c.AttentionScale / defaultScale : 1f;
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
        _rope = new NativeBuffer<float>((long)_ropeTables.Length * T * c.RopeDimensions);
        _prep = new TokenPrep(this);
        _blocks = new Blocks(this);
        _moe = c.IsMoe ? new MoeFeedForward(c, _matmul, T, _gate, _up) : null;
    }

    /// <summary>
    /// Runs the model over <paramref name="batch"/>, writing every token's keys and values into
    /// <paramref name="cache"/> (the blocks in each sequence's table must already cover its positions) and the
    /// logits of the batch's logit tokens, in order, into <paramref name="logits"/> (LogitCount × vocab).
    /// </summary>
    public void Forward(ForwardBatch batch, IKvCache cache, Span<float> logits) => Forward(batch, cache, logits, default);

    /// <summary><see cref="Forward(ForwardBatch, IKvCache, Span{float})"/>, also writing the final hidden state of each
    /// of the batch's hidden tokens, in order, into <paramref name="hidden"/> (HiddenCount × embedding length): the
    /// residual stream after the output norm, what llama.cpp pools for embeddings (<c>result_norm</c>).</summary>
    public void Forward(ForwardBatch batch, IKvCache cache, Span<float> logits, Span<float> hidden)
    {
        int V = Config.VocabSize, E = Config.EmbeddingLength;
        if (logits.Length < (long)batch.LogitCount * V)
            throw new ArgumentException($"logits buffer holds {logits.Length} floats, need {batch.LogitCount} × {V}");
        if (hidden.Length < (long)batch.HiddenCount * E)
            throw new ArgumentException($"hidden-state buffer holds {hidden.Length} floats, need {batch.HiddenCount} × {E}");
        if (_prof != null) { _prof.Passes++; _prof.Tokens += batch.TokenCount; }
        fixed (float* logitsPtr = logits, hiddenPtr = hidden)
        {
            int logitIndex = 0, hiddenIndex = 0;
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
                {
                    _matmul.Run(Weights.Output, _xn.Pointer, logitIndex - first, logitsPtr + (long)first * V, V);
                    if (Config.FinalLogitSoftcap > 0) SoftCap(logitsPtr + (long)first * V, (long)(logitIndex - first) * V, Config.FinalLogitSoftcap);
                }
                _prof?.Stop(ForwardProfiler.Op.Logits);
                // hidden states for the chunk's hidden tokens (the residual stream is still the last layer's)
                var ht = batch.HiddenTokens;
                while (hiddenIndex < ht.Length && ht[hiddenIndex] < start + count)
                {
                    VecOps.RmsNorm(_x.Pointer + (long)(ht[hiddenIndex] - start) * E, ArrayPtr(Weights.OutputNorm),
                        hiddenPtr + (long)hiddenIndex * E, E, Config.RmsNormEpsilon);
                    hiddenIndex++;
                }
            }
        }
    }

    /// <summary>Final logit soft-capping as llama.cpp applies it: cap · tanh(logit / cap).</summary>
    private static void SoftCap(float* logits, long n, float cap)
    {
        float inv = 1f / cap;
        for (long i = 0; i < n; i++) logits[i] = MathF.Tanh(logits[i] * inv) * cap;
    }

    private void ForwardChunk(ForwardBatch batch, IKvCache cache, int start, int T)
    {
        var c = Config;
        int E = c.EmbeddingLength, nRot = c.RopeDimensions;
        float* x = _x.Pointer;
        _batch = batch; _cache = cache; _start = start; _count = T;

        var tokens = batch.Tokens;
        _prof?.Start();
        for (int t = 0; t < T; t++)
        {
            int id = tokens[start + t];
            if ((uint)id >= (uint)c.VocabSize) throw new InvalidRequestException($"token id {id} is outside the vocabulary (0..{c.VocabSize - 1})", "tokens");
            Weights.TokenEmbedding.DequantizeRow(id, new Span<float>(x + (long)t * E, E));
            if (c.EmbeddingScale != 1f) VecOps.Scale(x + (long)t * E, c.EmbeddingScale, E);
            for (int r = 0; r < _ropeTables.Length; r++)
            {
                float* cs = _rope.Pointer + ((long)r * MaxBatchTokens + t) * nRot;
                if (_yarnOfTable[r] is { } yarn) yarn.Angles(batch.Positions[start + t], nRot, _ropeTables[r].Base, Weights.RopeFreqFactors, cs);
                else Rope.Angles(batch.Positions[start + t], nRot, _ropeTables[r].Base, _ropeTables[r].Scale, Weights.RopeFreqFactors, cs);
            }
        }

        _prof?.Stop(ForwardProfiler.Op.Embed);
        for (int li = 0; li < c.LayerCount; li++) _family.ForwardLayer(_blocks, Weights.Layers[li], li);
    }

    /// <summary>The shared building blocks a family's <see cref="Architecture.ForwardLayer"/> composes, over the current
    /// micro-batch: x is the residual stream, xn the normed input of a sub-block, and each sub-block's output goes to a
    /// scratch row that <see cref="AddToResidual"/> adds to x.</summary>
    internal sealed class Blocks(Transformer f)
    {
        /// <summary>xn = RMSNorm(x) · w.</summary>
        public void Norm(float[] w) => f.NormRows(f._x.Pointer, w, f._xn.Pointer);
        /// <summary>The sub-block output is normed in place (Gemma's post-attention and post-FFN norms).</summary>
        public void NormOutput(float[] w) => f.NormRows(f._tmp.Pointer, w, f._tmp.Pointer);
        /// <summary>Output = attention of layer <paramref name="layer"/> over xn.</summary>
        public void Attention(LayerWeights L, int layer) => f.AttentionBlock(L, layer);
        /// <summary>Output = FFN of xn: the gated dense FFN with <paramref name="activation"/>, or the layer's experts.</summary>
        public void FeedForward(LayerWeights L, FfnActivation activation) => f.FeedForwardBlock(L, activation);
        /// <summary>x += output.</summary>
        public void AddToResidual() => f.AddToResidual();
    }

    private void NormRows(float* src, float[] weight, float* dst)
    {
        int E = Config.EmbeddingLength;
        float* w = ArrayPtr(weight);
        for (int t = 0; t < _count; t++) VecOps.RmsNorm(src + (long)t * E, w, dst + (long)t * E, E, Config.RmsNormEpsilon);
        _prof?.Stop(ForwardProfiler.Op.Norm);
    }

    private void AttentionBlock(LayerWeights L, int li)
    {
        var c = Config;
        int T = _count;
        if (_observer != null)
        {
            _observer.MatMulInput(L.Q, _xn.Pointer, T);
            _observer.MatMulInput(L.K, _xn.Pointer, T);
            _observer.MatMulInput(L.V, _xn.Pointer, T);
        }
        _matmul.SetInput(_xn.Pointer, T, c.EmbeddingLength);
        _matmul.Run(L.Q, _q.Pointer, c.QueryDim, L.K, _k.Pointer, c.KeyDim, L.V, _v.Pointer, c.ValueDim);
        _prof?.Stop(ForwardProfiler.Op.QkvProj);
        _prep.Layer = L; _prep.LayerIndex = li;
        Pool.Run(_prep, T);
        _prof?.Stop(ForwardProfiler.Op.QkNormRope);
        int window = _layers[li].Window;
        if (window > 0)
            for (int t = 0; t < T; t++) _firstVisible[t] = FirstVisible(_batch.Positions[_start + t], window);
        _attention.Run(_cache, _batch, li, _start, T, _q.Pointer, _att.Pointer, window > 0 ? _firstVisible : null, L.AttnSinks);
        _prof?.Stop(ForwardProfiler.Op.Attention);
        _observer?.MatMulInput(L.O, _att.Pointer, T);
        _matmul.Run(L.O, _att.Pointer, T, _tmp.Pointer, c.EmbeddingLength);
        if (L.OBias != null)
            for (int t = 0; t < T; t++) VecOps.Add(_tmp.Pointer + (long)t * c.EmbeddingLength, ArrayPtr(L.OBias), c.EmbeddingLength);
        _prof?.Stop(ForwardProfiler.Op.OutProj);
    }

    /// <summary>The first key position a query at <paramref name="position"/> sees through a sliding window of
    /// <paramref name="window"/>: llama.cpp masks key p0 for query p1 when p1 − p0 ≥ window
    /// (llama_hparams::is_masked_swa, LLAMA_SWA_TYPE_STANDARD), so keys p1 − window + 1 … p1 remain.</summary>
    internal static int FirstVisible(int position, int window) => Math.Max(0, position - window + 1);

    private void FeedForwardBlock(LayerWeights L, FfnActivation activation)
    {
        var c = Config;
        int T = _count, E = c.EmbeddingLength, F = c.FeedForwardLength;
        if (L.Experts != null)
        {
            _moe!.Run(L, _xn.Pointer, T, _tmp.Pointer, activation);
            _prof?.Stop(ForwardProfiler.Op.Down);
            return;
        }
        if (_observer != null)
        {
            _observer.MatMulInput(L.Gate!, _xn.Pointer, T);
            _observer.MatMulInput(L.Up!, _xn.Pointer, T);
        }
        _matmul.SetInput(_xn.Pointer, T, E);
        _matmul.Run(L.Gate!, _gate.Pointer, F, L.Up!, _up.Pointer, F);
        _prof?.Stop(ForwardProfiler.Op.GateUp);
        Activate(activation, _gate.Pointer, _up.Pointer, T * F, _matmul.Level);
        _prof?.Stop(ForwardProfiler.Op.SiluMul);
        _observer?.MatMulInput(L.Down!, _gate.Pointer, T);
        _matmul.Run(L.Down!, _gate.Pointer, T, _tmp.Pointer, E);
        _prof?.Stop(ForwardProfiler.Op.Down);
    }

    /// <summary>gate = act(gate) · up over <paramref name="n"/> values.</summary>
    internal static void Activate(FfnActivation activation, float* gate, float* up, int n, IsaLevel level)
    {
        switch (activation)
        {
            case FfnActivation.Gelu: Gelu.Mul(gate, up, n, level); break;
            // llama.cpp's constants for gpt-oss (LLM_FFN_SWIGLU_OAI_MOE): alpha 1.702, limit 7
            case FfnActivation.SwiGluOai: VecOps.SwiGluOai(gate, up, n, 1.702f, 7f, level); break;
            default: VecOps.SiluMul(gate, up, n, level); break;
        }
    }

    private void AddToResidual()
    {
        int E = Config.EmbeddingLength;
        float* x = _x.Pointer, tmp = _tmp.Pointer;
        for (int t = 0; t < _count; t++) VecOps.Add(x + (long)t * E, tmp + (long)t * E, E);
        _prof?.Stop(ForwardProfiler.Op.Residual);
    }

    /// <summary>Token t's work between the Q/K/V projections and attention: biases, per-head Q/K norm, RoPE and the
    /// KV-cache write. Tokens are independent (own rows, own cache slot), so the pool runs them in parallel.</summary>
    private void PrepareToken(LayerWeights L, int li, int t)
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
        int table = _ropeTableOfLayer[li];
        if (table >= 0)
        {
            float* cs = _rope.Pointer + ((long)table * MaxBatchTokens + t) * c.RopeDimensions;
            Rope.Apply(qt, c.HeadCount, D, c.RopeDimensions, c.RopeStyle, cs, _matmul.Level);
            Rope.Apply(kt, c.KvHeadCount, D, c.RopeDimensions, c.RopeStyle, cs, _matmul.Level);
        }
        if (_queryScale != 1f) VecOps.Scale(qt, _queryScale, QD);
        WriteKv(_cache, _batch, li, _start + t, kt, vt);
    }

    /// <summary>The pool job of <see cref="PrepareToken"/>: fields set per layer, so dispatching allocates nothing.</summary>
    private sealed class TokenPrep(Transformer owner) : IParallelWork
    {
        public LayerWeights Layer = null!;
        public int LayerIndex;
        public void Execute(int task, int thread) => owner.PrepareToken(Layer, LayerIndex, task);
    }

    private void WriteKv(IKvCache cache, ForwardBatch batch, int layer, int bt, float* k, float* v)
    {
        int pos = batch.Positions[bt];
        var table = batch.Table(batch.SequenceOf[bt], cache.GroupOf(layer));
        int bs = cache.BlockSize, blockIdx = pos / bs, slot = pos % bs;
        if (blockIdx >= table.Count || blockIdx < table.FirstLive)
            throw new InvalidOperationException($"position {pos} has no KV block (the sequence has blocks {table.FirstLive}–{table.Count - 1} of {bs})");
        int block = table[blockIdx];
        int D = Config.HeadDim;
        KvFormat kf = cache.KeyFormat, vf = cache.ValueFormat;
        long kRow = kf.RowBytes(D), vRow = vf.RowBytes(D);
        // quantized formats store rows Hadamard-rotated (llama.cpp's attn_rot); attention rotates q and its output to match
        KvRotation.Rotate(k, Config.KvHeadCount * D, KvRotation.KeySize(kf, D));
        KvRotation.Rotate(v, Config.KvHeadCount * D, KvRotation.ValueSize(vf, D));
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
