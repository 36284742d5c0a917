using System.CommandLine;

namespace SharpInfer.Cli;

/// <summary>Runs a parsed command and turns SharpInfer's own errors into a message on stderr and exit code 1
/// (no stack trace: they describe bad input, not a bug).</summary>
public static class CliRunner
{
    public static int Invoke(RootCommand root, string[] args)
    {
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        try
        {
            return root.Parse(args).Invoke(config);
        }
        catch (SharpInferException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
