using System.Diagnostics;

namespace SharpInfer.Cli;

/// <summary>Plain progress lines on stderr around a long step (loading and preparing a model takes seconds on big
/// files), so the terminal does not sit silent; stdout stays clean for the command's output.</summary>
public sealed class LoadProgress : IDisposable
{
    private readonly TextWriter _stderr;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly string _what;

    private LoadProgress(TextWriter stderr, string what)
    {
        _stderr = stderr;
        _what = what;
    }

    /// <summary>Prints "loading FILE (SIZE) ..." now and "FILE loaded in N s" when disposed.</summary>
    public static LoadProgress Model(string path, TextWriter stderr)
    {
        long bytes = new FileInfo(path).Length;
        stderr.WriteLine($"loading {Path.GetFileName(path)} ({bytes / 1048576.0:F1} MiB) ...");
        stderr.Flush();
        return new LoadProgress(stderr, Path.GetFileName(path));
    }

    public void Dispose()
    {
        _stderr.WriteLine($"{_what} loaded in {_clock.Elapsed.TotalSeconds:F1} s");
        _stderr.Flush();
    }
}
