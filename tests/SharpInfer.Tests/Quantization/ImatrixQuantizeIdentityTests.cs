using SharpInfer.Quantization;

namespace SharpInfer.Tests.Quantization;

/// <summary>
/// <c>quantize --imatrix</c> writes the same file as llama-quantize with the same importance matrix. The hashes are
/// SHA-256s of llama-quantize's output (llama.cpp d32676d77, build 9749), run in a scratch directory as
/// <c>cp .cache/models/MODEL.synthetic-imatrix.gguf imatrix.gguf; llama-quantize --imatrix imatrix.gguf .cache/models/MODEL.gguf OUT TYPE 2</c>
/// (the legacy case with the .dat copied to imatrix.dat; the filter cases with the flags shown)
/// (see <see cref="SyntheticImatrix"/> for the matrix; its file is what our writer produces).
/// </summary>
public class ImatrixQuantizeIdentityTests
{
    /// <summary>Every type whose quantizer uses the weights (Q4_0 … Q6_K, IQ4_NL), Q8_0 (ignores them, but the metadata
    /// records the imatrix) and Q2_K_S (a mix llama-quantize refuses without an imatrix).</summary>
    public static TheoryData<string, string> MistralTiny => new()
    {
        { "Q4_0", "55ca228db985733d16722c12bc08c8c64cd1915c26465184636be105e6a891b7" },
        { "Q4_1", "5c9097beabea5e70cde886305de1e6e9d081df164feaa80c6650db2e407312be" },
        { "Q5_0", "2420163f0287eb662a7c507091c5c03b7720d730fd4e2788cc50d0786f8b06b3" },
        { "Q5_1", "19a500dc540b463755652093c6f63cfc997ad3ca3e2b752c535bb7f523a2b043" },
        { "Q8_0", "a4b7e2c25dd320e7d5dce03ad3ac0bd1e55386a953360c67d60c7a8c0e1af8c2" },
        { "Q2_K", "17bfd92d821263d0d3dd8f6df5d8887b40b4d8205680f87b4a457e44f1b3cf76" },
        { "Q2_K_S", "9947c3919c04aec7bb2c602fdce2070ec73efdea1433dee57235d57c5dee413f" },
        { "Q3_K_M", "a8a23bb3b6bc52f753b50cffd0e574ddb81e7e257d5f8f088a6f6308a5e12557" },
        { "Q4_K_M", "aafe496a175cb58d96c273c88fae203c46480cb65ed7eeb97f9fedbe2c813b2b" },
        { "Q5_K_M", "98302a4dd6bccfe2c8b6fc752e5f0c54e3b0f2b50a69b530986ed92f5ebbd30a" },
        { "Q6_K", "e5e64671ddfafb8518454e9acd82c9c771420bfde5cc54eea603c25101874820" },
        { "IQ4_NL", "aee7b4fe0f502f9f872f72e3a630484fbf4f2e3fe50f1d54b9c44a3ea6aa9ec5" },
    };

    [Theory]
    [MemberData(nameof(MistralTiny))]
    public void Mistral_tiny_with_imatrix_is_byte_identical_to_llama_quantize(string type, string llamaQuantizeSha256)
    {
        string model = QuantizeTestUtil.SyntheticModel("mistral-tiny");
        var options = SyntheticImatrix.Options(type, SyntheticImatrix.GgufFileFor(model));
        Assert.Equal(llamaQuantizeSha256, QuantizeTestUtil.QuantizedSha256(model, options));
    }

    /// <summary>A MoE model: each expert's rows are quantized with that expert's columns (ggml's i03 slices), and an
    /// expert with count 0 gets weight 1. qwen3-tiny: tied embeddings, QK norms. Real vocabularies: Category=Large.</summary>
    [Theory]
    [Trait("Category", "Large")]
    [InlineData("qwen3moe-tiny", "Q4_K_M", "726ed5ff6bc36904ff03f5c3bac4a4258ae06587f47a27cc42d4c0f955e7c8ca")]
    [InlineData("qwen3moe-tiny", "Q4_0", "8a9c77d9a0a332043f99530432a69210bdcd0899d38ed13a1de375d39d1cc443")]
    [InlineData("qwen3-tiny", "Q4_K_M", "8a63980e879e22e7e6dfbc3e03e2f8cd47ebe01c59859396209b1e5a65b7a571")]
    [InlineData("qwen3-tiny", "IQ4_NL", "5957d9e27c20d5a86f1099cb99d0dfb9340ccde9a2c1b72f0fdedf9955a9a013")]
    public void Other_models_with_imatrix_are_byte_identical_to_llama_quantize(string preset, string type, string llamaQuantizeSha256)
    {
        string model = QuantizeTestUtil.SyntheticModel(preset);
        var options = SyntheticImatrix.Options(type, SyntheticImatrix.GgufFileFor(model));
        Assert.Equal(llamaQuantizeSha256, QuantizeTestUtil.QuantizedSha256(model, options));
    }

    /// <summary>The legacy .dat format (same weights: the tensor bytes are those of the GGUF run; the metadata differs)
    /// and llama-quantize's --include-weights / --exclude-weights (substring filters; the entries count records what
    /// is left), on mistral-tiny Q4_K_M.</summary>
    [Theory]
    [InlineData("imatrix.dat", "", "11b7d85704413d331c7a86e385c8dcb666d5bccee59d11f66363c357b432e9d3")]
    [InlineData("imatrix.gguf", "--exclude-weights attn_v --exclude-weights blk.1.", "9db08e1ac46c44c39cb4e80bcb62286866eb6f6947986287c5531f3e1906a358")]
    [InlineData("imatrix.gguf", "--include-weights ffn_down", "fad623b2ba2015cfe36baca69e751d5f6480d8a7c47e5d15163e8189fef80176")]
    public void Legacy_format_and_weight_filters_match_llama_quantize(string fileName, string flags, string llamaQuantizeSha256)
    {
        string model = QuantizeTestUtil.SyntheticModel("mistral-tiny");
        string path = fileName.EndsWith(".dat", StringComparison.Ordinal) ? SyntheticImatrix.LegacyFileFor(model) : SyntheticImatrix.GgufFileFor(model);
        var f = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var include = new List<string>();
        var exclude = new List<string>();
        for (int i = 0; i < f.Length; i += 2) (f[i] == "--include-weights" ? include : exclude).Add(f[i + 1]);
        var options = SyntheticImatrix.Options("Q4_K_M", path, fileName, include.ToArray(), exclude.ToArray());
        Assert.Equal(llamaQuantizeSha256, QuantizeTestUtil.QuantizedSha256(model, options));
    }
}
