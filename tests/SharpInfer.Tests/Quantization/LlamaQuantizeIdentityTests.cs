using SharpInfer.Quantization;

namespace SharpInfer.Tests.Quantization;

/// <summary>
/// <c>quantize</c> writes the same file as llama-quantize. The hashes are SHA-256s of llama-quantize's output files,
/// measured outside the repository with llama.cpp commit d32676d77 (build 9749, CPU): <c>llama-quantize IN OUT TYPE 2</c>
/// on the synth_gguf.py models named (seed 1, f32 unless said; their own hashes are checked against
/// ../shared/golden/models.sha256 first). synth_gguf.py is deterministic, so the inputs here are those files.
/// </summary>
public class LlamaQuantizeIdentityTests
{
    public static TheoryData<string, string> MistralTiny => new()
    {
        { "COPY", "d7c61647526858dfc12ffb6daef0b414048cbed1455e117c4604a392a4d982ca" },
        { "Q8_0", "5c4a18f208a0beb4194c0e49e1e0d62b74521de7ac19437ab2008771128d757c" },
        { "Q4_0", "8baf837135bc06f69caab4250008de762eecb030c65de713ffccf4476d1f49ed" },
        { "Q5_1", "2d4d38929ccd60eca63492790bafeea29ebd6d905cb62a734130931e7031b54d" },
        { "BF16", "98a45cfb19640e7f9637cea3bda2fa89642faca2a6d718aef03a4089b3b26500" },
        { "Q6_K", "21c0266aed27f0993528a7f98af277fd4bd14810139df90b5a446be5643c5dac" },
        { "Q4_K_M", "efc0d8d82450a3ddb93571edc0785c8b0ee014697cd3817b7accb409257568f2" },
        { "Q5_K_M", "8cbe5f819b443979c03aee91549577b3b4c7b044613d1247b755ab3ae001c88b" },
        { "IQ4_NL", "563ee3521a097bbd16a7ff1c2f6202ccdb6398045cdd8ced34fd9609f782d942" },
        { "Q3_K_S", "9fde1a70911ef7a6fd02ff48f0ea0ec2085519ac497115e4c15b30673bae62a1" },
    };

    /// <summary>The other types of the same table (the same check, tagged Large to keep a quick local run short).</summary>
    public static TheoryData<string, string> MistralTinyMore => new()
    {
        { "Q4_1", "774296fb4f4035ee8fb044b9626534017c9ce54d758adc468826c0aa4a5425f7" },
        { "Q5_0", "6dc73718b5699b63d08453e131eddf038a022070da6062fda1a1a6239b2dfb1a" },
        { "F16", "ff570c16977b9e164d5250e760a5a73e3658eac0baf73a93a95d52dd727cfbc5" },
        { "Q4_K_S", "2220ba78d1e791be03938032255623cd7d97a3a610c9681af5b240013de3975a" },
        { "Q5_K_S", "4381a07772fd571398b67e6d3930230d19b3d20e5edfe9a6db90e7a5045ef826" },
        { "Q3_K_M", "ddacd3792ba610cce41c64b63b94404f4351b22fa073b15bd66eed53fd7a9ffc" },
        { "Q3_K_L", "5bc192c1725da31e6eb843e207fb185c8421079509ed72bae39efcbeef2ce296" },
        { "Q2_K", "cceaf597e1a215b6d7c237f16c566732c079e266455964d7d0386af3f39292e5" },
    };

    [Theory]
    [MemberData(nameof(MistralTiny))]
    public void Mistral_tiny_is_byte_identical_to_llama_quantize(string type, string llamaQuantizeSha256) =>
        Assert.Equal(llamaQuantizeSha256, QuantizeTestUtil.QuantizedSha256(QuantizeTestUtil.SyntheticModel("mistral-tiny"), QuantizeTestUtil.Options(type)));

    [Theory]
    [Trait("Category", "Large")]
    [MemberData(nameof(MistralTinyMore))]
    public void Mistral_tiny_other_types_are_byte_identical_to_llama_quantize(string type, string llamaQuantizeSha256) =>
        Assert.Equal(llamaQuantizeSha256, QuantizeTestUtil.QuantizedSha256(QuantizeTestUtil.SyntheticModel("mistral-tiny"), QuantizeTestUtil.Options(type)));

