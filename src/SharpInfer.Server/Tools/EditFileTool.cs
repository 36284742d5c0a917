using System.Text;
using System.Text.Json.Nodes;

namespace SharpInfer.Server.Tools;

/// <summary><c>edit_file</c>: exact text replacements, each <c>old_text</c> unique in the file and matched against
/// the original content; edits must not overlap. When an <c>old_text</c> is not found verbatim it may still match
/// after trailing whitespace is dropped and smart quotes, dashes and special spaces become ASCII (models type those);
/// then the untouched lines are kept byte for byte. llama-server's rules and messages.</summary>
internal sealed class EditFileTool : ServerTool
{
    /// <summary>Largest file edited (the content is held several times over while edits apply).</summary>
    public const int MaxSize = 8 << 20;
    public override string Name => "edit_file";
    public override string DisplayName => "Edit file";
    public override bool PermissionWrite => true;

    public override JsonObject Definition()
    {
        var item = new JsonObject
        {
            ["type"] = "object",
            ["properties"] = new JsonObject
            {
                ["old_text"] = Prop("string", "Exact text to find; must be unique in the file and must not overlap with other edits"),
                ["new_text"] = Prop("string", "Text to replace old_text with"),
            },
            ["required"] = new JsonArray((JsonNode)"old_text", (JsonNode)"new_text"),
        };
        return Function(Name,
            "Edit a file using exact text replacement. Each edits[].old_text must be unique in the file and is matched against the original content, not incrementally. Merge nearby changes into one edit instead of overlapping edits. Use write_file to replace the whole file.",
            new JsonObject
            {
                ["path"] = Prop("string", "Path to the file to edit"),
                ["edits"] = new JsonObject { ["type"] = "array", ["description"] = "One or more exact text replacements to apply", ["items"] = item },
            }, "path", "edits");
    }

    private sealed record Match(int EditIndex, int Index, int Length, string NewText);

