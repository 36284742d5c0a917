using SharpInfer.Tensors;

namespace SharpInfer.Models.Architectures;

/// <summary>
/// Phi-3: NeoX RoPE; Q, K and V as one matrix (<c>attn_qkv</c>, rows q then k then v) and gate and up as one
/// (<c>ffn_up</c> with 2·n_ff rows, gate first), read as row ranges of the mapped tensor. Its
/// <c>attention.sliding_window</c> is ignored, as llama.cpp does ("Phi SWA is currently disabled").
/// </summary>
internal sealed class Phi3 : Architecture
{
    public override string Name => "phi3";

    protected override (WeightMatrix Q, WeightMatrix K, WeightMatrix V) LoadQkv(WeightLoader w, ModelConfig c, string p)
    {
        if (!w.Has(p + "attn_qkv.weight")) return base.LoadQkv(w, c, p);
        var m = w.Matrix(p + "attn_qkv.weight", c.EmbeddingLength, c.QueryDim + c.KeyDim + c.ValueDim);
        return (WeightLoader.Rows(m, 0, c.QueryDim, "q"), WeightLoader.Rows(m, c.QueryDim, c.KeyDim, "k"),
                WeightLoader.Rows(m, c.QueryDim + c.KeyDim, c.ValueDim, "v"));
    }

    protected override (WeightMatrix Gate, WeightMatrix Up) LoadGateUp(WeightLoader w, ModelConfig c, string p)
    {
        if (w.Has(p + "ffn_gate.weight")) return base.LoadGateUp(w, c, p);
        int F = c.FeedForwardLength;
        var m = w.Matrix(p + "ffn_up.weight", c.EmbeddingLength, 2 * F);
        return (WeightLoader.Rows(m, 0, F, "gate"), WeightLoader.Rows(m, F, F, "up"));
    }
}
