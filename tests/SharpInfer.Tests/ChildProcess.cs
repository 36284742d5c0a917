using System.Diagnostics;

namespace SharpInfer.Tests;

/// <summary>Child processes of the tests (dotnet pack / publish / tool install, the installed tool, the AOT executable,
/// node clients): one way to start them and to run them to their end under a hang guard.</summary>
internal static class ChildProcess
{
    /// <summary>Both streams redirected; a child build must not inherit this test host's MSBuild settings, nor leave
    /// build servers behind.</summary>
    public static ProcessStartInfo StartInfo(string file, string dir, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList()) psi.Environment.Remove(key);
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        return psi;
    }

    /// <summary>Runs a process to its end (<paramref name="hangGuard"/> kills it) and returns its exit code and output.</summary>
    public static async Task<(int Code, string Out, string Err)> RunToExitAsync(string file, string dir, TimeSpan hangGuard, CancellationToken ct, params string[] args)
    {
        using var p = Process.Start(StartInfo(file, dir, args))!;
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        using var guard = CancellationTokenSource.CreateLinkedTokenSource(ct);
        guard.CancelAfter(hangGuard);
        try
        {
            await p.WaitForExitAsync(guard.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {hangGuard}");
        }
        return (p.ExitCode, await stdout, await stderr);
    }

    /// <summary><see cref="RunToExitAsync"/> that returns stdout; a non-zero exit fails with both streams.</summary>
    public static async Task<string> RunAsync(string file, string dir, TimeSpan hangGuard, CancellationToken ct, params string[] args)
    {
        var (code, output, errors) = await RunToExitAsync(file, dir, hangGuard, ct, args);
        if (code != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {code}\n{output}\n{errors}");
        return output;
    }
}
