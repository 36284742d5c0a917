using System.Diagnostics;
using System.Text.Json;

namespace SharpInfer.Tests;

/// <summary>Where the repository, ../shared and the model cache are.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();
    public static string Shared { get; } = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
    public static string Golden => Path.Combine(Shared, "golden");
    public static string Stories260K => Path.Combine(Shared, "models", "stories260K.gguf");
    /// <summary>Generated models and scratch files: git-ignored, kept between runs (SHARPINFER_TEST_CACHE points it
    /// elsewhere, e.g. to measure what a run from an empty cache writes).</summary>
    public static string Cache { get; } = Directory.CreateDirectory(
        Environment.GetEnvironmentVariable("SHARPINFER_TEST_CACHE") is { Length: > 0 } c ? c : Path.Combine(RepoRoot, ".cache")).FullName;

    /// <summary>Per-run scratch for the biggest synthetic models (0.5–1 GB each): deleted when the test process
    /// ends, so they never pile up in <see cref="Cache"/>.</summary>
    public static string RunScratch { get; } = CreateRunScratch();

    private static string CreateRunScratch()
    {
        var dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"sharpinfer-tests-{Environment.ProcessId}")).FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(dir, recursive: true); }
            catch (IOException) { }   // best effort: a file still mapped elsewhere stays in the OS temp dir
            catch (UnauthorizedAccessException) { }
        };
        return dir;
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "SharpInfer.sln"))) return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (SharpInfer.sln) above " + AppContext.BaseDirectory);
    }

    public static string NewTempFile(string suffix = ".gguf")
    {
        var dir = Directory.CreateDirectory(Path.Combine(Cache, "tmp")).FullName;
        return Path.Combine(dir, $"{Guid.NewGuid():N}{suffix}");
    }
}

/// <summary>Synthetic models from ../shared/tools/synth_gguf.py, generated on first use into .cache/models
/// (same arguments give the same bytes, so a cached file is always the right one).</summary>
public static class TestModels
{
    private static readonly object Gate = new();

    public static string Get(string preset, string type, int seed = 1) =>
        Generate(Directory.CreateDirectory(Path.Combine(TestPaths.Cache, "models")).FullName, preset, type, seed);

    /// <summary>A real-size synthetic model (tests with Category=Large): generated once per test run into
    /// <see cref="TestPaths.RunScratch"/> and shared by the tests of that run, then deleted.</summary>
    public static string GetLarge(string preset, string type, int seed = 1) => Generate(TestPaths.RunScratch, preset, type, seed);

    private static string Generate(string dir, string preset, string type, int seed)
    {
        var path = Path.Combine(dir, $"{preset}-{type}-s{seed}.gguf");
        lock (Gate)
        {
            if (File.Exists(path)) return path;
            using var fileLock = AcquireFileLock(path + ".lock");
            if (File.Exists(path)) return path;
            var psi = new ProcessStartInfo("python3")
            {
                ArgumentList = { Path.Combine(TestPaths.Shared, "tools", "synth_gguf.py"), "--preset", preset, "--type", type,
                                 "--seed", seed.ToString(), "-o", path },
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            using var p = Process.Start(psi)!;
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0 || !File.Exists(path))
                throw new InvalidOperationException($"synth_gguf.py {preset} {type} failed: {err}");
            return path;
        }
    }

    /// <summary>Serializes generation across test processes too.</summary>
    private static FileStream AcquireFileLock(string path)
    {
        for (int i = 0; ; i++)
        {
            try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose); }
            catch (IOException) when (i < 600) { Thread.Sleep(500); }
        }
    }
}

/// <summary>Reads the JSON-lines files under ../shared/golden.</summary>
public static class Golden
{
    public static IEnumerable<JsonElement> Lines(string relativePath)
    {
        foreach (var line in File.ReadLines(Path.Combine(TestPaths.Golden, relativePath)))
            if (!string.IsNullOrWhiteSpace(line))
                yield return JsonDocument.Parse(line).RootElement.Clone();
    }

    public static string[] Files(string subdir) =>
        Directory.GetFiles(Path.Combine(TestPaths.Golden, subdir), "*.jsonl").Select(Path.GetFileName).OrderBy(f => f).ToArray()!;
}
