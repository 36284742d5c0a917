namespace SharpInfer.Server.Tools;

internal enum ListKind { Files, Dirs, All }

/// <summary>Path resolution, glob matching and directory listing of the file tools, as llama-server's
/// (tools/server/server-tools.cpp): relative paths resolve against the call's cwd, <c>~</c> expands, entries are
/// '/'-separated and relative to the searched directory.</summary>
internal static class ToolPaths
{
    /// <summary>Directories listed but never walked: they can be enormous (llama-server's list).</summary>
    private static readonly HashSet<string> JunkDirs =
        [".git", ".svn", ".hg", "node_modules", "__pycache__", ".venv", "venv", "dist", "build", "target", ".cache", ".idea", ".vscode"];

    /// <summary>A listing's time budget, shared by git and the walker.</summary>
    public static readonly TimeSpan ListTimeout = TimeSpan.FromSeconds(15);
    private const int GitLsFilesMaxOutput = 8 << 20;

    /// <summary>Expands a leading <c>~</c>, resolves against <paramref name="cwd"/> (else the server's working
    /// directory) and drops <c>.</c>/<c>..</c> and a trailing separator; the result is absolute.</summary>
    public static string Resolve(string path, string? cwd)
    {
        if (path.StartsWith('~') && (path.Length == 1 || path[1] == '/'))
        {
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            if (home.Length > 0) path = home + path[1..];
        }
        var full = Path.IsPathRooted(path) ? path : Path.Combine(cwd ?? Directory.GetCurrentDirectory(), path);
        full = Path.GetFullPath(full);
        var trimmed = Path.TrimEndingDirectorySeparator(full);
        return trimmed.Length == 0 ? full : trimmed;
    }

    /// <summary>A pattern with no '/' matches the basename at any depth; one with '/' matches the whole relative path,
    /// anchored with <c>**/</c> unless it starts with <c>**</c> or '/'.</summary>
    public static bool PathGlobMatch(string pattern, string rel)
    {
        if (!pattern.Contains('/')) return GlobMatch(pattern, rel[(rel.LastIndexOf('/') + 1)..]);
        if (pattern == "**" || pattern.StartsWith("**/", StringComparison.Ordinal) || pattern.StartsWith('/')) return GlobMatch(pattern, rel);
        return GlobMatch("**/" + pattern, rel);
    }

    /// <summary>llama.cpp's glob: <c>*</c> matches within a path segment, <c>**</c> across segments, <c>?</c> one
    /// character but '/', <c>[a-z]</c> (<c>[!...]</c>/<c>[^...]</c> negated) one character of a class.</summary>
    public static bool GlobMatch(string pattern, string text) => Glob(pattern.AsSpan(), text.AsSpan(), 0);

    private static bool Glob(ReadOnlySpan<char> p, ReadOnlySpan<char> s, int depth)
    {
        // patterns come from requests: bound the backtracking recursion
        if (depth > 200) return false;
        while (true)
        {
            if (p.IsEmpty) return s.IsEmpty;
            if (p.Length >= 2 && p[0] == '*' && p[1] == '*')
            {
                var rest = p[2..];
                for (int i = 0; i <= s.Length; i++)
                    if (Glob(rest, s[i..], depth + 1)) return true;
                return false;
            }
            if (p[0] == '*')
            {
                var rest = p[1..];
                int i = 0;
                for (; i < s.Length && s[i] != '/'; i++)
                    if (Glob(rest, s[i..], depth + 1)) return true;
                return Glob(rest, s[i..], depth + 1);
            }
            if (p[0] == '?')
            {
                if (s.IsEmpty || s[0] == '/') return false;
                p = p[1..]; s = s[1..];
                continue;
            }
            if (p[0] == '[')
            {
                int end = 1;
                if (end < p.Length && (p[end] == ']' || p[end] == '-')) end++;
                while (end < p.Length && p[end] != ']') end++;
                if (end < p.Length)
                {
                    if (s.IsEmpty || !ClassMatch(s[0], p[1..end])) return false;
                    p = p[(end + 1)..]; s = s[1..];
                    continue;
                }
                if (s.IsEmpty || s[0] != '[') return false;
                p = p[1..]; s = s[1..];
                continue;
            }
            if (s.IsEmpty || p[0] != s[0]) return false;
            p = p[1..]; s = s[1..];
        }
    }

