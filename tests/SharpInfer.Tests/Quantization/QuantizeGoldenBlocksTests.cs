using SharpInfer.Gguf;
using SharpInfer.Quantization;
using SharpInfer.Tensors;
using SharpInfer.Tests.Tensors;

namespace SharpInfer.Tests.Quantization;

/// <summary>A tensor that goes through the whole <c>quantize</c> pipeline (GGUF in, plan, row threads, streaming
/// writer, GGUF out) comes out as ggml's own blocks for it (../shared/golden/quant, ggml_quantize_chunk) and
/// dequantizes to ggml's to_float values, for every type the golden file has.</summary>
public class QuantizeGoldenBlocksTests
{
    /// <summary>The llama-quantize type whose --pure mix gives each ggml type.</summary>
    private static string FileTypeFor(string ggmlType) => ggmlType switch
    {
        "q2_K" => "Q2_K",
        "q3_K" => "Q3_K_M",
        "q4_K" => "Q4_K_M",
        "q5_K" => "Q5_K_M",
        _ => ggmlType.ToUpperInvariant(),
    };

    public static TheoryData<string> Types => QuantGoldenCase.TypeNames();

    [Theory]
    [MemberData(nameof(Types))]
    public void Quantized_tensor_is_ggmls_blocks_and_dequantizes_to_ggmls_values(string ggmlType)
    {
        var golden = QuantGoldenCase.Get(ggmlType);
        const int RowLength = 256;
        int rows = golden.Input.Length / RowLength;
        var norm = Enumerable.Repeat(1f, RowLength).ToArray();
        string input = QuantizeTestUtil.TinyModel(w => w
            .AddTensor("blk.0.attn_norm.weight", [RowLength], norm)
            .AddTensor("blk.0.ffn_up.weight", [RowLength, rows], golden.Input));
        string output = TestPaths.NewTempFile();
        try
        {
            var options = QuantizeTestUtil.Options(FileTypeFor(ggmlType), threads: 3, pure: true);
            ModelQuantizer.Run(input, output, options);
            using var g = GgufFile.Open(output);
            var t = g.GetTensor("blk.0.ffn_up.weight");
            Assert.Equal(golden.Type, t.Type);
            Assert.Equal(Convert.ToHexString(golden.Quantized), Convert.ToHexString(g.TensorBytes(t)));
            var values = new float[golden.Input.Length];
            long rowBytes = GgmlTypeInfo.RowSize(t.Type, RowLength);
            for (int r = 0; r < rows; r++)
                Dequantize.Row(t.Type, g.TensorBytes(t).Slice((int)(r * rowBytes), (int)rowBytes), values.AsSpan(r * RowLength, RowLength));
            Assert.Equal(golden.Dequantized.Select(BitConverter.SingleToInt32Bits), values.Select(BitConverter.SingleToInt32Bits));
            // 1-D tensors stay F32, untouched
            Assert.Equal(GgmlType.F32, g.GetTensor("blk.0.attn_norm.weight").Type);
            Assert.Equal((uint)options.Type.FileType, g.GetInteger("general.file_type"));
            Assert.Equal(2, g.GetInteger("general.quantization_version"));
        }
        finally
        {
            File.Delete(input);
            File.Delete(output);
        }
    }
}
