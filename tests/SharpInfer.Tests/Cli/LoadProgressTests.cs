using SharpInfer.Cli;
using SharpInfer.Models;
using SharpInfer.Tensors;
using Spectre.Console;

namespace SharpInfer.Tests.Cli;

/// <summary>Loading a model is announced on stderr (plain lines off a terminal, a progress bar on one), never on
/// stdout; the library reports its steps in order up to 1.0.</summary>
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
        Assert.DoesNotContain("\u001b[", r.Stderr);   // no escape codes when stderr is not a terminal
    }

    [Fact]
    public void Load_progress_rises_through_every_step_to_one()
    {
        var path = TestModels.Get("mistral-tiny", "q8_0");   // Q8_0: the packing step has work to report
        var seen = new List<ModelLoadProgress>();
        var progress = new Recorder(seen);
        using var model = Model.Load(path, progress);
        model.PackWeights(progress: progress);
        Assert.Equal(new[] { "tensors", "tokenizer", "packing weights", "loaded" }, seen.Select(p => p.Stage).Distinct().ToArray());
        for (int i = 1; i < seen.Count; i++) Assert.True(seen[i].Fraction >= seen[i - 1].Fraction, $"{seen[i - 1]} then {seen[i]}");
        Assert.Equal(1.0, seen[^1].Fraction);
        Assert.All(seen, p => Assert.InRange(p.Fraction, 0, 1));
    }

    [Fact]
    public void A_terminal_gets_a_progress_bar_that_ends_at_100_percent()
    {
        var screen = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes,
            Interactive = InteractionSupport.Yes,
            ColorSystem = ColorSystemSupport.NoColors,
            Out = new AnsiConsoleOutput(screen),
        });
        var plain = new StringWriter();
        using var model = LoadProgress.LoadModel(TestModels.Get("mistral-tiny", "q8_0"), plain, MatMulPrecision.Fast, terminal: console);
        Assert.True(model.Config.LayerCount > 0);
        Assert.Equal("", plain.ToString());   // the bar replaces the plain lines
        string drawn = screen.ToString();
        Assert.Contains("loaded", drawn);
        Assert.Contains("100%", drawn);
    }

    [Fact]
    public void A_failed_load_under_the_bar_propagates_its_error()
    {
        var bad = CliHarness.TempFile("not a gguf file at all", ".gguf");
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Ansi = AnsiSupport.Yes, Interactive = InteractionSupport.Yes, Out = new AnsiConsoleOutput(new StringWriter()) });
        Assert.ThrowsAny<GgufFormatException>(() => LoadProgress.LoadModel(bad, new StringWriter(), terminal: console));
    }

    private sealed class Recorder(List<ModelLoadProgress> seen) : IProgress<ModelLoadProgress>
    {
        public void Report(ModelLoadProgress value)
        {
            lock (seen) seen.Add(value);
        }
    }
}
