namespace SharpInfer.Models.Architectures;

/// <summary>Qwen3-MoE: Qwen3's attention with a mixture-of-experts FFN in every layer (softmax router over all
/// experts, top-k, renormalized weights; see <see cref="MoeFeedForward"/>), experts as 3-D tensors.</summary>
internal sealed class Qwen3Moe : Architecture
{
    public override string Name => "qwen3moe";
    public override bool HasQkNorm => true;
}
