using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpInfer.Server.Tools;

/// <summary>One MCP server of the <c>{"mcpServers": {NAME: {command, args, env, cwd, timeout_ms}}}</c> configuration
/// (Cursor's and Claude Desktop's format, as llama-server's <c>--mcp-servers-json</c>/<c>--mcp-servers-config</c>).</summary>
internal sealed record McpServerConfig(string Name, string Command, IReadOnlyList<string> Args, IReadOnlyDictionary<string, string> Env,
                                     string? Cwd, int TimeoutMs)
{
    public const int DefaultTimeoutMs = 30000;

    /// <summary>Parses one configuration document. Invalid JSON or a wrongly typed field throws (the server refuses to
    /// start); a document without <c>mcpServers</c> has no servers; an entry without a command is skipped.</summary>
    public static List<McpServerConfig> Parse(string json, Action<string>? warn = null)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException("failed to parse MCP config JSON: " + e.Message, "mcp_servers");
        }
        var result = new List<McpServerConfig>();
        if (root is not JsonObject o || o["mcpServers"] is not JsonObject servers) return result;
        foreach (var (name, node) in servers)
        {
            if (node is not JsonObject cfg) throw Bad(name, "must be an object");
            string command = Str(cfg, "command", name) ?? "";
            if (command.Length == 0)
            {
                warn?.Invoke($"MCP server '{name}' has no command, skipping");
                continue;
            }
            var args = new List<string>();
            if (cfg["args"] is JsonArray a)
                foreach (var item in a) args.Add(item is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw Bad(name, "args must be strings"));
            var env = new Dictionary<string, string>();
            if (cfg["env"] is JsonObject e)
                foreach (var (k, v) in e) env[k] = v is JsonValue jv && jv.TryGetValue<string>(out var s) ? s : throw Bad(name, "env values must be strings");
            int timeout = DefaultTimeoutMs;
            if (cfg["timeout_ms"] is { } t)
                timeout = t is JsonValue tv && tv.TryGetValue<double>(out var d) && d >= 1 && d <= int.MaxValue ? (int)d : throw Bad(name, "timeout_ms must be a positive integer");
            result.Add(new McpServerConfig(name, command, args, env, Str(cfg, "cwd", name) is { Length: > 0 } cwd ? cwd : null, timeout));
        }
        return result;
    }

    private static string? Str(JsonObject cfg, string field, string name) => cfg[field] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => throw Bad(name, field + " must be a string"),
    };

    private static InvalidRequestException Bad(string name, string what) =>
        new($"failed to parse MCP config JSON: server '{name}': {what}", "mcp_servers");
}
