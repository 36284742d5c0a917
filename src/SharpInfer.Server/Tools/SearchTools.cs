using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace SharpInfer.Server.Tools;

/// <summary><c>file_glob_search</c>: entries under a directory matching a glob, as text for the model and as
/// <c>entries</c>/<c>base</c> for a UI picker.</summary>
internal sealed class FileGlobSearchTool : ServerTool
{
    public const int MaxResults = 100;
    public override string Name => "file_glob_search";
    public override string DisplayName => "File search";

    public override JsonObject Definition() => Function(Name,
        "Recursively search for files matching a glob pattern under a directory. Automatically skips files ignored by .gitignore (when the directory is inside a git repo) " +
        "and common junk directories (.git, node_modules, build, dist, etc.) otherwise. A pattern with no '/' (e.g. \"*.cpp\") matches the file's basename at any depth. " +
        "A pattern containing '/' matches the full relative path; unless already anchored with \"**/\" or a leading '/', it is automatically prefixed with \"**/\". " +
        "Use type=\"dir\" or \"all\" to also list directories; directory entries are suffixed with '/' in the output. Note: directory listings do not apply .gitignore filtering.",
        new JsonObject
        {
            ["path"] = Prop("string", "Base directory to search in"),
            ["include"] = Prop("string", "Glob pattern for files to include (e.g. \"*.cpp\" or \"src/**/*.cpp\"). Default: **"),
            ["exclude"] = Prop("string", "Glob pattern for files to exclude"),
            ["type"] = Prop("string", "Entry type to return: \"file\" (default), \"dir\" or \"all\""),
            ["max_depth"] = Prop("integer", "Maximum depth to descend into subdirectories (default: 0 = unlimited; 1 = direct children only)"),
            ["limit"] = Prop("integer", $"Maximum number of results to return, capped at {MaxResults} (default {MaxResults})"),
        }, "path");

    public override async Task<JsonObject> InvokeAsync(ToolCall call, Func<string, Task>? stream, CancellationToken ct)
    {
        string path = call.RequireString("path");
        string baseDir = call.Resolve(path);
        string include = call.String("include", "**"), exclude = call.String("exclude", ""), type = call.String("type", "file");
        int maxDepth = Math.Max(0, call.Int("max_depth", 0));
        int limitRequested = call.Int("limit", MaxResults);
        if (limitRequested < 1) return Error($"invalid limit: {limitRequested} (expected 1 or more)");
        int limit = Math.Min(limitRequested, MaxResults);
        ListKind kind;
        switch (type)
        {
            case "file": kind = ListKind.Files; break;
            case "dir": kind = ListKind.Dirs; break;
            case "all": kind = ListKind.All; break;
            default: return Error($"invalid type: {type} (expected \"file\", \"dir\" or \"all\")");
        }
        var listing = await ToolPaths.ListAsync(baseDir, maxDepth, kind, ct).ConfigureAwait(false);
        if (listing.Error != null) return Error(listing.Error + ": " + path);
        var matches = listing.Entries.Where(e => ToolPaths.PathGlobMatch(include, e.Rel) && (exclude.Length == 0 || !ToolPaths.PathGlobMatch(exclude, e.Rel))).ToList();
        int shown = Math.Min(matches.Count, limit);
        var text = new StringBuilder();
        var entries = new JsonArray();
        foreach (var (rel, isDir) in matches.Take(shown))
        {
            text.Append(rel).Append(isDir ? "/" : "").Append('\n');
            entries.Add((JsonNode)new JsonObject { ["path"] = rel, ["type"] = isDir ? "dir" : "file" });
        }
        text.Append("\n---\nTotal matches: ").Append(matches.Count).Append('\n');
        if (matches.Count > shown)
            text.Append($"[{shown} results limit reached ({matches.Count} total matches). Refine the glob pattern to narrow the search.]\n");
        if (listing.Truncated) text.Append("[results truncated: time budget or unreadable directory]\n");
        return new JsonObject { ["plain_text_response"] = text.ToString(), ["entries"] = entries, ["base"] = baseDir.Replace('\\', '/') };
    }
}

/// <summary><c>grep_search</c>: lines matching a regular expression (or a literal) in a file or under a directory,
/// <c>path:line</c> per match, at most 100 matches.</summary>
internal sealed class GrepSearchTool : ServerTool
{
    public const int MaxResults = 100;
    /// <summary>Larger files are skipped (each searched file is read whole).</summary>
    public const long MaxFileSize = 8 << 20;
    private static readonly TimeSpan RegexTimeout = TimeSpan.FromSeconds(2);
    public override string Name => "grep_search";
    public override string DisplayName => "Grep search";

