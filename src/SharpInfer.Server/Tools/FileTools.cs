using System.Text;
using System.Text.Json.Nodes;

namespace SharpInfer.Server.Tools;

/// <summary><c>read_file</c>: a file's lines (optionally a 1-based range, optionally numbered), at most 16 KiB.</summary>
internal sealed class ReadFileTool : ServerTool
{
    public const int MaxSize = 16 * 1024;
    public override string Name => "read_file";
    public override string DisplayName => "Read file";

    public override JsonObject Definition() => Function(Name,
        "Read the contents of a file. Optionally specify a 1-based line range. If append_loc is true, each line is prefixed with its line number (e.g. \"1\u2192...\").",
        new JsonObject
        {
            ["path"] = Prop("string", "Path to the file"),
            ["start_line"] = Prop("integer", "First line to read, 1-based (default: 1)"),
            ["end_line"] = Prop("integer", "Last line to read, 1-based inclusive (default: end of file)"),
            ["append_loc"] = Prop("boolean", "Prefix each line with its line number"),
        }, "path");

    public override async Task<JsonObject> InvokeAsync(ToolCall call, Func<string, Task>? stream, CancellationToken ct)
    {
        string path = call.RequireString("path");
        int start = call.Int("start_line", 1), end = call.Int("end_line", -1);
        bool loc = call.Bool("append_loc", false);
        var full = call.Resolve(path);
        var info = new FileInfo(full);
        if (!info.Exists) return Error("cannot stat file: " + path);
        if (info.Length > MaxSize && end == -1)
            return Error($"file too large ({info.Length} bytes, max {MaxSize}). Use start_line/end_line to read a portion.");
        var result = new StringBuilder();
        int bytes = 0, lineNo = 0;
        try
        {
            using var reader = new StreamReader(full, Encoding.UTF8, detectEncodingFromByteOrderMarks: false);
            // a range read of a large file streams it line by line: only the range is held
            while (await ReadLineKeepingCr(reader, ct).ConfigureAwait(false) is { } line)
            {
                lineNo++;
                if (lineNo < start) continue;
                if (end != -1 && lineNo > end) break;
                string outLine = loc ? $"{lineNo}\u2192{line}\n" : line + "\n";
                int n = Encoding.UTF8.GetByteCount(outLine);
                if (bytes + n > MaxSize)
                {
                    result.Append("[output truncated]");
                    break;
                }
                bytes += n;
                result.Append(outLine);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Error("failed to open file: " + path);
        }
        return Text(result.ToString());
    }

    /// <summary>A line without its '\n' (a '\r' stays, as C++ getline keeps it); null at the end. A line is cut at
    /// <see cref="MaxSize"/> characters: the rest of a longer line is read and dropped, so memory stays bounded.</summary>
    internal static async Task<string?> ReadLineKeepingCr(StreamReader reader, CancellationToken ct)
    {
        var sb = new StringBuilder();
        var one = new char[1];
        bool any = false;
        while (true)
        {
            int n = await reader.ReadAsync(one.AsMemory(), ct).ConfigureAwait(false);
            if (n == 0) return any ? sb.ToString() : null;
            any = true;
            if (one[0] == '\n') return sb.ToString();
            if (sb.Length <= MaxSize) sb.Append(one[0]);
        }
    }
}

/// <summary><c>write_file</c>: creates or overwrites a file, parent directories included.</summary>
internal sealed class WriteFileTool : ServerTool
{
    public override string Name => "write_file";
    public override string DisplayName => "Write file";
    public override bool PermissionWrite => true;

    public override JsonObject Definition() => Function(Name,
        "Write content to a file, creating it (including parent directories) if it does not exist. May use with edit_file for more complex edits.",
        new JsonObject
        {
            ["path"] = Prop("string", "Path of the file to write"),
            ["content"] = Prop("string", "Content to write"),
        }, "path", "content");

    public override async Task<JsonObject> InvokeAsync(ToolCall call, Func<string, Task>? stream, CancellationToken ct)
    {
        string path = call.RequireString("path");
        string content = call.RequireString("content");
        var bytes = Encoding.UTF8.GetBytes(content);
        try
        {
            var full = call.Resolve(path);
            if (Path.GetDirectoryName(full) is { Length: > 0 } dir) Directory.CreateDirectory(dir);
            await File.WriteAllBytesAsync(full, bytes, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return Error("failed to write file: " + path);
        }
        return new JsonObject { ["result"] = "file written successfully", ["path"] = path, ["bytes"] = bytes.Length };
    }
}
