using System.Net;
using System.Net.Sockets;

namespace SharpInfer.Tests.Cli;

/// <summary>Every command given bad arguments fails with a non-zero exit code and one <c>error:</c> line, never a
/// stack trace or an unhandled exception.</summary>
public class BadArgumentsTests
{
    private static string Model => TestPaths.Stories260K;
    private static readonly string ShortText = CliHarness.TempFile("too short to evaluate", ".txt");

    public static TheoryData<string> Cases()
    {
        var notGguf = CliHarness.TempFile("this is not a model", ".gguf");
        var dir = Path.GetTempPath();
        var missing = Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}.gguf");
        var data = new TheoryData<string>();
        foreach (var cmd in new[] { "run", "chat", "tokenize", "inspect", "bench", "bench throughput", "bench batched", "serve", "template", "perplexity" })
        {
            data.Add($"{cmd} -m {dir}");
            data.Add($"{cmd} -m {missing}");
            data.Add($"{cmd} -m {notGguf}");
            // tokenize takes free text, so an unknown option there is text to tokenize, not an error.
            if (cmd != "tokenize") data.Add($"{cmd} --no-such-option");
        }
        data.Add("run -m MODEL -n abc");
        data.Add("run -m MODEL -t abc");
        data.Add("run -m MODEL --cache-type q9");
        data.Add("run -m MODEL -t 0 -p hi");
        data.Add("run -m MODEL -c -5 -p hi");
        data.Add("bench -m MODEL -r abc");
        data.Add("bench serve --num-prompts abc");
        data.Add("bench serve --base-url CLOSED --num-prompts 1");
        data.Add("perplexity -m MODEL");
        data.Add("perplexity -m MODEL -f MISSING");
        data.Add("perplexity -m MODEL --kl-divergence");
        data.Add("perplexity -m MODEL --kl-divergence --kl-divergence-base MISSING");
        data.Add("perplexity -m MODEL -f NOTGGUF -c 64");
        data.Add("inspect");
        data.Add("no-such-command");
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fails_with_one_error_line_and_no_stack_trace(string line)
    {
        var args = line.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(a => a == "MODEL" ? Model : a == "CLOSED" ? ClosedPortUrl() : a == "MISSING" ? "/nonexistent/file.txt" : a == "NOTGGUF" ? ShortText : a).ToArray();

        var r = CliHarness.Run(args);
        var all = r.Stdout + r.Stderr;

        Assert.NotEqual(0, r.ExitCode);
        var errorLines = r.Stderr.Split('\n').Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToList();
        Assert.Single(errorLines);
        Assert.DoesNotContain("   at ", all);
        Assert.DoesNotContain("Unhandled exception", all);
        Assert.DoesNotContain("Exception:", all);
    }

    [Fact]
    public void Each_kind_of_bad_model_file_has_its_own_message()
    {
        var notGguf = CliHarness.TempFile("plain text", ".gguf");
        var missing = Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}.gguf");
        Assert.Contains("is a directory", CliHarness.Run(["inspect", "-m", Path.GetTempPath()]).Stderr);
        Assert.Contains("no such file", CliHarness.Run(["inspect", "-m", missing]).Stderr);
        Assert.Contains("not a GGUF file", CliHarness.Run(["inspect", "-m", notGguf]).Stderr);
    }

    /// <summary>A URL nothing listens on: a port the OS just gave out and that was closed again.</summary>
    private static string ClosedPortUrl()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return $"http://127.0.0.1:{port}";
    }
}
