using System.Text.Json.Nodes;

namespace SharpInfer.Tests.Cli;

/// <summary><c>run --draft-max</c> / <c>--speculative-config</c>: the same greedy text as without, and llama.cpp's
/// draft_n / draft_n_accepted in the JSON timings; bad configurations are one-line errors.</summary>
public class SpeculativeCliTests
{
    /// <summary>The CLI as a process (run writes its JSON to the process's stdout).</summary>
    private static JsonObject RunJson(params string[] more) =>
        CliHarness.RunProcessJson(["run", "-m", TestPaths.Stories260K, "-t", "1", "-n", "120", "--temp", "0", "--json", .. more]);

    [Fact]
    public void DraftMaxGivesTheSameTextAndReportsProposals()
    {
        var plain = RunJson();
        var spec = RunJson("--draft-max", "4");
        var config = RunJson("--speculative-config", """{"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_min": 1}""");
        Assert.Equal(plain["text"]!.GetValue<string>(), spec["text"]!.GetValue<string>());
        Assert.Equal(plain["generated_ids"]!.ToJsonString(), config["generated_ids"]!.ToJsonString());
        Assert.Null(plain["timings"]!["draft_n"]);
        int drafted = spec["timings"]!["draft_n"]!.GetValue<int>(), accepted = spec["timings"]!["draft_n_accepted"]!.GetValue<int>();
        Assert.True(drafted > 0 && accepted > 0 && accepted <= drafted, $"{accepted} of {drafted}");
        Assert.True(config["timings"]!["draft_n"]!.GetValue<int>() > 0);
    }

    [Theory]
    [InlineData("--speculative-config", "{\"method\": \"medusa\"}", "method")]
    [InlineData("--speculative-config", "not json", "not valid JSON")]
    [InlineData("--speculative-config", "{\"method\": \"draft_model\"}", "model")]
    [InlineData("--model-draft", "/nonexistent/draft.gguf", "draft.gguf")]
    [InlineData("--draft-max", "0", "num_speculative_tokens")]
    public void BadSpeculativeOptionsAreOneLineErrors(string option, string value, string expected)
    {
        var r = CliHarness.Run(["run", "-m", TestPaths.Stories260K, "-n", "4", option, value]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(expected, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.Equal("", r.Stdout);
    }
}