    public override JsonObject Definition() => Function(Name,
        "Search for a pattern in files under a path. Returns matching lines with file paths (and, unless searching a single file, paths relative to the given directory). " +
        "Automatically skips files ignored by .gitignore (when the directory is inside a git repo) and common junk directories (.git, node_modules, build, dist, etc.) otherwise. " +
        "include/exclude: a pattern with no '/' matches the basename at any depth; a pattern containing '/' matches the full relative path (auto-anchored with \"**/\" unless already anchored).",
        new JsonObject
        {
            ["path"] = Prop("string", "File or directory to search in"),
            ["pattern"] = Prop("string", "Pattern to search for (regular expression unless literal is true)"),
            ["include"] = Prop("string", "Glob pattern to filter files (default: **)"),
            ["exclude"] = Prop("string", "Glob pattern to exclude files"),
            ["return_line_numbers"] = Prop("boolean", "If true, include line numbers in results"),
            ["literal"] = Prop("boolean", "Treat pattern as a literal string instead of a regular expression (default: false)"),
            ["ignore_case"] = Prop("boolean", "Case-insensitive search (default: false)"),
            ["context_lines"] = Prop("integer", "Number of lines of context to show before and after each match (default: 0)"),
        }, "path", "pattern");

    public override async Task<JsonObject> InvokeAsync(ToolCall call, Func<string, Task>? stream, CancellationToken ct)
    {
        string path = call.RequireString("path"), pattern = call.RequireString("pattern");
        string include = call.String("include", "**"), exclude = call.String("exclude", "");
        bool showNumbers = call.Bool("return_line_numbers", false), literal = call.Bool("literal", false), ignoreCase = call.Bool("ignore_case", false);
        int context = Math.Max(0, call.Int("context_lines", 0));
        Regex regex;
        try
        {
            regex = new Regex(literal ? Regex.Escape(pattern) : pattern, ignoreCase ? RegexOptions.IgnoreCase | RegexOptions.CultureInvariant : RegexOptions.CultureInvariant, RegexTimeout);
        }
        catch (ArgumentException e)
        {
            return Error("invalid regex: " + e.Message);
        }
        var files = new List<(string Full, string Display)>();
        string abs = call.Resolve(path);
        if (File.Exists(abs)) files.Add((abs, path));
        else if (Directory.Exists(abs))
        {
            var listing = await ToolPaths.ListAsync(abs, 0, ListKind.Files, ct).ConfigureAwait(false);
            if (listing.Error != null) return Error(listing.Error + ": " + path);
            foreach (var (rel, _) in listing.Entries)
                if (ToolPaths.PathGlobMatch(include, rel) && (exclude.Length == 0 || !ToolPaths.PathGlobMatch(exclude, rel)))
                    files.Add((Path.Combine(abs, rel), rel));
        }
        else return Error("path does not exist: " + path);

        var text = new StringBuilder();
        int total = 0;
        bool limitReached = false, showNum = showNumbers || context > 0;
        try
        {
            foreach (var (full, display) in files)
            {
                if (limitReached) break;
                ct.ThrowIfCancellationRequested();
                string[] lines;
                try
                {
                    if (new FileInfo(full).Length > MaxFileSize) continue;
                    lines = SplitLines(await File.ReadAllTextAsync(full, ct).ConfigureAwait(false));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    continue;
                }
                for (int i = 0; i < lines.Length; i++)
                {
                    if (total >= MaxResults) { limitReached = true; break; }
                    if (!regex.IsMatch(lines[i])) continue;
                    int from = context > 0 ? Math.Max(0, i - context) : i, to = context > 0 ? Math.Min(lines.Length - 1, i + context) : i;
                    for (int j = from; j <= to; j++)
                    {
                        char sep = j == i ? ':' : '-';
                        text.Append(display).Append(sep);
                        if (showNum) text.Append(j + 1).Append(sep);
                        text.Append(lines[j]).Append('\n');
                    }
                    if (context > 0) text.Append("--\n");
                    total++;
                }
            }
        }
        catch (RegexMatchTimeoutException)
        {
            return Error("the pattern took too long to match; simplify it");
        }
        text.Append("\n---\nTotal matches: ").Append(total).Append('\n');
        if (limitReached) text.Append($"[{MaxResults} matches limit reached. Narrow the path/pattern/include to see more.]\n");
        return Text(text.ToString());
    }

    /// <summary>Lines as C++ getline yields them: a final '\n' ends the last line rather than starting an empty one.</summary>
    private static string[] SplitLines(string content)
    {
        if (content.Length == 0) return [];
        var lines = content.Split('\n');
        return content.EndsWith('\n') ? lines[..^1] : lines;
    }
}
