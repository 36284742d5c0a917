using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpInfer.Engine.Tools;

/// <summary>OpenAI's <c>tool_choice</c>.</summary>
internal enum ToolChoiceMode
{
    /// <summary>Never call: the reply is plain text (tools are still shown to the template, as llama-server does).</summary>
    None,
    /// <summary>The model decides; calls are parsed out of the reply afterwards.</summary>
    Auto,
    /// <summary>At least one call, grammar-constrained.</summary>
    Required,
    /// <summary>A call of one named function, grammar-constrained.</summary>
    Function,
}

/// <summary>One function a request offers: its name and its parameters' JSON schema.</summary>
internal sealed record ToolFunction(string Name, JsonNode Parameters);

/// <summary>The tool fields of a chat request, read and checked (<see cref="InvalidRequestException"/> naming the field).</summary>
internal sealed class ToolSet
{
    public required IReadOnlyList<ToolFunction> Functions { get; init; }
    public ToolChoiceMode Choice { get; init; } = ToolChoiceMode.Auto;
    /// <summary>The function <see cref="ToolChoiceMode.Function"/> forces.</summary>
    public string? ForcedName { get; init; }
    /// <summary>Several calls in one reply (default false, as llama-server).</summary>
    public bool Parallel { get; init; }

    /// <summary>Whether the reply is grammar-constrained to calls.</summary>
    public bool Forced => Choice is ToolChoiceMode.Required or ToolChoiceMode.Function;

    /// <summary>The functions the grammar may call.</summary>
    public IEnumerable<ToolFunction> Callable => Choice == ToolChoiceMode.Function ? Functions.Where(f => f.Name == ForcedName) : Functions;

    /// <summary>Reads <c>tools</c>, <c>tool_choice</c> and <c>parallel_tool_calls</c>; null when there are no tools and
    /// no choice other than none/auto.</summary>
    public static ToolSet? Read(JsonArray? tools, JsonNode? toolChoice, bool? parallel)
    {
        var functions = new List<ToolFunction>();
        for (int i = 0; tools != null && i < tools.Count; i++)
        {
            string at = $"tools[{i}]";
            if (tools[i] is not JsonObject t) throw new InvalidRequestException($"'{at}' must be an object", at);
            var type = t["type"] is JsonValue tv && tv.GetValueKind() == JsonValueKind.String ? tv.GetValue<string>() : null;
            if (type != "function") throw new InvalidRequestException($"'{at}.type' must be \"function\"", $"{at}.type");
            if (t["function"] is not JsonObject fn) throw new InvalidRequestException($"'{at}.function' must be an object", $"{at}.function");
            if (fn["name"] is not JsonValue nv || nv.GetValueKind() != JsonValueKind.String || nv.GetValue<string>().Length == 0)
                throw new InvalidRequestException($"'{at}.function.name' must be a non-empty string", $"{at}.function.name");
            string name = nv.GetValue<string>();
            if (functions.Any(f => f.Name == name)) throw new InvalidRequestException($"'{at}.function.name' repeats the name '{name}'", $"{at}.function.name");
            var parameters = fn["parameters"];
            if (parameters is not null and not JsonObject)
                throw new InvalidRequestException($"'{at}.function.parameters' must be a JSON schema object", $"{at}.function.parameters");
            functions.Add(new ToolFunction(name, parameters?.DeepClone() ?? new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() }));
        }

        var mode = ToolChoiceMode.Auto;
        string? forced = null;
        switch (toolChoice)
        {
            case null: break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                mode = v.GetValue<string>() switch
                {
                    "none" => ToolChoiceMode.None,
                    "auto" => ToolChoiceMode.Auto,
                    "required" => ToolChoiceMode.Required,
                    var s => throw new InvalidRequestException($"'tool_choice' must be none, auto, required or a function, got \"{s}\"", "tool_choice"),
                };
                break;
            case JsonObject o when o["function"] is JsonObject f && f["name"] is JsonValue n && n.GetValueKind() == JsonValueKind.String:
                mode = ToolChoiceMode.Function;
                forced = n.GetValue<string>();
                if (!functions.Any(x => x.Name == forced))
                    throw new InvalidRequestException($"'tool_choice' names the function '{forced}', which is not in 'tools'", "tool_choice");
                break;
            default:
                throw new InvalidRequestException("'tool_choice' must be a string or {\"type\": \"function\", \"function\": {\"name\": ...}}", "tool_choice");
        }
        if (mode == ToolChoiceMode.Required && functions.Count == 0)
            throw new InvalidRequestException("'tool_choice' is \"required\" but no 'tools' are given", "tool_choice");
        if (functions.Count == 0) return null;
        return new ToolSet { Functions = functions, Choice = mode, ForcedName = forced, Parallel = parallel ?? false };
    }
}
