using SharpInfer.Gguf;
using SharpInfer.Tensors;
using SharpInfer.Tests.Cli;

namespace SharpInfer.Tests.Quantization;

/// <summary>The command line: a successful run writes the file, prints llama-quantize's size summary on stdout and one
/// progress line per tensor on stderr (not a terminal here).</summary>
public class QuantizeCommandTests
{
    [Fact]
    public void Quantizes_and_prints_the_size_summary()
    {
        var values = Enumerable.Range(0, 256 * 64).Select(i => (float)Math.Cos(i * 0.37)).ToArray();
        string input = QuantizeTestUtil.TinyModel(w => w
            .AddTensor("blk.0.attn_norm.weight", [256], Enumerable.Repeat(1f, 256).ToArray())
            .AddTensor("blk.0.ffn_up.weight", [256, 64], values));
        string output = TestPaths.NewTempFile();
        try
        {
            var r = CliHarness.Run(["quantize", input, output, "q8_0", "2"]);
            Assert.Equal(0, r.ExitCode);
            Assert.Contains("[   2/   2] blk.0.ffn_up.weight", r.Stderr);
            Assert.Contains("f32 -> q8_0", r.Stdout);
            // 64 KiB of f32 weights plus 1 KiB of norm -> 17 KiB of q8_0 plus the norm
            Assert.Contains("model size  =       0.06 MiB (32.00 BPW)", r.Stdout);
            Assert.Contains("quant size  =       0.02 MiB (8.86 BPW)", r.Stdout);
            Assert.Contains("file type   = 7 (Q8_0)", r.Stdout);
            using var g = GgufFile.Open(output);
            Assert.Equal(GgmlType.Q8_0, g.GetTensor("blk.0.ffn_up.weight").Type);
            Assert.Equal(7, g.GetInteger("general.file_type"));
        }
        finally
        {
            File.Delete(input);
            File.Delete(output);
        }
    }
}
