using SharpInfer.Gguf;

namespace SharpInfer.Models.Architectures;

/// <summary>
/// Gemma 3 (llama.cpp's gemma3 iSWA graph): embeddings × sqrt(n_embd); sliding-window layers and global layers in a
/// period of 6 (<c>attention.sliding_window_pattern</c> if present: layer il is windowed when il mod period &lt;
/// period − 1), windowed layers with RoPE base <c>rope.freq_base_swa</c> (default 10000) and no linear scaling, global
/// ones with <c>rope.freq_base</c>; QK-norm; RMSNorm of the attention and FFN outputs before each residual add
/// (<c>post_attention_norm</c>, <c>post_ffw_norm</c>); GELU-gated FFN; NeoX RoPE; head_dim from
/// <c>attention.key_length</c>; attention scale 1/sqrt(head_dim) (1/sqrt(n_embd/n_head) for the 62-layer 27B, as
/// llama.cpp); optional final logit soft-capping. The converter folds Gemma's (1 + w) norm weights into the file, so
/// the norms are plain RMSNorm.
/// </summary>
internal sealed class Gemma3 : Architecture
{
    /// <summary>llama.cpp's default when the file has no pattern key: 5 local layers, then 1 global.</summary>
    public const int DefaultSwaPeriod = 6;

    public override string Name => "gemma3";
    public override bool HasQkNorm => true;

    public override ModelConfig Configure(GgufFile g, ModelConfig c)
    {
        int window = ModelConfigValidator.PositiveInteger(g, "gemma3.attention.sliding_window") ?? 0;
        int period = ModelConfigValidator.PositiveInteger(g, "gemma3.attention.sliding_window_pattern") ?? DefaultSwaPeriod;
        double swaBase = ModelConfigValidator.PositiveNumber(g, "gemma3.rope.freq_base_swa") ?? 10000.0;
        double softcap = ModelConfigValidator.PositiveNumber(g, "gemma3.final_logit_softcapping") ?? 0.0;
        float attnScale = c.LayerCount == 62 ? 1f / MathF.Sqrt(c.EmbeddingLength / c.HeadCount) : 1f / MathF.Sqrt(c.HeadDim);
        return c with
        {
            EmbeddingScale = MathF.Sqrt(c.EmbeddingLength),
            AttentionScale = attnScale,
            FinalLogitSoftcap = (float)softcap,
            SlidingWindow = window,
            SlidingWindowPeriod = period,
            RopeFreqBaseSwa = (float)swaBase,
        };
    }

    public override LayerAttributes Layer(ModelConfig c, int layer)
    {
        bool windowed = c.SlidingWindow > 0 && layer % c.SlidingWindowPeriod < c.SlidingWindowPeriod - 1;
        return windowed
            ? new LayerAttributes(UsesRope: true, c.RopeFreqBaseSwa, RopeFreqScale: 1f, c.SlidingWindow)
            : new LayerAttributes(UsesRope: true, c.RopeFreqBase, c.RopeFreqScale, Window: 0);
    }

    public override LayerWeights LoadLayer(WeightLoader w, ModelConfig c, int layer)
    {
        string p = $"blk.{layer}.";
        return base.LoadLayer(w, c, layer) with
        {
            PostAttnNorm = w.Vector(p + "post_attention_norm.weight", c.EmbeddingLength),
            PostFfnNorm = w.Vector(p + "post_ffw_norm.weight", c.EmbeddingLength),
        };
    }

    internal override void ForwardLayer(Transformer.Blocks f, LayerWeights L, int layer)
    {
        f.Norm(L.AttnNorm);
        f.Attention(L, layer);
        f.NormOutput(L.PostAttnNorm!);
        f.AddToResidual();
        f.Norm(L.FfnNorm);
        f.FeedForward(L, FfnActivation.Gelu);
        f.NormOutput(L.PostFfnNorm!);
        f.AddToResidual();
    }
}
