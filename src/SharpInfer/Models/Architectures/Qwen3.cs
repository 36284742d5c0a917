namespace SharpInfer.Models.Architectures;

/// <summary>Qwen3: NeoX RoPE and per-head RMSNorm of queries and keys before RoPE; head_dim set independently of
/// n_embd / n_head (<c>attention.key_length</c>).</summary>
internal sealed class Qwen3 : Architecture
{
    public override string Name => "qwen3";
    public override bool HasQkNorm => true;
}
