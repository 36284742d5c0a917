using System.Net;
using System.Text.Json.Nodes;
using SharpInfer.Server;
using SharpInfer.Server.Tools;
using static SharpInfer.Tests.Server.Tools.ToolsHttp;

namespace SharpInfer.Tests.Server.Tools;

/// <summary>llama-server's built-in tools on /tools (serve --tools): off by default (403), listed in llama-server's
/// shape, and each tool's behaviour on files in a temporary directory, with the cwd header, limits and errors.</summary>
public class BuiltinToolsTests
{
    private static Task<ServerHarness> Start(params string[] tools) =>
        ServerHarness.StartAsync(configure: o => o with { Tools = tools });

    [Fact]
    public async Task ToolsAndCorsProxyAreOffByDefault()
    {
        await using var s = await ServerHarness.StartAsync();
        using var list = await s.Http.GetAsync("tools", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, list.StatusCode);
        var body = JsonNode.Parse(await list.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        Assert.Equal("feature_disabled", body["error"]!["type"]!.GetValue<string>());
        var (status, _) = await CallAsync(s, "exec_shell_command", Params("""{"command": "echo hi"}"""));
        Assert.Equal(HttpStatusCode.Forbidden, status);
        using var proxy = await s.Http.GetAsync("cors-proxy?url=http://127.0.0.1:1/", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, proxy.StatusCode);
        Assert.Empty(s.Options.EffectiveCorsOrigins);
    }

    [Fact]
    public async Task ListShowsTheEnabledToolsInLlamaServersShape()
    {
        await using (var all = await Start("all"))
        {
            var tools = await ListAsync(all);
            Assert.Equal(["read_file", "file_glob_search", "grep_search", "exec_shell_command", "write_file", "edit_file", "get_datetime", "get_info"],
                         tools.Select(t => t!["tool"]!.GetValue<string>()));
            var exec = tools.Single(t => t!["tool"]!.GetValue<string>() == "exec_shell_command")!;
            Assert.Equal("builtin", exec["type"]!.GetValue<string>());
            Assert.True(exec["permissions"]!["write"]!.GetValue<bool>());
            Assert.Equal("function", exec["definition"]!["type"]!.GetValue<string>());
            Assert.Equal("exec_shell_command", exec["definition"]!["function"]!["name"]!.GetValue<string>());
            Assert.Equal("object", exec["definition"]!["function"]!["parameters"]!["type"]!.GetValue<string>());
            Assert.False(tools.Single(t => t!["tool"]!.GetValue<string>() == "read_file")!["permissions"]!["write"]!.GetValue<bool>());
        }
        await using var some = await Start("read_file", "get_datetime");
        Assert.Equal(["read_file", "get_datetime"], (await ListAsync(some)).Select(t => t!["tool"]!.GetValue<string>()));
        var (status, body) = await CallAsync(some, "exec_shell_command", Params("""{"command": "echo hi"}"""));
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("unknown tool", body["error"]!["message"]!.GetValue<string>());
    }

    [Fact]
    public void UnknownToolNameStopsTheStart()
    {
        var options = ServerHarness.DefaultOptions(ServerModels.Stories) with { Tools = ["read_file", "rm_rf"] };
        var e = Assert.Throws<InvalidRequestException>(() => ServerApp.Build(options));
        Assert.Contains("unknown tool \"rm_rf\"", e.Message);
        Assert.Contains("exec_shell_command", e.Message);
    }

    [Fact]
    public void ToolsNarrowTheDefaultCorsToLocalhost()
    {
        var o = ServerHarness.DefaultOptions(ServerModels.Stories);
        Assert.Equal(["localhost"], (o with { Tools = ["all"] }).EffectiveCorsOrigins);
        Assert.Equal(["localhost"], (o with { McpServersJson = "{}" }).EffectiveCorsOrigins);
        Assert.Equal(["https://ui.example"], (o with { Tools = ["all"], CorsOrigins = ["https://ui.example"] }).EffectiveCorsOrigins);
    }

    [Fact]
    public async Task ApiKeyProtectsTools()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { Tools = ["get_datetime"], ApiKey = "secret" });
        Assert.Equal(HttpStatusCode.Unauthorized, (await CallAsync(s, "get_datetime", [])).Status);
        Assert.Equal(HttpStatusCode.OK, (await CallAsync(s, "get_datetime", [], apiKey: "secret")).Status);
        using var list = await s.Http.GetAsync("tools", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, list.StatusCode);
    }

    [Fact]
    public async Task BadRequestsAreClientErrors()
    {
        await using var s = await Start("all");
        Assert.Equal(HttpStatusCode.BadRequest, (await CallAsync(s, "read_file", [])).Status);               // path missing
        Assert.Equal(HttpStatusCode.BadRequest, (await CallAsync(s, "read_file", Params("""{"path": 3}"""))).Status);
        using var noTool = await s.Http.PostAsync("tools", ServerHarness.JsonContent(new JsonObject { ["params"] = new JsonObject() }), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, noTool.StatusCode);
        using var notJson = await s.Http.PostAsync("tools", new StringContent("{nope"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
        var (status, _) = await CallAsync(s, "read_file", Params("""{"path": "x"}"""));
        Assert.Equal(HttpStatusCode.OK, status); // a missing file is the tool's own error, not the request's
    }

    [Fact]
    public async Task ReadFileReadsRangesWithLineNumbersAndRefusesLargeFiles()
    {
        using var dir = new TempDir();
        var path = dir.Write("a.txt", "one\ntwo\nthree");
        await using var s = await Start("read_file");
        Assert.Equal("one\ntwo\nthree\n", Text(await OkAsync(s, "read_file", new JsonObject { ["path"] = path })));
        Assert.Equal("2\u2192two\n3\u2192three\n", Text(await OkAsync(s, "read_file", new JsonObject { ["path"] = path, ["start_line"] = 2, ["append_loc"] = true })));
        Assert.Equal("two\n", Text(await OkAsync(s, "read_file", new JsonObject { ["path"] = path, ["start_line"] = 2, ["end_line"] = 2 })));
        Assert.StartsWith("cannot stat file", await ToolErrorAsync(s, "read_file", new JsonObject { ["path"] = Path.Combine(dir.Path, "missing") }));

        var big = dir.Write("big.txt", string.Concat(Enumerable.Range(0, 4000).Select(i => $"line {i}\n")));
        Assert.Contains("file too large", await ToolErrorAsync(s, "read_file", new JsonObject { ["path"] = big }));
        Assert.Equal("line 3999\n", Text(await OkAsync(s, "read_file", new JsonObject { ["path"] = big, ["start_line"] = 4000, ["end_line"] = 4000 })));
        var capped = Text(await OkAsync(s, "read_file", new JsonObject { ["path"] = big, ["end_line"] = 4000 }));
        Assert.EndsWith("[output truncated]", capped);
        Assert.True(capped.Length <= ReadFileTool.MaxSize + 20);
    }

    [Fact]
    public async Task RelativePathsResolveAgainstTheCwdHeaderWhichOverridesTheModelsCwd()
    {
        using var dir = new TempDir();
        dir.Write("rel.txt", "relative");
        await using var s = await Start("all");
        var read = await OkAsync(s, "read_file", new JsonObject { ["path"] = "rel.txt", ["cwd"] = "/definitely/not/here" }, cwd: dir.Path);
        Assert.Equal("relative\n", Text(read));
        var write = await OkAsync(s, "write_file", new JsonObject { ["path"] = "sub/out.txt", ["content"] = "written" }, cwd: dir.Path);
        Assert.Equal("file written successfully", write["result"]!.GetValue<string>());
        Assert.Equal(7, write["bytes"]!.GetValue<int>());
        Assert.Equal("written", File.ReadAllText(Path.Combine(dir.Path, "sub", "out.txt")));
        // the model's own cwd argument applies when no header is sent
        Assert.Equal("relative\n", Text(await OkAsync(s, "read_file", new JsonObject { ["path"] = "rel.txt", ["cwd"] = dir.Path })));
        var shell = await OkAsync(s, "exec_shell_command", new JsonObject { ["command"] = "pwd" }, cwd: dir.Path);
        Assert.StartsWith(new DirectoryInfo(dir.Path).FullName, Text(shell));
    }

    [Fact]
    public async Task EditFileAppliesDisjointUniqueEditsAgainstTheOriginal()
    {
        using var dir = new TempDir();
        var path = dir.Write("e.txt", "line1\nline2\nline3\n");
        await using var s = await Start("edit_file");
        var res = await OkAsync(s, "edit_file", Params($$"""{"path": {{JsonValue.Create(path).ToJsonString()}}, "edits": [{"old_text": "line2", "new_text": "line2-edited"}, {"old_text": "line3\n", "new_text": "line3\nline4\n"}]}"""));
        Assert.Equal(2, res["edits_applied"]!.GetValue<int>());
        Assert.Equal("line1\nline2-edited\nline3\nline4\n", File.ReadAllText(path));

        File.WriteAllText(path, "dup\ndup\n");
        Assert.Contains("unique", await ToolErrorAsync(s, "edit_file", Params($$"""{"path": {{JsonValue.Create(path).ToJsonString()}}, "edits": [{"old_text": "dup", "new_text": "x"}]}""")));
        File.WriteAllText(path, "line1\nline2\n");
        Assert.Contains("overlap", await ToolErrorAsync(s, "edit_file", Params($$"""{"path": {{JsonValue.Create(path).ToJsonString()}}, "edits": [{"old_text": "line1\nline2", "new_text": "a"}, {"old_text": "line2", "new_text": "b"}]}""")));
        Assert.Contains("could not find", await ToolErrorAsync(s, "edit_file", Params($$"""{"path": {{JsonValue.Create(path).ToJsonString()}}, "edits": [{"old_text": "absent", "new_text": "b"}]}""")));
        Assert.Contains("no changes", await ToolErrorAsync(s, "edit_file", Params($$"""{"path": {{JsonValue.Create(path).ToJsonString()}}, "edits": [{"old_text": "line1", "new_text": "line1"}]}""")));
        Assert.Equal("line1\nline2\n", File.ReadAllText(path)); // refused edits leave the file alone
    }

    [Fact]
    public async Task EditFileMatchesSmartQuotesAndTrailingSpacesButKeepsOtherLinesByteForByte()
    {
        using var dir = new TempDir();
        // the file has a curly quote and trailing spaces; the model types straight quotes and no trailing space
        var path = dir.Write("q.txt", "keep  \t\nsay \u201Chi\u201D   \nkeep\u2014too  \n");
        await using var s = await Start("edit_file");
        await OkAsync(s, "edit_file", Params($$"""{"path": {{JsonValue.Create(path).ToJsonString()}}, "edits": [{"old_text": "say \"hi\"", "new_text": "say bye"}]}"""));
        Assert.Equal("keep  \t\nsay bye\nkeep\u2014too  \n", File.ReadAllText(path));
    }

    [Fact]
    public async Task FileGlobSearchListsFilesAndDirectoriesWithDepthLimitAndJunkDirectories()
    {
        using var dir = new TempDir();
        dir.Write("top.txt", "t");
        dir.Write("a/mid.txt", "m");
        dir.Write("a/b/deep.txt", "d");
        dir.Write("build/artifact.txt", "x");
        dir.Write("src/main.cpp", "int main() {}");
        await using var s = await Start("file_glob_search");
        var all = await OkAsync(s, "file_glob_search", new JsonObject { ["path"] = dir.Path, ["type"] = "all" });
        var paths = all["entries"]!.AsArray().Select(e => e!["path"]!.GetValue<string>()).ToHashSet();
        Assert.Superset(new HashSet<string> { "top.txt", "a", "a/mid.txt", "a/b", "a/b/deep.txt", "build", "src", "src/main.cpp" }, paths);
        Assert.DoesNotContain("build/artifact.txt", paths); // a junk directory is listed, never walked
        Assert.Equal("dir", all["entries"]!.AsArray().Single(e => e!["path"]!.GetValue<string>() == "a/b")!["type"]!.GetValue<string>());
        Assert.Contains("a/b/\n", Text(all));
        Assert.Equal(new DirectoryInfo(dir.Path).FullName, all["base"]!.GetValue<string>());

        var depth1 = Text(await OkAsync(s, "file_glob_search", new JsonObject { ["path"] = dir.Path, ["max_depth"] = 1 }));
        Assert.Contains("top.txt", depth1);
        Assert.DoesNotContain("mid.txt", depth1);
        var depth2 = Text(await OkAsync(s, "file_glob_search", new JsonObject { ["path"] = dir.Path, ["max_depth"] = 2 }));
        Assert.Contains("a/mid.txt", depth2);
        Assert.DoesNotContain("deep.txt", depth2);

        var cpp = await OkAsync(s, "file_glob_search", new JsonObject { ["path"] = dir.Path, ["include"] = "*.cpp" });
        Assert.Equal(["src/main.cpp"], cpp["entries"]!.AsArray().Select(e => e!["path"]!.GetValue<string>()));
        var limited = await OkAsync(s, "file_glob_search", new JsonObject { ["path"] = dir.Path, ["limit"] = 1 });
        Assert.Single(limited["entries"]!.AsArray());
        Assert.Contains("Total matches: 4", Text(limited)); // top, mid, deep, main.cpp (not build/)

        Assert.Contains("invalid type", await ToolErrorAsync(s, "file_glob_search", new JsonObject { ["path"] = dir.Path, ["type"] = "bogus" }));
        Assert.Contains("invalid limit", await ToolErrorAsync(s, "file_glob_search", new JsonObject { ["path"] = dir.Path, ["limit"] = 0 }));
        Assert.Contains("not a directory", await ToolErrorAsync(s, "file_glob_search", new JsonObject { ["path"] = Path.Combine(dir.Path, "top.txt") }));
    }

    [Fact]
    public async Task GrepSearchFindsLinesWithNumbersContextAndFilters()
    {
        using var dir = new TempDir();
        dir.Write("a.cs", "alpha\nneedle one\ngamma\n");
        dir.Write("sub/b.txt", "needle two\n");
        dir.Write("sub/c.md", "a.b needle\n");
        await using var s = await Start("grep_search");
        var plain = Text(await OkAsync(s, "grep_search", new JsonObject { ["path"] = dir.Path, ["pattern"] = "needle" }));
        Assert.Contains("a.cs:needle one\n", plain);
        Assert.Contains("sub/b.txt:needle two\n", plain);
        Assert.Contains("Total matches: 3", plain);

        var numbered = Text(await OkAsync(s, "grep_search", new JsonObject { ["path"] = dir.Path, ["pattern"] = "needle o", ["include"] = "*.cs", ["context_lines"] = 1 }));
        Assert.Contains("a.cs-1-alpha\na.cs:2:needle one\na.cs-3-gamma\n--\n", numbered);
        Assert.Contains("Total matches: 1", numbered);

        var literal = Text(await OkAsync(s, "grep_search", new JsonObject { ["path"] = dir.Path, ["pattern"] = "a.b", ["literal"] = true }));
        Assert.Contains("Total matches: 1", literal);
        var ignoreCase = Text(await OkAsync(s, "grep_search", new JsonObject { ["path"] = dir.Path, ["pattern"] = "NEEDLE TWO", ["ignore_case"] = true, ["exclude"] = "*.cs" }));
        Assert.Contains("Total matches: 1", ignoreCase);
        var single = Text(await OkAsync(s, "grep_search", new JsonObject { ["path"] = Path.Combine(dir.Path, "a.cs"), ["pattern"] = "^g", ["return_line_numbers"] = true }));
        Assert.Contains(":3:gamma", single);
        Assert.Contains("invalid regex", await ToolErrorAsync(s, "grep_search", new JsonObject { ["path"] = dir.Path, ["pattern"] = "(" }));
        Assert.Contains("does not exist", await ToolErrorAsync(s, "grep_search", new JsonObject { ["path"] = Path.Combine(dir.Path, "nope"), ["pattern"] = "x" }));
    }

    [Fact]
    public async Task ExecShellCommandReportsOutputStderrExitCodeAndTimeout()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "POSIX shell commands");
        await using var s = await Start("exec_shell_command");
        Assert.Equal("out\nerr\n\n[exit code: 3]", Text(await OkAsync(s, "exec_shell_command", new JsonObject { ["command"] = "echo out; echo err >&2; exit 3" })));
        var slow = Text(await OkAsync(s, "exec_shell_command", new JsonObject { ["command"] = "echo started; sleep 60", ["timeout"] = 3 }));
        Assert.StartsWith("started\n", slow);
        Assert.EndsWith("[exit due to timed out]", slow);
        var capped = Text(await OkAsync(s, "exec_shell_command", new JsonObject { ["command"] = "head -c 100000 /dev/zero | tr '\\0' x", ["max_output_size"] = 1000 }));
        Assert.StartsWith(new string('x', 1000) + "\n[output truncated]", capped);
        Assert.Contains("[exit code: 0]", capped);
    }

    [Fact]
    public async Task ExecShellCommandStreamsChunksThenDone()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "POSIX shell commands");
        await using var s = await Start("all");
        using var res = await s.PostStreamAsync("tools", new JsonObject
        {
            ["tool"] = "exec_shell_command",
            ["params"] = new JsonObject { ["command"] = "echo hello; echo world" },
            ["stream"] = true,
        }, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal("text/event-stream", res.Content.Headers.ContentType?.MediaType);
        var (events, _) = await ServerHarness.ReadAllSseAsync(res, TestContext.Current.CancellationToken);
        Assert.True(events.Count >= 2);
        Assert.True(events[^1]["done"]!.GetValue<bool>());
        Assert.Null(events[^1]["error"]);
        Assert.Equal("hello\nworld\n\n[exit code: 0]", string.Concat(events.SkipLast(1).Select(e => e["chunk"]!.GetValue<string>())));

        // a tool without streaming refuses stream = true, as llama-server does
        using var refused = await s.PostStreamAsync("tools", new JsonObject { ["tool"] = "read_file", ["params"] = new JsonObject { ["path"] = "x" }, ["stream"] = true },
                                                    TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
    }

    [Fact]
    public async Task DatetimeAndInfo()
    {
        await using var s = await Start("get_datetime", "get_info");
        var iso = (await OkAsync(s, "get_datetime", []))["result"]!.GetValue<string>();
        Assert.InRange((DateTime.UtcNow - DateTime.Parse(iso, null, System.Globalization.DateTimeStyles.AdjustToUniversal)).Duration(), TimeSpan.Zero, TimeSpan.FromMinutes(10));
        Assert.Contains("invalid format", await ToolErrorAsync(s, "get_datetime", new JsonObject { ["format"] = "%Q" }));
        var info = await OkAsync(s, "get_info", []);
        Assert.Equal(Directory.GetCurrentDirectory(), info["cwd"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(info["os"]!.GetValue<string>()));
    }

    [Theory]
    [InlineData("*.cpp", "main.cpp", true)]
    [InlineData("*.cpp", "src/main.cpp", false)]
    [InlineData("**/*.cpp", "src/a/main.cpp", true)]
    [InlineData("src/*.cpp", "src/main.cpp", true)]
    [InlineData("src/*.cpp", "src/a/main.cpp", false)]
    [InlineData("ma?n.[ch]pp", "main.cpp", true)]
    [InlineData("ma?n.[!c]pp", "main.cpp", false)]
    [InlineData("[a-c]*", "beta", true)]
    [InlineData("[a-c]*", "delta", false)]
    [InlineData("?", "/", false)]
    public void GlobMatchesLikeLlamaCpp(string pattern, string text, bool expected) =>
        Assert.Equal(expected, ToolPaths.GlobMatch(pattern, text));

    [Theory]
    [InlineData("*.cpp", "src/a/main.cpp", true)]      // no '/': the basename at any depth
    [InlineData("a/*.cpp", "src/a/main.cpp", true)]    // with '/': anchored with **/
    [InlineData("/src/*.cpp", "src/main.cpp", false)]  // a leading '/' is literal, as in llama-server
    public void PathGlobMatchAnchorsLikeLlamaServer(string pattern, string rel, bool expected) =>
        Assert.Equal(expected, ToolPaths.PathGlobMatch(pattern, rel));

    [Fact]
    public void StrftimeFormatsTheCommonConversions()
    {
        var t = new DateTime(2026, 3, 7, 14, 5, 9, DateTimeKind.Utc);
        Assert.Equal("2026-03-07T14:05:09Z", GetDatetimeTool.Strftime("%Y-%m-%dT%H:%M:%SZ", t));
        Assert.Equal("Saturday, March 07 2026 02 PM 066 %", GetDatetimeTool.Strftime("%A, %B %d %Y %I %p %j %%", t));
        Assert.Null(GetDatetimeTool.Strftime("%Q", t));
    }
}
