using SharpInfer.Gguf;
using SharpInfer.Tensors;

namespace SharpInfer.Models.Architectures;

/// <summary>
/// gpt-oss (llama.cpp's openai-moe iSWA graph): layers alternate a sliding window (<c>attention.sliding_window</c>)
/// and full attention in a period of 2 (<c>attention.sliding_window_pattern</c> if present: layer il is windowed when
/// il mod period &lt; period − 1), both with the model's RoPE (NeoX, YaRN; <c>rope.freq_base_swa</c> if present for the
/// windowed ones); Q/K/V and output projections with biases; attention sinks (one logit per head, see
/// <see cref="PagedAttention"/>); head_dim from <c>attention.key_length</c> with n_head·head_dim ≠ n_embd, scale
/// 1/sqrt(head_dim). The FFN is a mixture of experts normed by <c>post_attention_norm</c>: router with bias, top-k of the
/// logits, softmax over the selected ones, experts with biases after each projection and clamped SwiGLU
/// (<see cref="VecOps.SwiGluOai(float*, float*, int, float, float)"/>). Untied output.
/// </summary>
internal sealed class GptOss : Architecture
{
    /// <summary>llama.cpp's default period: a windowed layer, then a full one.</summary>
    public const int DefaultSwaPeriod = 2;

    public override string Name => "gpt-oss";

    public override ModelConfig Configure(GgufFile g, ModelConfig c)
    {
        if (!c.IsMoe) throw new UnsupportedModelException($"{g.Path}: gpt-oss needs 'gpt-oss.expert_count'");
        int window = ModelConfigValidator.PositiveInteger(g, "gpt-oss.attention.sliding_window") ?? 0;
        int period = ModelConfigValidator.PositiveInteger(g, "gpt-oss.attention.sliding_window_pattern") ?? DefaultSwaPeriod;
        double swaBase = ModelConfigValidator.PositiveNumber(g, "gpt-oss.rope.freq_base_swa") ?? c.RopeFreqBase;
        return c with
        {
            SlidingWindow = window,
            SlidingWindowPeriod = period,
            RopeFreqBaseSwa = (float)swaBase,
            ExpertGating = ExpertGating.SoftmaxWeight,
        };
    }

    public override LayerAttributes Layer(ModelConfig c, int layer)
    {
        bool windowed = c.SlidingWindow > 0 && layer % c.SlidingWindowPeriod < c.SlidingWindowPeriod - 1;
        return windowed
            ? new LayerAttributes(UsesRope: true, c.RopeFreqBaseSwa, c.RopeFreqScale, c.SlidingWindow)
            : new LayerAttributes(UsesRope: true, c.RopeFreqBase, c.RopeFreqScale, Window: 0);
    }

    public override LayerWeights LoadLayer(WeightLoader w, ModelConfig c, int layer)
    {
        string p = $"blk.{layer}.";
        int E = c.EmbeddingLength, F = c.FeedForwardLength, N = c.ExpertCount;
        var (q, k, v) = LoadQkv(w, c, p);
        var gates = w.Experts(p + "ffn_gate_exps.weight", E, F, N);
        var ups = w.Experts(p + "ffn_up_exps.weight", E, F, N);
        var downs = w.Experts(p + "ffn_down_exps.weight", F, E, N);
        var gateBias = w.ExpertVectors(p + "ffn_gate_exps.bias", F, N);
        var upBias = w.ExpertVectors(p + "ffn_up_exps.bias", F, N);
        var downBias = w.ExpertVectors(p + "ffn_down_exps.bias", E, N);
        var experts = new ExpertWeights[N];
        for (int e = 0; e < N; e++)
            experts[e] = new ExpertWeights(gates[e], ups[e], downs[e]) { GateBias = gateBias[e], UpBias = upBias[e], DownBias = downBias[e] };
        return new LayerWeights
        {
            AttnNorm = w.Vector(p + "attn_norm.weight", E),
            Q = q,
            K = k,
            V = v,
            O = w.Matrix(p + "attn_output.weight", c.HeadCount * c.ValueHeadDim, E),
            QBias = w.Vector(p + "attn_q.bias", c.QueryDim),
            KBias = w.Vector(p + "attn_k.bias", c.KeyDim),
            VBias = w.Vector(p + "attn_v.bias", c.ValueDim),
            OBias = w.Vector(p + "attn_output.bias", E),
            AttnSinks = w.Vector(p + "attn_sinks.weight", c.HeadCount),
            // llama.cpp's attn_post_norm: the norm before the FFN, in the place of other families' ffn_norm
            FfnNorm = w.Vector(p + "post_attention_norm.weight", E),
            Router = w.Matrix(p + "ffn_gate_inp.weight", E, N),
            RouterBias = w.Vector(p + "ffn_gate_inp.bias", N),
            Experts = experts,
        };
    }

    /// <summary>The pre-norm layer of every family, with the clamped SwiGLU (<c>post_attention_norm</c> is loaded as the
    /// FFN norm).</summary>
    internal override FfnActivation FeedForwardActivation => FfnActivation.SwiGluOai;
}
