using System.CommandLine;

namespace SharpInfer.Cli;

/// <summary>Runs a parsed command and turns SharpInfer's own errors into a message on stderr and exit code 1
/// (no stack trace: they describe bad input, not a bug).</summary>
public static class CliRunner
{
    public static int Invoke(RootCommand root, string[] args) => Invoke(root, args, CliIo.System);

    public static int Invoke(RootCommand root, string[] args, CliIo io)
    {
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = io.Out, Error = io.Error };
        try
        {
            return root.Parse(args).Invoke(config);
        }
        catch (SharpInferException e)
        {
            io.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
