using SharpInfer.Quantization;
using SharpInfer.Tensors;

namespace SharpInfer.Tests.Quantization;

/// <summary>The parts of llama.cpp's type rules the synthetic models' shapes do not reach (their rows are all
/// multiples of 256): the fallbacks for rows that a type's blocks do not divide.</summary>
public class TensorTypeRulesTests
{
    private static TensorTypeRules Rules(LlamaFileType ftype, params string[] names) =>
        new(new QuantModelInfo("llama", 1, 2, 0, false), ftype, QuantFileType.DefaultType(ftype)!.Value, new TypeRuleOptions(), names);

    [Theory]
    [InlineData(LlamaFileType.Q4_K_M, 96, GgmlType.Q5_0)]
    [InlineData(LlamaFileType.Q5_K_S, 96, GgmlType.Q5_1)]
    [InlineData(LlamaFileType.Q6_K, 96, GgmlType.Q8_0)]
    [InlineData(LlamaFileType.Q2_K, 96, GgmlType.Q4_0)]
    [InlineData(LlamaFileType.Q3_K_S, 96, GgmlType.Q4_0)]
    [InlineData(LlamaFileType.Q4_K_S, 48, GgmlType.F16)]
    [InlineData(LlamaFileType.Q4_K_S, 512, GgmlType.Q4_K)]
    public void Rows_the_blocks_do_not_divide_fall_back_like_llama_cpp(Enum ftypeValue, long rowLength, Enum expectedValue)
    {
        var ftype = (LlamaFileType)ftypeValue; var expected = (GgmlType)expectedValue;
        var rules = Rules(ftype, "blk.0.ffn_up.weight");
        Assert.Equal(expected, rules.TargetType("blk.0.ffn_up.weight", [rowLength, 8], GgmlType.F32));
        Assert.Equal(expected == GgmlType.Q4_K ? 0 : 1, rules.Fallbacks.Count);
    }

    [Fact]
    public void A_legacy_type_has_no_fallback_and_says_so()
    {
        var rules = Rules(LlamaFileType.Q5_0, "blk.0.ffn_up.weight");
        var e = Assert.Throws<QuantizationException>(() => rules.TargetType("blk.0.ffn_up.weight", [48, 8], GgmlType.F32));
        Assert.Contains("no fallback type is defined for q5_0", e.Message);
    }

    [Fact]
    public void Output_matrix_with_rows_k_quants_cannot_hold_becomes_q8_0()
    {
        var rules = Rules(LlamaFileType.Q4_K_M, "output.weight", "token_embd.weight");
        Assert.Equal(GgmlType.Q8_0, rules.TargetType("output.weight", [96, 100], GgmlType.F32));
        Assert.Equal(GgmlType.Q6_K, rules.TargetType("output.weight", [512, 100], GgmlType.F32));
        // untied: the embeddings keep the mix's type
        Assert.Equal(GgmlType.Q4_K, rules.TargetType("token_embd.weight", [512, 100], GgmlType.F32));
    }

    [Fact]
    public void Norms_routers_vectors_and_non_weights_are_never_quantized()
    {
        var rules = Rules(LlamaFileType.Q4_0);
        Assert.Equal(GgmlType.F32, rules.TargetType("blk.0.attn_norm.weight", [256, 4], GgmlType.F32));
        Assert.Equal(GgmlType.F32, rules.TargetType("blk.0.ffn_gate_inp.weight", [256, 8], GgmlType.F32));
        Assert.Equal(GgmlType.F32, rules.TargetType("blk.0.attn_q.bias", [256, 4], GgmlType.F32));
        Assert.Equal(GgmlType.F32, rules.TargetType("blk.0.ffn_up.weight", [256, 1, 1], GgmlType.F32));   // 1-D in ggml's eyes
        Assert.Equal(GgmlType.Q4_0, rules.TargetType("blk.0.ffn_up.weight", [256, 2], GgmlType.F32));
    }

    [Theory]
    [InlineData("blk.10.ffn_up.weight", 10)]
    [InlineData("blk.3x", 3)]
    [InlineData("blk.x.ffn", null)]
    [InlineData("output.weight", null)]
    public void Layer_numbers_are_read_like_sscanf(string name, int? layer) => Assert.Equal(layer, TensorOrder.LayerOf(name));

    [Fact]
    public void Tensor_order_is_globals_first_then_by_layer_then_by_name()
    {
        string[] names = ["blk.10.attn_q.weight", "token_embd.weight", "blk.2.ffn_up.weight", "blk.2.attn_k.weight", "output.weight", "output_norm.weight"];
        Assert.Equal(["output.weight", "output_norm.weight", "token_embd.weight", "blk.2.attn_k.weight", "blk.2.ffn_up.weight", "blk.10.attn_q.weight"],
                     names.OrderBy(n => n, TensorOrder.Instance));
    }
}
