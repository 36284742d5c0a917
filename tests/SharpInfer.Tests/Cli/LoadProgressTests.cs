namespace SharpInfer.Tests.Cli;

/// <summary>Loading a model is announced on stderr (before and after), never on stdout.</summary>
public class LoadProgressTests
{
    [Fact]
    public void Chat_reports_model_loading_on_stderr_only()
    {
        var r = CliHarness.Run(["chat", "-m", TestPaths.Stories260K, "-n", "2", "--temp", "0"], stdin: "hi\n");
        Assert.Equal(0, r.ExitCode);
        var lines = r.Stderr.Split('\n');
        int start = Array.FindIndex(lines, l => l.StartsWith("loading stories260K.gguf (", StringComparison.Ordinal));
        int done = Array.FindIndex(lines, l => l.StartsWith("stories260K.gguf loaded in ", StringComparison.Ordinal));
        Assert.True(start >= 0 && done > start, r.Stderr);
        Assert.DoesNotContain("loading", r.Stdout);
    }
}
