using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace SharpInfer.Server.Tools;

/// <summary>
/// The configured MCP servers, as llama-server runs them: at start each server is spawned once, asked for its tools
/// (at most <see cref="WarmupTimeout"/>) and shut down, which fills the tool list; a tool call then spawns the
/// server on first use and keeps it, respawning it when it has died (a server that fails to spawn is not retried for
/// <see cref="Cooldown"/>). <see cref="Shutdown"/> makes in-flight calls return at once, so a slow tool never
/// holds up the server's shutdown.
/// </summary>
internal sealed class McpManager : IAsyncDisposable
{
    public static readonly TimeSpan WarmupTimeout = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan Cooldown = TimeSpan.FromSeconds(5);

    private readonly IReadOnlyList<McpServerConfig> _configs;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, McpStdioClient> _clients = [];
    private readonly Dictionary<string, DateTime> _deadUntil = [];
    private readonly CancellationTokenSource _stopping = new();
    private Task<List<McpToolDef>>? _warmup;

    public McpManager(IReadOnlyList<McpServerConfig> configs, ILogger log)
    {
        _configs = configs;
        _log = log;
    }

    /// <summary>Reads <c>--mcp-servers-config</c> (a file) and <c>--mcp-servers-json</c>: a file that cannot be read or
    /// JSON that does not parse throws (the server refuses to start); duplicate names keep the first.</summary>
    public static List<McpServerConfig> LoadConfigs(string? configFile, string? json, Action<string> warn)
    {
        var configs = new List<McpServerConfig>();
        void Append(string text)
        {
            var parsed = McpServerConfig.Parse(text, warn);
            if (parsed.Count == 0) warn("MCP config: no servers found in JSON");
            foreach (var c in parsed)
            {
                if (configs.Any(x => x.Name == c.Name)) warn($"MCP config: duplicate server name '{c.Name}', skipping");
                else configs.Add(c);
            }
        }
        if (!string.IsNullOrEmpty(configFile))
        {
            string text;
            try
            {
                text = File.ReadAllText(configFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                throw new InvalidRequestException($"failed to open MCP config file: {configFile} ({e.Message})", "mcp_servers_config");
            }
            Append(text);
        }
        if (!string.IsNullOrEmpty(json)) Append(json);
        return configs;
    }

    public bool IsEmpty => _configs.Count == 0;

    /// <summary>Starts discovering every server's tools in the background (once); <see cref="ListToolsAsync"/> waits for it.</summary>
    public void StartWarmup()
    {
        lock (_gate) _warmup ??= Task.Run(WarmupAsync);
    }

    private async Task<List<McpToolDef>> WarmupAsync()
    {
        // the servers are discovered in parallel: a slow one costs its own timeout, not everyone's
        var perServer = await Task.WhenAll(_configs.Select(async cfg =>
        {
            await using var client = new McpStdioClient(cfg, _log);
            if (!client.Start())
            {
                _log.LogWarning("MCP warmup: failed to spawn '{Name}': {Diagnostics}", cfg.Name, client.Diagnostics);
                return new List<McpToolDef>();
            }
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            timeout.CancelAfter(WarmupTimeout);
            var tools = await client.ListToolsAsync(timeout.Token).ConfigureAwait(false);
            _log.LogInformation("MCP warmup: '{Name}' discovered {Count} tools", cfg.Name, tools.Count);
            return tools;
        })).ConfigureAwait(false);
        return perServer.SelectMany(t => t).ToList();
    }

    /// <summary>Every discovered tool (after the warm-up has finished).</summary>
    public Task<List<McpToolDef>> ListToolsAsync()
    {
        StartWarmup();
        return _warmup!;
    }

    /// <summary>Calls a server's tool, spawning or respawning the server as needed; a failure is an <c>{"error"}</c>.</summary>
    public async Task<JsonObject> CallToolAsync(string server, string tool, JsonObject arguments, CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _stopping.Token);
        // a server that exited since its last call (it crashed, or exits after each answer) is noticed either before
        // the request is written or by the failed write; the request never ran, so it goes once to a fresh process
        for (int attempt = 0; ; attempt++)
        {
            var client = GetOrCreate(server);
            if (client is null) return ServerTool.Error("MCP server unavailable: " + server);
            try
            {
                return await client.CallToolAsync(tool, arguments, linked.Token).ConfigureAwait(false);
            }
            catch (McpNotSentException) when (attempt == 0)
            {
                _log.LogWarning("MCP '{Name}' had exited; respawning it: {Diagnostics}", server, client.Diagnostics);
            }
            catch (McpNotSentException e)
            {
                return ServerTool.Error(e.Message);
            }
        }
    }

    private McpStdioClient? GetOrCreate(string name)
    {
        McpStdioClient? stale = null, failed = null, result = null;
        lock (_gate)
        {
            if (_stopping.IsCancellationRequested) return null;
            var now = DateTime.UtcNow;
            if (_deadUntil.TryGetValue(name, out var until))
            {
                if (now < until) return null;
                _deadUntil.Remove(name);
            }
            if (_clients.TryGetValue(name, out var existing))
            {
                if (existing.IsAlive) return existing;
                _log.LogWarning("MCP '{Name}' is no longer alive: {Diagnostics}", name, existing.Diagnostics);
                stale = existing;
                _clients.Remove(name);
            }
            if (_configs.FirstOrDefault(c => c.Name == name) is { } cfg)
            {
                var fresh = new McpStdioClient(cfg, _log);
                if (fresh.Start())
                {
                    _clients[name] = fresh;
                    result = fresh;
                }
                else
                {
                    _log.LogWarning("MCP '{Name}': failed to start: {Diagnostics}", name, fresh.Diagnostics);
                    failed = fresh;
                    _deadUntil[name] = now + Cooldown;
                }
            }
        }
        // a dead client's in-flight callers hold their own reference; closing only kills what is left of it
        stale?.DisposeAsync();
        failed?.DisposeAsync();
        return result;
    }

    /// <summary>Makes in-flight and later calls return at once (idempotent); the processes go in <see cref="DisposeAsync"/>.</summary>
    public void Shutdown()
    {
        try
        {
            _stopping.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        Shutdown();
        List<McpStdioClient> clients;
        lock (_gate)
        {
            clients = [.. _clients.Values];
            _clients.Clear();
        }
        foreach (var c in clients) await c.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>An MCP server's tool on /tools, named <c>&lt;server&gt;_&lt;tool&gt;</c>.</summary>
internal sealed class McpTool(McpToolDef def, McpManager manager) : ServerTool
{
    public override string Name { get; } = def.ServerName + "_" + def.Name;
    public override string Type => "mcp";

    public override JsonObject Definition() => new()
    {
        ["type"] = "function",
        ["function"] = new JsonObject
        {
            ["name"] = Name,
            ["description"] = def.Description,
            ["parameters"] = def.InputSchema?.DeepClone() ?? new JsonObject(),
        },
    };

    public override Task<JsonObject> InvokeAsync(ToolCall call, Func<string, Task>? stream, CancellationToken ct) =>
        manager.CallToolAsync(def.ServerName, def.Name, call.Params, ct);
}
