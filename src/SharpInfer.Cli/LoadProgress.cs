using System.Diagnostics;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Cli;

/// <summary>
/// Loads a model for a command with feedback on stderr: a progress bar on a terminal (binding tensors, building the
/// tokenizer, packing weights for the kernels), otherwise a "loading FILE (SIZE) ..." line before and
/// "FILE loaded in N s" after. Packing here, not inside the first engine, is what lets the bar cover the slow part;
/// the engine's own packing call then finds nothing left to do.
/// </summary>
internal static class LoadProgress
{
    /// <param name="terminal">Draws the bar on this console instead of deciding from <paramref name="stderr"/>
    /// (tests).</param>
    public static Model LoadModel(string path, TextWriter stderr, MatMulPrecision precision = MatMulPrecision.Fast, IsaLevel? isa = null,
                                  Spectre.Console.IAnsiConsole? terminal = null)
    {
        string name = Path.GetFileName(path);
        string size = $"{new FileInfo(path).Length / 1048576.0:F1} MiB";
        var clock = Stopwatch.StartNew();
        Model Load(IProgress<ModelLoadProgress>? progress)
        {
            var model = Model.Load(path, progress);
            try
            {
                if (precision == MatMulPrecision.Fast) model.PackWeights(isa, progress);
                return model;
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        terminal ??= ProgressDisplay.IsTerminal(stderr) ? ProgressDisplay.StandardError() : null;
        if (terminal != null)
            return ProgressDisplay.Run(terminal, $"loading {name} ({size})",
                report => Load(new Reporter(p => report($"{name}: {p.Stage}", p.Fraction))));
        stderr.WriteLine($"loading {name} ({size}) ...");
        stderr.Flush();
        var loaded = Load(null);
        stderr.WriteLine($"{name} loaded in {clock.Elapsed.TotalSeconds:F1} s");
        stderr.Flush();
        return loaded;
    }

    /// <summary>Calls back on the reporting thread (<see cref="Progress{T}"/> would post to a synchronization
    /// context and deliver late, out of order).</summary>
    private sealed class Reporter(Action<ModelLoadProgress> onReport) : IProgress<ModelLoadProgress>
    {
        public void Report(ModelLoadProgress value) => onReport(value);
    }
}
