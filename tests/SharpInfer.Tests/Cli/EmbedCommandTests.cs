using System.Text.Json;
using SharpInfer.Tests.Engine;

namespace SharpInfer.Tests.Cli;

/// <summary><c>sharpinfer embed</c>: llama-embedding's vectors as OpenAI's list JSON; bad arguments are one error line.</summary>
public class EmbedCommandTests
{
    private static string Qwen => TestModels.Get("qwen3-tiny", "f32");

    [Theory]
    [InlineData("mean")]
    [InlineData("last")]
    public void Prints_llama_embedding_s_vectors(string pooling)
    {
        var texts = EmbeddingParityTests.Texts;
        var r = CliHarness.Run(["embed", "-m", Qwen, "-t", "2", "--pooling", pooling, "-p", texts[0], "-p", texts[1]]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var data = JsonDocument.Parse(r.Stdout).RootElement.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        var refs = EmbeddingParityTests.Case("qwen3-tiny", pooling).GetProperty("vectors");
        for (int i = 0; i < 2; i++)
        {
            var got = data[i].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            var want = refs[i].EnumerateArray().Select(v => v.GetSingle()).ToArray();
            Assert.True(EmbeddingParityTests.Cosine(got, want) >= 0.9999);
        }
    }

    [Theory]
    [InlineData("--pooling", "sum")]
    [InlineData("--dimensions", "0")]
    [InlineData("--embd-normalize", "-5")]
    [InlineData("--pooling", "rank")]
    public void Bad_arguments_fail_with_one_error_line(string option, string value)
    {
        var r = CliHarness.Run(["embed", "-m", Qwen, "-t", "1", "-p", "hi", option, value]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Single(r.Stderr.Split('\n'), l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.DoesNotContain("   at ", r.Stdout + r.Stderr);
    }
}
