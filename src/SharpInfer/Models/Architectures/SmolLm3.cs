using SharpInfer.Gguf;

namespace SharpInfer.Models.Architectures;

/// <summary>SmolLM3: Llama with no RoPE on every 4th layer (hard-wired in llama.cpp, no metadata key).</summary>
internal sealed class SmolLm3 : Architecture
{
    public override string Name => "smollm3";
    public override RopeStyle RopeStyle => RopeStyle.Normal;
    public override ModelConfig Configure(GgufFile g, ModelConfig c) => c with { NoRopeLayerStep = 4 };
}
