namespace SharpInfer.Cli;

/// <summary>Checks a model path before it is opened, so that a directory, a missing file, an unreadable file and a
/// file that is not GGUF each get their own one-line message instead of a generic "file not found" or an I/O trace.</summary>
internal static class ModelFileCheck
{
    private static readonly byte[] Magic = "GGUF"u8.ToArray();

    /// <summary>The model a command's <c>-m</c> names (or the default one), checked by <see cref="Ensure"/>.</summary>
    public static string Resolve(string? explicitPath) => Ensure(SharpInfer.Models.ModelLocator.Resolve(explicitPath));

    /// <summary>Returns <paramref name="path"/> when it names a readable GGUF file; throws <see cref="CliException"/>
    /// (printed as <c>error: ...</c>) otherwise.</summary>
    public static string Ensure(string path)
    {
        if (Directory.Exists(path)) throw new CliException($"{path} is a directory, not a GGUF file");
        if (!File.Exists(path)) throw new CliException($"{path}: no such file");
        Span<byte> head = stackalloc byte[4];
        int read;
        try
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            read = f.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        }
        catch (UnauthorizedAccessException) { throw new CliException($"{path} is not readable (permission denied)"); }
        catch (IOException e) { throw new CliException($"{path} could not be read: {e.Message}"); }
        if (read < 4 || !head.SequenceEqual(Magic)) throw new CliException($"{path} is not a GGUF file (no GGUF magic at its start)");
        return path;
    }
}

/// <summary>A CLI usage error: printed as one <c>error:</c> line, exit code 1.</summary>
internal sealed class CliException(string message) : Exception(message);
