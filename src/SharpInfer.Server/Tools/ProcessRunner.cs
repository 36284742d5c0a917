using System.Diagnostics;
using System.Text;

namespace SharpInfer.Server.Tools;

/// <summary>Runs a child process for the tools (the shell, git): output read as it comes (stdout only; the shell
/// tool folds stderr into it), capped at a byte budget, the whole process tree killed at the timeout, on
/// cancellation or when the stream consumer gives up.</summary>
internal static class ProcessRunner
{
    public sealed record Result(string Output, int ExitCode, bool TimedOut, bool Truncated);

    public static async Task<Result> RunAsync(string file, IReadOnlyList<string> args, string? cwd, int maxOutput, TimeSpan timeout,
                                              Func<string, Task>? onChunk, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            CreateNoWindow = true,
            StandardOutputEncoding = Encoding.UTF8,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (cwd != null) psi.WorkingDirectory = cwd;
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException("no process");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException or IOException)
        {
            return new Result($"failed to spawn process: {e.Message}", -1, false, false);
        }
        using (process)
        {
            process.StandardInput.Close();
            // stderr is drained and dropped (an undrained pipe would block the child)
            _ = process.StandardError.BaseStream.CopyToAsync(Stream.Null, CancellationToken.None);
            using var timer = new CancellationTokenSource(timeout);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timer.Token);
            var output = new StringBuilder();
            int bytes = 0;
            bool truncated = false;
            var buffer = new char[4096];
            var reader = process.StandardOutput;
            try
            {
                while (true)
                {
                    int n = await reader.ReadAsync(buffer.AsMemory(), linked.Token).ConfigureAwait(false);
                    if (n == 0) break;
                    if (truncated) continue;
                    var chunk = new string(buffer, 0, n);
                    int chunkBytes = Encoding.UTF8.GetByteCount(chunk);
                    if (bytes + chunkBytes > maxOutput)
                    {
                        chunk = Utf8Prefix(chunk, maxOutput - bytes);
                        truncated = true;
                    }
                    bytes += Encoding.UTF8.GetByteCount(chunk);
                    output.Append(chunk);
                    if (onChunk != null && chunk.Length > 0) await onChunk(chunk).ConfigureAwait(false);
                }
                await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
                Kill(process);
                // cancelled by the caller (client gone, server stopping): not a timeout
                if (!timer.IsCancellationRequested) throw;
                if (truncated) output.Append("\n[output truncated]");
                return new Result(output.ToString(), -1, true, truncated);
            }
            if (truncated) output.Append("\n[output truncated]");
            return new Result(output.ToString(), process.ExitCode, false, truncated);
        }
    }

    /// <summary>Kills the process and its descendants (a grandchild holding the pipes must not outlive the call).</summary>
    public static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            // already gone
        }
    }

    /// <summary>The longest prefix of <paramref name="s"/> whose UTF-8 form fits <paramref name="maxBytes"/>.</summary>
    public static string Utf8Prefix(string s, int maxBytes)
    {
        if (maxBytes <= 0) return "";
        int bytes = 0, i = 0;
        while (i < s.Length)
        {
            int width = char.IsHighSurrogate(s[i]) && i + 1 < s.Length ? 2 : 1;
            int b = Encoding.UTF8.GetByteCount(s.AsSpan(i, width));
            if (bytes + b > maxBytes) break;
            bytes += b;
            i += width;
        }
        return s[..i];
    }
}