    public override async Task<JsonObject> InvokeAsync(ToolCall call, Func<string, Task>? stream, CancellationToken ct)
    {
        string path = call.RequireString("path");
        if (call.Params["edits"] is not JsonArray editsJson || editsJson.Count == 0) return Error("\"edits\" must be a non-empty array");
        var edits = new List<(string Old, string New)>();
        foreach (var e in editsJson)
        {
            if (e is not JsonObject o) throw new ToolArgumentException($"edits[{edits.Count}] must be an object");
            var sub = new ToolCall(o);
            var (oldText, newText) = (sub.RequireString("old_text"), sub.RequireString("new_text"));
            if (oldText.Length == 0) return Error($"edits[{edits.Count}].old_text must not be empty");
            edits.Add((oldText, newText));
        }
        var full = call.Resolve(path);
        string original;
        try
        {
            if (new FileInfo(full).Length > MaxSize) return Error($"file too large to edit (max {MaxSize} bytes): {path}");
            original = await File.ReadAllTextAsync(full, new UTF8Encoding(false), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return Error("failed to open file: " + path);
        }

        bool anyFuzzy = false;
        string fuzzyOriginal = Normalize(original);
        for (int i = 0; i < edits.Count; i++)
        {
            if (original.Contains(edits[i].Old, StringComparison.Ordinal)) continue;
            if (!fuzzyOriginal.Contains(Normalize(edits[i].Old), StringComparison.Ordinal))
                return Error($"could not find edits[{i}].old_text in {path}, it must match the file's current content exactly");
            anyFuzzy = true;
        }
        string baseContent = anyFuzzy ? fuzzyOriginal : original;
        var matches = new List<Match>();
        for (int i = 0; i < edits.Count; i++)
        {
            string needle = anyFuzzy ? Normalize(edits[i].Old) : edits[i].Old;
            // uniqueness is judged on the normalized text, so a whitespace-only duplicate still counts
            int occurrences = Count(fuzzyOriginal, Normalize(edits[i].Old));
            if (occurrences > 1) return Error($"found {occurrences} occurrences of edits[{i}].old_text in {path}, it must be unique");
            matches.Add(new Match(i, baseContent.IndexOf(needle, StringComparison.Ordinal), needle.Length, edits[i].New));
        }
        matches.Sort((a, b) => a.Index.CompareTo(b.Index));
        for (int i = 1; i < matches.Count; i++)
            if (matches[i - 1].Index + matches[i - 1].Length > matches[i].Index)
                return Error($"edits[{matches[i - 1].EditIndex}] and edits[{matches[i].EditIndex}] overlap in {path}; merge them into one edit or target disjoint regions");

        string updated = anyFuzzy ? ApplyPreservingLines(original, baseContent, matches) : Apply(baseContent, matches, 0);
        if (updated == original) return Error("no changes made: the replacement(s) produced identical content");
        try
        {
            await File.WriteAllTextAsync(full, updated, new UTF8Encoding(false), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Error("failed to write file: " + path);
        }
        return new JsonObject { ["result"] = "file edited successfully", ["path"] = path, ["edits_applied"] = matches.Count };
    }

    private static int Count(string content, string needle)
    {
        if (needle.Length == 0) return 0;
        int count = 0, pos = 0;
        while ((pos = content.IndexOf(needle, pos, StringComparison.Ordinal)) >= 0)
        {
            count++;
            pos += needle.Length;
        }
        return count;
    }

    private static string Apply(string content, List<Match> matches, int offset)
    {
        var sb = new StringBuilder(content.Length);
        int at = 0;
        foreach (var m in matches)
        {
            int local = m.Index - offset;
            sb.Append(content, at, local - at).Append(m.NewText);
            at = local + m.Length;
        }
        return sb.Append(content, at, content.Length - at).ToString();
    }

    /// <summary>Applies matches found in the normalized text, but copies every line no edit touches from the
    /// original, so normalization never leaks into the rest of the file.</summary>
    private static string ApplyPreservingLines(string original, string normalized, List<Match> matches)
    {
        var originalLines = SplitKeepingEndings(original);
        var spans = new List<(int Start, int End)>();
        int offset = 0;
        foreach (var line in SplitKeepingEndings(normalized))
        {
            spans.Add((offset, offset + line.Length));
            offset += line.Length;
        }
        var groups = new List<(int StartLine, int EndLine, List<Match> Reps)>();
        foreach (var m in matches)
        {
            int startLine = spans.FindIndex(s => m.Index >= s.Start && m.Index < s.End);
            if (startLine < 0) startLine = Math.Max(0, spans.Count - 1);
            int endLine = startLine;
            while (endLine < spans.Count - 1 && spans[endLine].End < m.Index + m.Length) endLine++;
            endLine++;
            if (groups.Count > 0 && startLine < groups[^1].EndLine)
            {
                var g = groups[^1];
                g.Reps.Add(m);
                groups[^1] = (g.StartLine, Math.Max(g.EndLine, endLine), g.Reps);
            }
            else groups.Add((startLine, endLine, [m]));
        }
        var sb = new StringBuilder(original.Length);
        int next = 0;
        foreach (var (startLine, endLine, reps) in groups)
        {
            for (int i = next; i < startLine; i++) sb.Append(originalLines[i]);
            int from = spans[startLine].Start, to = spans[endLine - 1].End;
            sb.Append(Apply(normalized[from..to], reps, from));
            next = endLine;
        }
        for (int i = next; i < originalLines.Count; i++) sb.Append(originalLines[i]);
        return sb.ToString();
    }

    private static List<string> SplitKeepingEndings(string content)
    {
        var lines = new List<string>();
        int start = 0;
        while (start < content.Length)
        {
            int nl = content.IndexOf('\n', start);
            if (nl < 0) { lines.Add(content[start..]); break; }
            lines.Add(content[start..(nl + 1)]);
            start = nl + 1;
        }
        return lines;
    }

    /// <summary>Per line: trailing spaces, tabs and '\r' dropped; smart quotes, dashes, the minus sign and special
    /// spaces made ASCII. Line count and positions are kept.</summary>
    internal static string Normalize(string content)
    {
        var sb = new StringBuilder(content.Length);
        int start = 0;
        while (true)
        {
            int nl = content.IndexOf('\n', start);
            var line = nl < 0 ? content.AsSpan(start) : content.AsSpan(start, nl - start);
            line = line.TrimEnd(" \t\r");
            foreach (char c in line) sb.Append(Ascii(c));
            if (nl < 0) break;
            sb.Append('\n');
            start = nl + 1;
        }
        return sb.ToString();
    }

    private static char Ascii(char c) => c switch
    {
        >= '\u2018' and <= '\u201B' => '\'',
        >= '\u201C' and <= '\u201F' => '"',
        >= '\u2010' and <= '\u2015' or '\u2212' => '-',
        '\u00A0' or (>= '\u2002' and <= '\u200A') or '\u202F' or '\u205F' or '\u3000' => ' ',
        _ => c,
    };
}
