namespace SharpInfer.Models.Architectures;

/// <summary>Llama 1–3 and Mistral: the default pre-norm decoder with adjacent-pair RoPE (and Llama 3's
/// <c>rope_freqs</c> factors when the file has them).</summary>
internal sealed class Llama : Architecture
{
    public override string Name => "llama";
    public override RopeStyle RopeStyle => RopeStyle.Normal;
}
