using System.CommandLine;
using SharpInfer.Cli.Commands;

namespace SharpInfer.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("SharpInfer: run GGUF language models on the CPU, in pure C#.");
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(TokenizeCommand.Create());
        root.Subcommands.Add(InspectCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        return CliRunner.Invoke(root, args);
    }
}
