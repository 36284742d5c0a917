using Microsoft.Extensions.Logging;

namespace SharpInfer.Server.Tools;

/// <summary>The tools <c>/tools</c> serves: the built-ins <c>--tools</c> enables (none by default) followed by the
/// configured MCP servers' tools once their warm-up has discovered them (an MCP tool whose
/// <c>&lt;server&gt;_&lt;tool&gt;</c> name is already taken is skipped).</summary>
internal sealed class ToolRegistry : IAsyncDisposable
{
    private readonly List<ServerTool> _builtins;
    private readonly ILogger _log;
    private Task<IReadOnlyList<ServerTool>>? _all;

    private ToolRegistry(List<ServerTool> builtins, McpManager? mcp, ILogger log)
    {
        _builtins = builtins;
        Mcp = mcp;
        _log = log;
    }

    public McpManager? Mcp { get; }

    /// <summary>True when neither built-ins nor MCP servers are configured: /tools answers 403.</summary>
    public bool Disabled => _builtins.Count == 0 && (Mcp is null || Mcp.IsEmpty);

    /// <summary>Every built-in tool, in llama-server's order.</summary>
    public static List<ServerTool> AllBuiltins() =>
    [
        new ReadFileTool(), new FileGlobSearchTool(), new GrepSearchTool(), new ExecShellCommandTool(),
        new WriteFileTool(), new EditFileTool(), new GetDatetimeTool(), new GetInfoTool(),
    ];

    public static string BuiltinNames => string.Join(", ", AllBuiltins().Select(t => t.Name));

    /// <summary>The registry for <c>--tools</c> (names, or <c>all</c>) and the MCP configuration; an unknown tool
    /// name throws (the server refuses to start). Starts the MCP warm-up.</summary>
    public static ToolRegistry Create(IReadOnlyList<string> enabled, IReadOnlyList<McpServerConfig> mcpServers, ILogger log)
    {
        var all = AllBuiltins();
        foreach (var name in enabled)
            if (name != "all" && all.All(t => t.Name != name))
                throw new InvalidRequestException($"unknown tool \"{name}\". available tools: {BuiltinNames}", "tools");
        var builtins = all.Where(t => enabled.Contains("all") || enabled.Contains(t.Name)).ToList();
        var mcp = mcpServers.Count > 0 ? new McpManager(mcpServers, log) : null;
        mcp?.StartWarmup();
        return new ToolRegistry(builtins, mcp, log);
    }

    /// <summary>The tools, waiting for the MCP warm-up the first time.</summary>
    public Task<IReadOnlyList<ServerTool>> ToolsAsync() => _all ??= BuildAsync();

    private async Task<IReadOnlyList<ServerTool>> BuildAsync()
    {
        var tools = new List<ServerTool>(_builtins);
        if (Mcp is null) return tools;
        var names = new HashSet<string>(tools.Select(t => t.Name));
        foreach (var def in await Mcp.ListToolsAsync().ConfigureAwait(false))
        {
            var tool = new McpTool(def, Mcp);
            if (!names.Add(tool.Name))
            {
                _log.LogWarning("MCP tool \"{Tool}\" from server \"{Server}\" collides with an existing tool, skipping", tool.Name, def.ServerName);
                continue;
            }
            tools.Add(tool);
        }
        return tools;
    }

    public ValueTask DisposeAsync() => Mcp?.DisposeAsync() ?? ValueTask.CompletedTask;
}
