namespace SharpInfer.Models.Architectures;

/// <summary>Qwen2 / Qwen2.5: the default decoder with NeoX RoPE and Q/K/V biases (loaded because the file has them).</summary>
internal sealed class Qwen2 : Architecture
{
    public override string Name => "qwen2";
}
