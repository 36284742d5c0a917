using SharpInfer.Quantization;

namespace SharpInfer.Tests.Quantization;

/// <summary>Rows are quantized on several threads in batches; the file must not depend on how many.</summary>
public class QuantizeThreadsTests
{
    [Theory]
    [InlineData("Q4_K_M")]
    [InlineData("Q5_1")]
    [InlineData("IQ4_NL")]
    public void Output_does_not_depend_on_the_thread_count(string type)
    {
        var rng = new Random(11);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        // odd row counts, and a matrix large enough for several batches of rows
        string input = QuantizeTestUtil.TinyModel(w => w
            .AddTensor("token_embd.weight", [256, 2051], Random(256 * 2051))
            .AddTensor("blk.0.attn_v.weight", [256, 37], Random(256 * 37))
            .AddTensor("blk.0.ffn_down.weight", [512, 301], Random(512 * 301))
            .AddTensor("blk.1.ffn_down.weight", [512, 3], Random(512 * 3)), layers: 2);
        try
        {
            var hashes = new[] { 1, 2, 3, 8 }.Select(t => QuantizeTestUtil.QuantizedSha256(input, QuantizeTestUtil.Options(type, threads: t))).ToArray();
            Assert.Single(hashes.Distinct());
        }
        finally { File.Delete(input); }
    }
}
