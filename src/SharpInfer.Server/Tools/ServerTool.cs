using System.Text.Json.Nodes;

namespace SharpInfer.Server.Tools;

/// <summary>One tool of llama-server's <c>/tools</c> API: a built-in (files, search, shell) or an MCP server's tool.
/// <c>GET /tools</c> lists <see cref="ToJson"/>; <c>POST /tools</c> runs <see cref="InvokeAsync"/>, whose answer is
/// <c>{"plain_text_response": ...}</c> (what a model sees), <c>{"result": ...}</c> or <c>{"error": "..."}</c> (a
/// tool-level failure is a 200 with an error field, as llama-server answers).</summary>
internal abstract class ServerTool
{
    public abstract string Name { get; }
    public virtual string DisplayName => Name;
    /// <summary>Whether the tool changes anything (files, processes): the web UI asks before running those.</summary>
    public virtual bool PermissionWrite => false;
    /// <summary>Whether <c>"stream": true</c> is accepted (output pushed as it is produced).</summary>
    public virtual bool SupportsStream => false;
    public virtual string Type => "builtin";

    /// <summary>The OpenAI function-calling definition, <c>{"type": "function", "function": {name, description, parameters}}</c>.</summary>
    public abstract JsonObject Definition();

    /// <summary>Runs the tool. <paramref name="stream"/> is set for a streamed call: output goes there, and the
    /// returned object is ignored.</summary>
    public abstract Task<JsonObject> InvokeAsync(ToolCall call, Func<string, Task>? stream, CancellationToken ct);

    public JsonObject ToJson() => new()
    {
        ["display_name"] = DisplayName,
        ["tool"] = Name,
        ["type"] = Type,
        ["permissions"] = new JsonObject { ["write"] = PermissionWrite },
        ["definition"] = Definition(),
    };

    protected static JsonObject Function(string name, string description, JsonObject properties, params string[] required)
    {
        var req = new JsonArray();
        foreach (var r in required) req.Add((JsonNode)r);
        return new JsonObject
        {
            ["type"] = "function",
            ["function"] = new JsonObject
            {
                ["name"] = name,
                ["description"] = description,
                ["parameters"] = new JsonObject { ["type"] = "object", ["properties"] = properties, ["required"] = req },
            },
        };
    }

    protected static JsonObject Prop(string type, string description) => new() { ["type"] = type, ["description"] = description };

    public static JsonObject Error(string message) => new() { ["error"] = message };
    public static JsonObject Text(string text) => new() { ["plain_text_response"] = text };
}

/// <summary>A tool invocation's arguments and the working directory relative paths resolve against (the
/// <c>x-tool-cwd</c> header, else the model's <c>cwd</c> argument, else the server's).</summary>
internal sealed class ToolCall(JsonObject parameters)
{
    public JsonObject Params { get; } = parameters;
    public string? Cwd => Params["cwd"] is JsonValue v && v.TryGetValue<string>(out var s) && s.Length > 0 ? s : null;

    /// <summary>A required string argument; a missing or non-string one is the caller's error (400).</summary>
    public string RequireString(string name) =>
        Params[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s
            : throw new ToolArgumentException($"\"{name}\" is required and must be a string");

    public string String(string name, string fallback) =>
        Params[name] switch
        {
            null => fallback,
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            _ => throw new ToolArgumentException($"\"{name}\" must be a string"),
        };

    public int Int(string name, int fallback) =>
        Params[name] switch
        {
            null => fallback,
            JsonValue v when v.TryGetValue<double>(out var d) && d == Math.Floor(d) => (int)Math.Clamp(d, int.MinValue, int.MaxValue),
            _ => throw new ToolArgumentException($"\"{name}\" must be an integer"),
        };

    public bool Bool(string name, bool fallback) =>
        Params[name] switch
        {
            null => fallback,
            JsonValue v when v.TryGetValue<bool>(out var b) => b,
            _ => throw new ToolArgumentException($"\"{name}\" must be a boolean"),
        };

    /// <summary>The absolute path for <paramref name="path"/> (see <see cref="ToolPaths.Resolve"/>).</summary>
    public string Resolve(string path) => ToolPaths.Resolve(path, Cwd);
}

/// <summary>A malformed argument (missing, wrong type): answered 400, as llama-server answers its JSON exceptions.</summary>
internal sealed class ToolArgumentException(string message) : Exception(message);
