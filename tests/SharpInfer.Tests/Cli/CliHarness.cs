using System.Diagnostics;
using System.Text.Json.Nodes;
using SharpInfer.Cli;

namespace SharpInfer.Tests.Cli;

/// <summary>Runs the CLI in-process with its own readers and writers (no process-wide console redirection, so it is
/// safe under parallel tests).</summary>
public static class CliHarness
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(string[] args, string stdin = "", bool interactive = false)
    {
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };
        int code = Program.Run(args, new CliIo { In = new StringReader(stdin), Out = output, Error = error, Interactive = interactive });
        return new Result(code, output.ToString(), error.ToString());
    }

    /// <summary>Runs the CLI as a child process (<c>dotnet SharpInfer.Cli.dll ARGS</c>, with extra environment variables,
    /// under a hang guard) and returns its standard output parsed as one JSON object — for commands that print JSON
    /// (<c>run --json</c>) and for settings only a new process can take (the runtime's instruction-set switches).</summary>
    public static JsonObject RunProcessJson(string[] args, params (string Key, string Value)[] env)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "SharpInfer.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (key, value) in env) psi.Environment[key] = value;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stdout = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(2)), "the CLI did not finish");   // hang guard
        Assert.True(p.ExitCode == 0, stderr.Result);
        return JsonNode.Parse(stdout)!.AsObject();
    }

    /// <summary>Writes <paramref name="content"/> to a new scratch file and returns its path.</summary>
    public static string TempFile(string content, string suffix = ".json")
    {
        var path = TestPaths.NewTempFile(suffix);
        File.WriteAllText(path, content);
        return path;
    }
}