    /// <summary>Tied embeddings (token_embd gets the output rule), Llama 3's rope_freqs tensor, Qwen3's QK norms.
    /// Real-size vocabularies make these the slow ones: Category=Large.</summary>
    public static TheoryData<string, string, string> LargerVocabularies => new()
    {
        { "llama3-tiny", "Q8_0", "c4113618f794bfba2c9e879a2cc9f4f7b847d54c5f13fa7716999ab84708d202" },
        { "llama3-tiny", "Q4_K_M", "9406c2435a891db5b9026f854ebdd7b620e7f866fba76988788e2f5243588a30" },
        { "llama3-tiny", "Q5_1", "ba19aff2969e3c276730b4499a9e5faf1f3743e527c1907af33759ca125ed1db" },
        { "qwen3-tiny", "Q5_K_M", "a0ad21435f3ff11f728a7729f40ca4b1cdd4e5be900c997c62f1645c37606fb7" },
        { "qwen3-tiny", "IQ4_NL", "2f30087b4b54fa251431c8bdb0da64d3bd5fd6ee23ec5540ccf0a7839f43d39e" },
        { "qwen3-tiny", "Q3_K_M", "42e6cd96a8189bd16fd975dd01990c515e9e5950fe9f8ef96a35f46316177fee" },
    };

    [Theory]
    [Trait("Category", "Large")]
    [MemberData(nameof(LargerVocabularies))]
    public void Tied_embedding_models_are_byte_identical_to_llama_quantize(string preset, string type, string llamaQuantizeSha256) =>
        Assert.Equal(llamaQuantizeSha256, QuantizeTestUtil.QuantizedSha256(QuantizeTestUtil.SyntheticModel(preset), QuantizeTestUtil.Options(type)));

    /// <summary>The options, and inputs that are not f32 (F16 converted, Q8_0 requantized), against llama-quantize
    /// run with the same options on mistral-tiny.</summary>
    [Theory]
    [InlineData("f16", "Q4_0", "", "f4f7a40c374c64ac2738dda9eb16e0a910d21081b41ab8cb3835ce094085ca54")]
    [InlineData("q8_0", "Q4_K_M", "--allow-requantize", "d8a398a75442aba9afa1634886fb679a6a754bf6780a6a246b9528bd1cd3f99e")]
    [InlineData("f32", "Q4_K_M", "--pure", "a3d8667e079e881e7645d6b417d03d120549c0a6ae61abb4d977b07e6e5ceb2c")]
    [InlineData("f32", "Q5_K_M", "--output-tensor-type q8_0 --token-embedding-type f16", "5197893b9643a3d326b043e1cbf525e21be17c4f9da08cc251f739df47fdb160")]
    [InlineData("f32", "Q6_K", "--leave-output-tensor", "e7ef837d13b22691331a3877d93f2ac450a0ef05a44b88bf208989b06e30b790")]
    public void Options_and_non_f32_inputs_match_llama_quantize(string inputType, string type, string flags, string llamaQuantizeSha256)
    {
        var o = QuantizeTestUtil.Options(type);
        var f = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < f.Length; i++)
        {
            switch (f[i])
            {
                case "--allow-requantize": o = o with { AllowRequantize = true }; break;
                case "--pure": o = o with { Pure = true }; break;
                case "--leave-output-tensor": o = o with { LeaveOutputTensor = true }; break;
                case "--output-tensor-type": o = o with { OutputTensorType = Parse(f[++i]) }; break;
                case "--token-embedding-type": o = o with { TokenEmbeddingType = Parse(f[++i]) }; break;
                default: throw new ArgumentException(f[i]);
            }
        }
        Assert.Equal(llamaQuantizeSha256, QuantizeTestUtil.QuantizedSha256(QuantizeTestUtil.SyntheticModel("mistral-tiny", inputType), o));

        static SharpInfer.Tensors.GgmlType Parse(string s) =>
            SharpInfer.Tensors.GgmlTypeInfo.TryParse(s, out var t) ? t : throw new ArgumentException(s);
    }
}
