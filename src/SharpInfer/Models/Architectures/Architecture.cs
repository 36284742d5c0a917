using SharpInfer.Gguf;
using SharpInfer.Tensors;

namespace SharpInfer.Models;

/// <summary>What one layer's attention does: whether it rotates queries and keys, with which RoPE base and linear
/// scale, and its sliding window (0: the whole prefix; W: a query at position p sees keys p − W + 1 … p).</summary>
internal readonly record struct LayerAttributes(bool UsesRope, float RopeFreqBase, float RopeFreqScale, int Window);

/// <summary>The activation of a gated FFN: act(gate) · up; SwiGluOai is gpt-oss's clamped SwiGLU
/// (<see cref="VecOps.SwiGluOai(float*, float*, int, float, float)"/>).</summary>
internal enum FfnActivation { Silu, Gelu, SwiGluOai }

/// <summary>
/// One model family (llama.cpp's <c>src/models/*.cpp</c>): the hyper-parameters it reads beyond the common ones,
/// the tensors each layer has, the attributes of each layer, and the layer's forward pass composed from the shared
/// blocks of <see cref="Transformer"/> (norms, attention, dense or MoE FFN, residual). The defaults describe a
/// Llama-style pre-norm decoder; a family overrides what differs. Families are listed in
/// <see cref="ArchitectureRegistry"/>; adding one is a class there plus its tests.
/// </summary>
internal abstract class Architecture
{
    /// <summary>The GGUF <c>general.architecture</c> value (and the prefix of its hyper-parameter keys).</summary>
    public abstract string Name { get; }

    /// <summary>How RoPE pairs dimensions (llama.cpp's LLAMA_ROPE_TYPE_NORM or _NEOX for the family).</summary>
    public virtual RopeStyle RopeStyle => RopeStyle.NeoX;

    /// <summary>Per-head RMSNorm of queries and keys before RoPE (<c>attn_q_norm</c>, <c>attn_k_norm</c>).</summary>
    public virtual bool HasQkNorm => false;

    /// <summary>The family's own hyper-parameters, read after the common ones (<see cref="ModelConfig.FromGguf"/>).</summary>
    public virtual ModelConfig Configure(GgufFile g, ModelConfig c) => c;

    /// <summary>The attributes of layer <paramref name="layer"/> (0-based).</summary>
    public virtual LayerAttributes Layer(ModelConfig c, int layer) =>
        new(c.LayerUsesRope(layer), c.RopeFreqBase, c.RopeFreqScale, Window: 0);

    /// <summary>The weights of one layer: attention (separate or fused Q/K/V, optional biases and QK norms) and a dense
    /// or mixture-of-experts FFN.</summary>
    public virtual LayerWeights LoadLayer(WeightLoader w, ModelConfig c, int layer)
    {
        string p = $"blk.{layer}.";
        int E = c.EmbeddingLength;
        bool bias = w.Has(p + "attn_q.bias");
        var (q, k, v) = LoadQkv(w, c, p);
        WeightMatrix? gate = null, up = null, down = null, router = null;
        ExpertWeights[]? experts = null;
        if (c.IsMoe)
        {
            router = w.Matrix(p + "ffn_gate_inp.weight", E, c.ExpertCount);
            var gates = w.Experts(p + "ffn_gate_exps.weight", E, c.FeedForwardLength, c.ExpertCount);
            var ups = w.Experts(p + "ffn_up_exps.weight", E, c.FeedForwardLength, c.ExpertCount);
            var downs = w.Experts(p + "ffn_down_exps.weight", c.FeedForwardLength, E, c.ExpertCount);
            experts = new ExpertWeights[c.ExpertCount];
            for (int e = 0; e < experts.Length; e++) experts[e] = new ExpertWeights(gates[e], ups[e], downs[e]);
        }
        else
        {
            (gate, up) = LoadGateUp(w, c, p);
            down = w.Matrix(p + "ffn_down.weight", c.FeedForwardLength, E);
        }
        return new LayerWeights
        {
            AttnNorm = w.Vector(p + "attn_norm.weight", E),
            Q = q,
            K = k,
            V = v,
            O = w.Matrix(p + "attn_output.weight", c.HeadCount * c.ValueHeadDim, E),
            QBias = bias ? w.Vector(p + "attn_q.bias", c.QueryDim) : null,
            KBias = bias ? w.Vector(p + "attn_k.bias", c.KeyDim) : null,
            VBias = bias ? w.Vector(p + "attn_v.bias", c.ValueDim) : null,
            QNorm = c.HasQkNorm ? w.Vector(p + "attn_q_norm.weight", c.HeadDim) : null,
            KNorm = c.HasQkNorm ? w.Vector(p + "attn_k_norm.weight", c.HeadDim) : null,
            FfnNorm = w.Vector(p + "ffn_norm.weight", E),
            Gate = gate,
            Up = up,
            Down = down,
            Router = router,
            Experts = experts,
        };
    }

    /// <summary>The query, key and value projections (separate tensors by default).</summary>
    protected virtual (WeightMatrix Q, WeightMatrix K, WeightMatrix V) LoadQkv(WeightLoader w, ModelConfig c, string p) =>
        (w.Matrix(p + "attn_q.weight", c.EmbeddingLength, c.QueryDim),
         w.Matrix(p + "attn_k.weight", c.EmbeddingLength, c.KeyDim),
         w.Matrix(p + "attn_v.weight", c.EmbeddingLength, c.ValueDim));

    /// <summary>The dense FFN's gate and up projections (separate tensors by default).</summary>
    protected virtual (WeightMatrix Gate, WeightMatrix Up) LoadGateUp(WeightLoader w, ModelConfig c, string p) =>
        (w.Matrix(p + "ffn_gate.weight", c.EmbeddingLength, c.FeedForwardLength),
         w.Matrix(p + "ffn_up.weight", c.EmbeddingLength, c.FeedForwardLength));

    /// <summary>The gated feed-forward's activation in the default layer.</summary>
    internal virtual FfnActivation FeedForwardActivation => FfnActivation.Silu;

    /// <summary>One layer's forward pass over the current micro-batch (the residual stream is the blocks' x). The
    /// default is the pre-norm decoder layer: x += attn(norm(x)); x += ffn(norm(x)).</summary>
    internal virtual void ForwardLayer(Transformer.Blocks f, LayerWeights L, int layer)
    {
        f.Norm(L.AttnNorm);
        f.Attention(L, layer);
        f.AddToResidual();
        f.Norm(L.FfnNorm);
        f.FeedForward(L, FeedForwardActivation);
        f.AddToResidual();
    }
}