    private static bool ClassMatch(char c, ReadOnlySpan<char> cls)
    {
        bool negated = cls.Length > 0 && (cls[0] == '!' || cls[0] == '^');
        if (negated) cls = cls[1..];
        bool matched = false;
        for (int i = 0; i < cls.Length;)
        {
            if (i + 2 < cls.Length && cls[i + 1] == '-')
            {
                if (c >= cls[i] && c <= cls[i + 2]) { matched = true; break; }
                i += 3;
            }
            else
            {
                if (cls[i] == c) { matched = true; break; }
                i++;
            }
        }
        return negated ? !matched : matched;
    }

    public sealed record Listing(List<(string Rel, bool IsDir)> Entries, string? Error, bool Truncated);

    /// <summary>Entries under the absolute directory <paramref name="baseDir"/>. Files alone come from
    /// <c>git ls-files</c> when it is a git work tree (so .gitignore applies), else from a walk that lists junk
    /// directories without entering them and never follows links. <paramref name="maxDepth"/> 0 = unlimited, 1 =
    /// direct children only.</summary>
    public static async Task<Listing> ListAsync(string baseDir, int maxDepth, ListKind kind, CancellationToken ct)
    {
        if (!Directory.Exists(baseDir)) return new([], "path does not exist or is not a directory", false);
        var deadline = DateTime.UtcNow + ListTimeout;
        if (kind == ListKind.Files)
        {
            var git = await ProcessRunner.RunAsync("git", ["-C", baseDir, "ls-files", "--cached", "--others", "--exclude-standard"],
                                                   null, GitLsFilesMaxOutput, ListTimeout, null, ct).ConfigureAwait(false);
            if (git.ExitCode == 0 && !git.TimedOut && !git.Truncated)
            {
                var entries = new List<(string, bool)>();
                foreach (var raw in git.Output.Split('\n'))
                {
                    var line = raw.TrimEnd('\r').Replace('\\', '/');
                    if (line.Length == 0) continue;
                    if (maxDepth > 0 && Depth(line) > maxDepth) continue;
                    if (File.Exists(Path.Combine(baseDir, line))) entries.Add((line, false));
                }
                return new(entries, null, false);
            }
        }
        var result = new List<(string, bool)>();
        bool truncated = false;
        var stack = new Stack<(string Dir, string Rel, int Depth)>();
        stack.Push((baseDir, "", 0));
        var options = new EnumerationOptions { IgnoreInaccessible = true, RecurseSubdirectories = false, AttributesToSkip = 0 };
        while (stack.Count > 0)
        {
            if (DateTime.UtcNow >= deadline || ct.IsCancellationRequested) { truncated = true; break; }
            var (dir, rel, depth) = stack.Pop();
            IEnumerable<FileSystemInfo> children;
            try
            {
                children = new DirectoryInfo(dir).EnumerateFileSystemInfos("*", options).OrderBy(i => i.Name, StringComparer.Ordinal).ToList();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                truncated = true;
                continue;
            }
            foreach (var child in children)
            {
                string childRel = rel.Length == 0 ? child.Name : rel + "/" + child.Name;
                if (child is DirectoryInfo d)
                {
                    if (kind != ListKind.Files) result.Add((childRel, true));
                    if (JunkDirs.Contains(child.Name)) continue;
                    if (d.LinkTarget == null && (maxDepth == 0 || depth + 1 < maxDepth)) stack.Push((d.FullName, childRel, depth + 1));
                }
                else if (kind != ListKind.Dirs && child is FileInfo f && (f.Attributes & FileAttributes.Device) == 0)
                {
                    result.Add((childRel, false));
                }
            }
        }
        return new(result, null, truncated);
    }

    private static int Depth(string rel) => 1 + rel.Count(c => c == '/');
}
