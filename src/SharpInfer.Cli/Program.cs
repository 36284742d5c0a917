using System.CommandLine;
using SharpInfer.Cli.Commands;

namespace SharpInfer.Cli;

internal static class Program
{
    public static int Main(string[] args) => Run(args, CliIo.System);

    /// <summary>Runs the CLI with the given streams (what <see cref="Main"/> does with the console's). The chat and
    /// template commands use <paramref name="io"/>; the others write to the console.</summary>
    public static int Run(string[] args, CliIo io)
    {
        // Usage lines name what people type (the script), not the assembly.
        var root = new RootCommand("SharpInfer: run GGUF language models on the CPU, in pure C#.") { HelpName = "sharpinfer" };
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(ChatCommand.Create(io));
        root.Subcommands.Add(TemplateCommand.Create(io));
        root.Subcommands.Add(TokenizeCommand.Create());
        root.Subcommands.Add(EmbedCommand.Create(io));
        root.Subcommands.Add(InspectCommand.Create());
        root.Subcommands.Add(PerplexityCommand.Create());
        root.Subcommands.Add(QuantizeCommand.Create(io));
        root.Subcommands.Add(ImatrixCommand.Create(io));
        var bench = BenchCommand.Create();
        bench.Subcommands.Add(BenchThroughputCommand.Create());
        bench.Subcommands.Add(BenchBatchedCommand.Create());
        root.Subcommands.Add(bench);
        root.Subcommands.Add(ServeCommand.Create());
        return CliRunner.Invoke(root, args, io);
    }
}
