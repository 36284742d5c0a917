using System.CommandLine;

namespace SharpInfer.Cli;

/// <summary>Runs a parsed command and turns every exception into one <c>error: message</c> line on stderr and exit
/// code 1: SharpInfer's own errors describe bad input, and anything else (an unreachable server, an I/O error) is
/// still better reported as one line than as a crash. SHARPINFER_DEBUG=1 adds the stack trace.</summary>
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
        catch (Exception e)
        {
            var inner = e is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerException! : e;
            io.Error.WriteLine($"error: {OneLine(inner.Message)}");
            if (Environment.GetEnvironmentVariable("SHARPINFER_DEBUG") == "1") io.Error.WriteLine(inner.ToString());
            return 1;
        }
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();
}
