using System.CommandLine;

namespace SharpInfer.Cli;

/// <summary>Runs a parsed command and turns every exception into one <c>error: message</c> line on stderr and exit
/// code 1: SharpInfer's own errors describe bad input, and anything else (an unreachable server, an I/O error) is
/// still better reported as one line than as a crash. SHARPINFER_DEBUG=1 adds the stack trace.</summary>
internal static class CliRunner
{
    public static int Invoke(RootCommand root, string[] args) => Invoke(root, args, CliIo.System);

    public static int Invoke(RootCommand root, string[] args, CliIo io)
    {
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = io.Out, Error = io.Error };
        try
        {
            var parsed = root.Parse(args);
            // One line for a parse error instead of the error followed by the whole help text.
            if (parsed.Errors.Count > 0)
            {
                io.Error.WriteLine($"error: {OneLine(parsed.Errors[0].Message)} (see {CommandLine(parsed)} --help)");
                return 1;
            }
            return parsed.Invoke(config);
        }
        catch (Exception e)
        {
            var inner = e is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerException! : e;
            io.Error.WriteLine($"error: {OneLine(inner.Message)}");
            if (Environment.GetEnvironmentVariable("SHARPINFER_DEBUG") == "1") io.Error.WriteLine(inner.ToString());
            return 1;
        }
    }

    private static string CommandLine(ParseResult parsed)
    {
        var names = new List<string>();
        for (var c = parsed.CommandResult; c != null; c = c.Parent as System.CommandLine.Parsing.CommandResult)
            names.Insert(0, c.Parent == null ? "sharpinfer" : c.Command.Name);
        return string.Join(' ', names);
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();
}
