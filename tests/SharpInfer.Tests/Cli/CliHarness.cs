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

    /// <summary>Writes <paramref name="content"/> to a new scratch file and returns its path.</summary>
    public static string TempFile(string content, string suffix = ".json")
    {
        var path = TestPaths.NewTempFile(suffix);
        File.WriteAllText(path, content);
        return path;
    }
}
