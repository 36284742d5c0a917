using SharpInfer.Gguf;
using SharpInfer.Models;

namespace SharpInfer.Tensors;

/// <summary>
/// YaRN RoPE scaling (gpt-oss, Qwen long-context, DeepSeek), ggml's arithmetic: per rotation pair i the angle mixes the
/// interpolated angle (θ·freqScale, for the low frequencies) with the original one (θ, for the high frequencies):
/// <c>θ' = θ·freqScale·(1 − m) + θ·m</c>, m = ramp(i)·extFactor, where the ramp is 1 below the correction dimension
/// <see cref="Low"/>, 0 above <see cref="High"/> and linear in i between; cos and sin are scaled by
/// <c>attnFactor·(1 + 0.1·ln(1/freqScale))</c> (the paper's √(1/t)). The correction dimensions are where a
/// pair's wavelength fits betaFast (resp. betaSlow) times in the original context, floored (resp. ceiled) as ggml does.
/// <see cref="ModelConfig.FromGguf"/> reads the settings (<see cref="FromGguf"/>) and the transformer computes every
/// RoPE table of such a model with <see cref="Angles"/> instead of <see cref="Rope.Angles"/>.
/// </summary>
internal sealed record RopeYarn(float FreqScale, float ExtFactor, float AttnFactor, float BetaFast, float BetaSlow, int OriginalContext,
    float Low, float High)
{
    /// <summary>llama.cpp's defaults (<c>yarn_beta_fast</c>, <c>yarn_beta_slow</c>; ext_factor 1 for YaRN models).</summary>
    public const float DefaultBetaFast = 32f, DefaultBetaSlow = 1f;

    /// <summary>The YaRN settings of a model (<c>{arch}.rope.scaling.type</c> = yarn, <c>.factor</c>,
    /// <c>.original_context_length</c>, and llama.cpp's optional <c>.yarn_ext_factor</c>, <c>.yarn_attn_factor</c>,
    /// <c>.yarn_beta_fast</c>, <c>.yarn_beta_slow</c>), or null when the model does not use YaRN.</summary>
    public static RopeYarn? FromGguf(GgufFile g, string arch, int nRot, float freqBase)
    {
        if (g.GetString($"{arch}.rope.scaling.type") != "yarn") return null;
        double factor = ModelConfigValidator.PositiveNumber(g, $"{arch}.rope.scaling.factor") ?? 1.0;
        long origCtx = g.GetInteger($"{arch}.rope.scaling.original_context_length")
            ?? throw new UnsupportedModelException($"{g.Path}: YaRN needs '{arch}.rope.scaling.original_context_length'");
        if (origCtx is <= 0 or > int.MaxValue)
            throw new UnsupportedModelException($"{g.Path}: '{arch}.rope.scaling.original_context_length' = {origCtx} is out of range");
        float Opt(string key, float dflt)
        {
            double? v = g.GetFloat($"{arch}.rope.scaling.{key}");
            if (v is { } d && !double.IsFinite(d)) throw new UnsupportedModelException($"{g.Path}: '{arch}.rope.scaling.{key}' is not finite");
            return v is { } x ? (float)x : dflt;
        }
        if (Opt("yarn_log_multiplier", 0f) != 0f)
            throw new UnsupportedModelException($"{g.Path}: '{arch}.rope.scaling.yarn_log_multiplier' (DeepSeek's YaRN magnitude) is not supported");
        float freqScale = (float)(1.0 / factor), extFactor = Opt("yarn_ext_factor", 1f);
        float attnFactor = extFactor != 0f ? ContextAttnFactor(1.0f / freqScale) : Opt("yarn_attn_factor", 1f);
        return Create(nRot, freqBase, freqScale, (int)origCtx, extFactor, attnFactor * Opt("attn_factor", 1f),
            Opt("yarn_beta_fast", DefaultBetaFast), Opt("yarn_beta_slow", DefaultBetaSlow));
    }

    /// <summary>The attention factor llama.cpp's context computes for YaRN (llama_context, ext_factor ≠ 0, no log
    /// multiplier): get_mscale(factor) = 1 + 0.1·ln(factor) for factor &gt; 1, times 1 / (1 + 0.1·ln(factor)) to cancel the
    /// magnitude ggml's rope applies again, so the file's <c>yarn_attn_factor</c> is not used. In float this is 1 or
    /// within an ulp of it (exactly 1 for gpt-oss's factor 32).</summary>
    public static float ContextAttnFactor(float factor)
    {
        float mscale = factor <= 1f ? 1f : 0.1f * MathF.Log(factor) + 1f;
        return mscale * (1f / (1f + 0.1f * MathF.Log(factor)));
    }

    /// <summary>The settings with their correction dimensions (ggml_rope_yarn_corr_dims).</summary>
    public static RopeYarn Create(int nRot, float freqBase, float freqScale, int originalContext, float extFactor = 1f, float attnFactor = 1f,
        float betaFast = DefaultBetaFast, float betaSlow = DefaultBetaSlow)
    {
        var (low, high) = CorrectionDims(nRot, originalContext, freqBase, betaFast, betaSlow);
        return new RopeYarn(freqScale, extFactor, attnFactor, betaFast, betaSlow, originalContext, low, high);
    }

    /// <summary>The pair index (fractional) whose wavelength 2π·base^(2i/nDims) fits <paramref name="rotations"/> times
    /// in <paramref name="originalContext"/> positions: nDims·ln(ctx / (rotations·2π)) / (2·ln base), in float as ggml.</summary>
    public static float CorrectionDim(int nDims, int originalContext, float rotations, float freqBase) =>
        nDims * MathF.Log(originalContext / (rotations * 2 * MathF.PI)) / (2 * MathF.Log(freqBase));

    /// <summary>ggml_rope_yarn_corr_dims: [max(0, ⌊dim(betaFast)⌋), min(nDims − 1, ⌈dim(betaSlow)⌉)].</summary>
    public static (float Low, float High) CorrectionDims(int nDims, int originalContext, float freqBase, float betaFast, float betaSlow)
    {
        float start = MathF.Floor(CorrectionDim(nDims, originalContext, betaFast, freqBase));
        float end = MathF.Ceiling(CorrectionDim(nDims, originalContext, betaSlow, freqBase));
        return (MathF.Max(0, start), MathF.Min(nDims - 1, end));
    }

    /// <summary>ggml's rope_yarn_ramp for pair i: 1 − clamp((i − low) / max(0.001, high − low), 0, 1).</summary>
    public float Ramp(int pair) => 1 - MathF.Min(1, MathF.Max(0, (pair - Low) / MathF.Max(0.001f, High - Low)));

    /// <summary>cos/sin of one position like <see cref="Rope.Angles"/> (same θ chain: position·base^(−2i/nRot) by repeated
    /// float multiplication, divided by the frequency factor), with YaRN's mix and magnitude scale; the float operations
    /// of ggml's rope_yarn, in its order, without fused multiply-adds.</summary>
    public unsafe void Angles(int position, int nRot, float freqBase, float[]? factors, float* cs)
    {
        float thetaScale = MathF.Pow(freqBase, -2.0f / nRot);
        float mscale = AttnFactor;
        if (ExtFactor != 0f) mscale *= 1.0f + 0.1f * MathF.Log(1.0f / FreqScale);
        float theta = position;
        for (int i = 0; i < nRot / 2; i++)
        {
            float ff = factors != null ? factors[i] : 1.0f;
            float extrap = theta / ff;
            float interp = FreqScale * extrap;
            float angle = interp;
            if (ExtFactor != 0f)
            {
                float mix = Ramp(i) * ExtFactor;
                float a = interp * (1 - mix), b = extrap * mix;   // rounded separately: no FMA contraction
                angle = a + b;
            }
            cs[2 * i] = MathF.Cos(angle) * mscale;
            cs[2 * i + 1] = MathF.Sin(angle) * mscale;
            theta *= thetaScale;
        }
    }
}
