using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace SharpInfer.Server.Tools;

/// <summary><c>exec_shell_command</c>: runs <c>sh -c COMMAND</c> (<c>cmd /c</c> on Windows) in the call's cwd,
/// stdout and stderr together, at most 16 KiB of output and 60 s; streamable. The answer ends with
/// <c>[exit code: N]</c> (and <c>[exit due to timed out]</c>), as llama-server's.</summary>
internal sealed class ExecShellCommandTool : ServerTool
{
    public const int MaxOutput = 16 * 1024;
    public const int MaxTimeoutSeconds = 60;
    public override string Name => "exec_shell_command";
    public override string DisplayName => "Execute shell command";
    public override bool PermissionWrite => true;
    public override bool SupportsStream => true;

    public override JsonObject Definition() => Function(Name,
        "Execute a shell command and return its output (stdout and stderr combined).",
        new JsonObject
        {
            ["command"] = Prop("string", "Shell command to execute"),
            ["timeout"] = Prop("integer", $"Timeout in seconds (default 10, max {MaxTimeoutSeconds})"),
            ["max_output_size"] = Prop("integer", $"Maximum output size in bytes (default {MaxOutput})"),
        }, "command");

    public override async Task<JsonObject> InvokeAsync(ToolCall call, Func<string, Task>? stream, CancellationToken ct)
    {
        string command = call.RequireString("command");
        int timeout = Math.Clamp(call.Int("timeout", 10), 1, MaxTimeoutSeconds);
        int maxOutput = Math.Clamp(call.Int("max_output_size", MaxOutput), 0, MaxOutput);
        var cwd = call.Cwd is { } c ? call.Resolve(c) : null;
        if (cwd != null && !Directory.Exists(cwd)) return Error("working directory does not exist: " + call.Cwd);
        // stderr joins stdout inside the shell, so the two interleave in the order they were written
        var (file, args) = OperatingSystem.IsWindows()
            ? ("cmd", new[] { "/c", command + " 2>&1" })
            : ("sh", new[] { "-c", "exec 2>&1\n" + command });
        var res = await ProcessRunner.RunAsync(file, args, cwd, maxOutput, TimeSpan.FromSeconds(timeout), stream, ct).ConfigureAwait(false);
        string tail = $"\n[exit code: {res.ExitCode}]" + (res.TimedOut ? " [exit due to timed out]" : "");
        if (stream != null)
        {
            if (res.Truncated) await stream("\n[output truncated]").ConfigureAwait(false);
            await stream(tail).ConfigureAwait(false);
            return [];
        }
        return Text(res.Output + tail);
    }
}

/// <summary><c>get_datetime</c>: the current UTC time, formatted by a strftime-style format.</summary>
internal sealed class GetDatetimeTool : ServerTool
{
    public override string Name => "get_datetime";
    public override string DisplayName => "Get Date & Time";

    public override JsonObject Definition()
    {
        var def = Function(Name, "Returns the current date and time in UTC", new JsonObject
        {
            ["format"] = Prop("string", "strftime()-style format string for the output (default: \"%Y-%m-%dT%H:%M:%SZ\", e.g. ISO 8601). " +
                                        "Choose your own format if you need something else, e.g. \"%A, %B %d %Y\" for a human-readable date."),
        });
        ((JsonObject)def["function"]!["parameters"]!).Remove("required");
        return def;
    }

    public override Task<JsonObject> InvokeAsync(ToolCall call, Func<string, Task>? stream, CancellationToken ct)
    {
        var text = Strftime(call.String("format", "%Y-%m-%dT%H:%M:%SZ"), DateTime.UtcNow);
        return Task.FromResult(text is { Length: > 0 and <= 255 } ? new JsonObject { ["result"] = text } : Error("invalid format string"));
    }

    /// <summary>The C strftime conversions a model asks for, in the C locale; null for an unknown one.</summary>
    internal static string? Strftime(string format, DateTime t)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%') { sb.Append(format[i]); continue; }
            if (++i == format.Length) return null;
            string? part = format[i] switch
            {
                'Y' => t.Year.ToString(ci),
                'y' => (t.Year % 100).ToString("00", ci),
                'C' => (t.Year / 100).ToString("00", ci),
                'm' => t.Month.ToString("00", ci),
                'd' => t.Day.ToString("00", ci),
                'e' => t.Day.ToString(ci).PadLeft(2),
                'H' => t.Hour.ToString("00", ci),
                'I' => ((t.Hour + 11) % 12 + 1).ToString("00", ci),
                'M' => t.Minute.ToString("00", ci),
                'S' => t.Second.ToString("00", ci),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'j' => t.DayOfYear.ToString("000", ci),
                'A' => t.ToString("dddd", ci),
                'a' => t.ToString("ddd", ci),
                'B' => t.ToString("MMMM", ci),
                'b' or 'h' => t.ToString("MMM", ci),
                'u' => (t.DayOfWeek == DayOfWeek.Sunday ? 7 : (int)t.DayOfWeek).ToString(ci),
                'w' => ((int)t.DayOfWeek).ToString(ci),
                'F' => t.ToString("yyyy-MM-dd", ci),
                'T' => t.ToString("HH:mm:ss", ci),
                'R' => t.ToString("HH:mm", ci),
                'D' => t.ToString("MM/dd/yy", ci),
                'c' => t.ToString("ddd MMM ", ci) + t.Day.ToString(ci).PadLeft(2) + t.ToString(" HH:mm:ss yyyy", ci),
                'Z' => "UTC",
                'z' => "+0000",
                's' => new DateTimeOffset(t, TimeSpan.Zero).ToUnixTimeSeconds().ToString(ci),
                'n' => "\n",
                't' => "\t",
                '%' => "%",
                _ => null,
            };
            if (part is null) return null;
            sb.Append(part);
        }
        return sb.ToString();
    }
}

/// <summary><c>get_info</c>: the OS (<c>uname -a</c>) and the working directory tools run in.</summary>
internal sealed class GetInfoTool : ServerTool
{
    public override string Name => "get_info";
    public override string DisplayName => "Get Runtime Info";

    public override JsonObject Definition()
    {
        var def = Function(Name, "Returns runtime info: the OS name/version and the current working directory", []);
        ((JsonObject)def["function"]!["parameters"]!).Remove("required");
        return def;
    }

    public override async Task<JsonObject> InvokeAsync(ToolCall call, Func<string, Task>? stream, CancellationToken ct)
    {
        var (file, args) = OperatingSystem.IsWindows() ? ("cmd", new[] { "/c", "ver" }) : ("uname", new[] { "-a" });
        var res = await ProcessRunner.RunAsync(file, args, null, 4096, TimeSpan.FromSeconds(5), null, ct).ConfigureAwait(false);
        string os = res.ExitCode == 0 && !res.TimedOut ? res.Output.Trim() : "unknown";
        return new JsonObject { ["os"] = os, ["cwd"] = call.Cwd ?? Directory.GetCurrentDirectory() };
    }
}
