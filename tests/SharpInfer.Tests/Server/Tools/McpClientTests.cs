using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using SharpInfer.Server;
using SharpInfer.Server.Tools;
using static SharpInfer.Tests.Server.Tools.ToolsHttp;

namespace SharpInfer.Tests.Server.Tools;

/// <summary>The MCP client (--mcp-servers-json / --mcp-servers-config) against tests/McpEchoServer, a minimal MCP
/// server run as a child process: discovery at start, <c>server_tool</c> names, calls, notifications in the stream,
/// RPC errors, timeouts, concurrency, respawn after a crash, a bad command, oversized lines, configuration errors and
/// shutdown while a call is in flight.</summary>
public class McpClientTests
{
    /// <summary>The fixture's DLL, built beside this test project in the same configuration.</summary>
    private static string FixtureDll()
    {
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)); // .../SharpInfer.Tests/bin/Release/net10.0
        string tfm = testBin.Name, configuration = testBin.Parent!.Name;
        var testsDir = testBin.Parent!.Parent!.Parent!.Parent!.FullName;
        var dll = Path.Combine(testsDir, "McpEchoServer", "bin", configuration, tfm, "McpEchoServer.dll");
        Assert.True(File.Exists(dll), "the MCP fixture is not built: " + dll);
        return dll;
    }

    private static string DotNet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p ? p : "dotnet";

    private static JsonObject Server(int? timeoutMs = null, params string[] extraArgs)
    {
        var args = new JsonArray((JsonNode)FixtureDll());
        foreach (var a in extraArgs) args.Add((JsonNode)a);
        var o = new JsonObject { ["command"] = DotNet, ["args"] = args };
        if (timeoutMs is { } t) o["timeout_ms"] = t;
        return o;
    }

    private static string Config(params (string Name, JsonObject Server)[] servers)
    {
        var map = new JsonObject();
        foreach (var (name, server) in servers) map[name] = server;
        return new JsonObject { ["mcpServers"] = map }.ToJsonString();
    }

    private static Task<ServerHarness> Start(string config) => ServerHarness.StartAsync(configure: o => o with { McpServersJson = config });

    [Fact]
    public async Task ToolsAreDiscoveredAtStartAndCalledByServerPrefixedName()
    {
        await using var s = await Start(Config(("echo", Server()), ("echo2", Server())));
        var tools = await ListAsync(s);
        var names = tools.Select(t => t!["tool"]!.GetValue<string>()).ToList();
        Assert.Contains("echo_echo", names);
        Assert.Contains("echo_add", names);
        Assert.Contains("echo2_echo", names);
        Assert.DoesNotContain("read_file", names); // MCP alone enables no built-in
        var echo = tools.Single(t => t!["tool"]!.GetValue<string>() == "echo_echo")!;
        Assert.Equal("mcp", echo["type"]!.GetValue<string>());
        var function = echo["definition"]!["function"]!;
        Assert.Equal("echo_echo", function["name"]!.GetValue<string>());
        Assert.Equal("Echo back the input message", function["description"]!.GetValue<string>());
        Assert.Equal("string", function["parameters"]!["properties"]!["message"]!["type"]!.GetValue<string>());

        // the echo reply comes in the same write as a progress notification, which must be skipped
        Assert.Equal("echo: hello world", Text(await OkAsync(s, "echo_echo", new JsonObject { ["message"] = "hello world" })));
        Assert.Equal("8", Text(await OkAsync(s, "echo2_add", new JsonObject { ["a"] = 3, ["b"] = 5 })));
    }

    [Fact]
    public async Task RpcErrorsAreToolErrorsAndTheProcessIsKept()
    {
        await using var s = await Start(Config(("echo", Server())));
        Assert.Equal("transient error", await ToolErrorAsync(s, "echo_fail_once", []));
        Assert.Equal("ok", Text(await OkAsync(s, "echo_fail_once", [])));
        var (status, _) = await CallAsync(s, "echo_nope", []);
        Assert.Equal(HttpStatusCode.NotFound, status); // not advertised: unknown on /tools
    }

    [Fact]
    public async Task ConcurrentCallsShareOneProcessAndEachGetsItsOwnReply()
    {
        await using var s = await Start(Config(("echo", Server())));
        var calls = Enumerable.Range(0, 12).Select(i => OkAsync(s, "echo_echo", new JsonObject { ["message"] = $"m{i}" })).ToArray();
        var replies = await Task.WhenAll(calls);
        for (int i = 0; i < replies.Length; i++) Assert.Equal($"echo: m{i}", Text(replies[i]));
        var pids = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => OkAsync(s, "echo_pid", [])));
        Assert.Single(pids.Select(Text).Distinct());
    }

    [Fact]
    public async Task ASlowToolTimesOutAndItsLateReplyIsNotTakenForTheNextCalls()
    {
        // generous for a loaded machine: the first call also waits for the fixture's start
        await using var s = await Start(Config(("slow", Server(timeoutMs: 5000))));
        Assert.Equal("echo: warm", Text(await OkAsync(s, "slow_echo", new JsonObject { ["message"] = "warm" }))); // spawned and initialized
        Assert.Equal("request timed out", await ToolErrorAsync(s, "slow_sleep", new JsonObject { ["seconds"] = 6 }));
        // "slept 6" arrives while (or before) this call waits: only the reply with this call's id answers it
        Assert.Equal("slept 0.8", Text(await OkAsync(s, "slow_sleep", new JsonObject { ["seconds"] = 0.8 })));
        Assert.Equal("echo: after", Text(await OkAsync(s, "slow_echo", new JsonObject { ["message"] = "after" })));
    }

    [Fact]
    public async Task ACrashedServerIsRespawnedForTheNextCall()
    {
        await using var s = await Start(Config(("c", Server())));
        var pid = Text(await OkAsync(s, "c_pid", []));
        Assert.Equal("crashing", Text(await OkAsync(s, "c_crash", [])));
        try
        {
            using var old = Process.GetProcessById(int.Parse(pid));
            await old.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromMinutes(1), TestContext.Current.CancellationToken);
        }
        catch (ArgumentException)
        {
            // the crashed process is already gone (and reaped) before we looked it up
        }
        var respawned = Text(await OkAsync(s, "c_pid", []));
        Assert.NotEqual(pid, respawned);
        Assert.Equal("echo: back", Text(await OkAsync(s, "c_echo", new JsonObject { ["message"] = "back" })));
        // at once after a crash: a request written before the process is seen gone may be lost with it ("transport
        // closed": it may have run, so it is not repeated); one found undeliverable goes to a fresh process; the call
        // after either works
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal("crashing", Text(await OkAsync(s, "c_crash", [])));
            var (status, racing) = await CallAsync(s, "c_echo", new JsonObject { ["message"] = "racing" });
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.True(racing["plain_text_response"]?.GetValue<string>() == "echo: racing" || racing["error"]?.GetValue<string>() == "transport closed", racing.ToJsonString());
            Assert.Equal("echo: again", Text(await OkAsync(s, "c_echo", new JsonObject { ["message"] = "again" })));
        }
    }

    [Fact]
    public async Task ABadCommandNeitherCrashesTheServerNorHidesTheOthers()
    {
        var bad = new JsonObject { ["command"] = "this_executable_does_not_exist_12345", ["args"] = new JsonArray() };
        await using var s = await Start(Config(("bad", bad), ("good", Server())));
        using var health = await s.Http.GetAsync("health", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        var names = (await ListAsync(s)).Select(t => t!["tool"]!.GetValue<string>()).ToList();
        Assert.Contains("good_echo", names);
        Assert.DoesNotContain(names, n => n.StartsWith("bad_", StringComparison.Ordinal));
        var manager = s.App.Services.GetService(typeof(ToolRegistry)) is ToolRegistry r ? r.Mcp! : throw new InvalidOperationException();
        var result = await manager.CallToolAsync("bad", "x", [], TestContext.Current.CancellationToken);
        Assert.Equal("MCP server unavailable: bad", result["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task AnEmptyToolListAndAnOversizedLineAreHandled()
    {
        await using var s = await Start(Config(("empty", Server(null, "--no-tools")), ("e", Server(timeoutMs: 5000))));
        var names = (await ListAsync(s)).Select(t => t!["tool"]!.GetValue<string>()).ToList();
        Assert.DoesNotContain(names, n => n.StartsWith("empty_", StringComparison.Ordinal));
        Assert.Equal("echo: warm", Text(await OkAsync(s, "e_echo", new JsonObject { ["message"] = "warm" }))); // spawned and initialized
        // a 9 MiB line is over the client's bound: dropped, so the call times out, and the transport reads on
        Assert.Equal("request timed out", await ToolErrorAsync(s, "e_big", []));
        Assert.Equal("echo: still here", Text(await OkAsync(s, "e_echo", new JsonObject { ["message"] = "still here" })));
    }

    [Fact]
    public async Task ShutdownEndsAnInFlightCallAtOnce()
    {
        var config = McpServerConfig.Parse(Config(("slow", Server(timeoutMs: 120_000))));
        await using var manager = new McpManager(config, NullLogger.Instance);
        Assert.Equal("echo: up", (await manager.CallToolAsync("slow", "echo", new JsonObject { ["message"] = "up" }, TestContext.Current.CancellationToken))["plain_text_response"]!.GetValue<string>());
        var call = manager.CallToolAsync("slow", "sleep", new JsonObject { ["seconds"] = 100 }, TestContext.Current.CancellationToken);
        manager.Shutdown();
        var result = await call.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.NotNull(result["error"]);
        var after = await manager.CallToolAsync("slow", "echo", new JsonObject { ["message"] = "x" }, TestContext.Current.CancellationToken);
        Assert.Equal("MCP server unavailable: slow", after["error"]!.GetValue<string>());
    }

    [Fact]
    public void ConfigurationIsParsedLikeLlamaServers()
    {
        Assert.Throws<InvalidRequestException>(() => McpServerConfig.Parse("not valid json"));
        Assert.Empty(McpServerConfig.Parse("""{"servers": {}}"""));
        var warnings = new List<string>();
        var parsed = McpServerConfig.Parse("""
            {"mcpServers": {"a": {"command": "x", "args": ["1", "2"], "env": {"K": "V"}, "cwd": "/tmp", "timeout_ms": 500},
                            "nocommand": {"args": []}}}
            """, warnings.Add);
        var a = Assert.Single(parsed);
        Assert.Equal(("a", "x", 500, "/tmp"), (a.Name, a.Command, a.TimeoutMs, a.Cwd));
        Assert.Equal(["1", "2"], a.Args);
        Assert.Equal("V", a.Env["K"]);
        Assert.Contains(warnings, w => w.Contains("nocommand", StringComparison.Ordinal));
        Assert.Equal(McpServerConfig.DefaultTimeoutMs, McpServerConfig.Parse("""{"mcpServers": {"b": {"command": "y"}}}""")[0].TimeoutMs);
        Assert.Throws<InvalidRequestException>(() => McpServerConfig.Parse("""{"mcpServers": {"b": {"command": 3}}}"""));
    }

    [Fact]
    public void ConfigurationErrorsStopTheStart()
    {
        var o = ServerHarness.DefaultOptions(ServerModels.Stories);
        Assert.Throws<InvalidRequestException>(() => ServerApp.Build(o with { McpServersJson = "not valid json" }));
        var e = Assert.Throws<InvalidRequestException>(() => ServerApp.Build(o with { McpServersConfig = "/nonexistent/mcp.json" }));
        Assert.Contains("failed to open MCP config file", e.Message);
    }

    [Fact]
    public async Task AConfigFileAndInlineJsonCombineAndDuplicateNamesKeepTheFirst()
    {
        using var dir = new TempDir();
        var file = dir.Write("mcp.json", Config(("filed", Server())));
        var warnings = new List<string>();
        var configs = McpManager.LoadConfigs(file, Config(("filed", Server()), ("inline", Server())), warnings.Add);
        Assert.Equal(["filed", "inline"], configs.Select(c => c.Name));
        Assert.Contains(warnings, w => w.Contains("duplicate", StringComparison.Ordinal));
        await using var s = await ServerHarness.StartAsync(configure: o => o with { McpServersConfig = file });
        Assert.Contains("filed_echo", (await ListAsync(s)).Select(t => t!["tool"]!.GetValue<string>()));
    }
}
