using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpInfer.Cli;

/// <summary>Options that shape chat formatting, shared by <c>chat</c> and <c>template</c>.</summary>
internal sealed class ChatTemplateOptions
{
    public readonly Option<string[]> Vars = new("--var")
    {
        Description = "Template variable name=value (repeatable); the value is parsed as JSON when it is valid JSON (true, 3, {\"a\":1}, \"x\"), else taken as a string. Overrides bos_token/eos_token",
        AllowMultipleArgumentsPerToken = false,
    };
    public readonly Option<string?> TemplateFile = new("--chat-template-file") { Description = "Use this Jinja chat template instead of the model's" };

    public void AddTo(Command c)
    {
        c.Options.Add(Vars);
        c.Options.Add(TemplateFile);
    }

    /// <summary>The template source from <c>--chat-template-file</c>, or null (use the model's).</summary>
    public string? TemplateSource(ParseResult r) =>
        r.GetValue(TemplateFile) is { } path ? ReadFile(path, "chat template file") : null;

    public Dictionary<string, JsonNode?> Variables(ParseResult r) => ParseVariables(r.GetValue(Vars) ?? []);

    /// <summary>Parses <c>name=value</c> pairs: a value that is valid JSON becomes that JSON value, anything else a string.</summary>
    public static Dictionary<string, JsonNode?> ParseVariables(IEnumerable<string> pairs)
    {
        var vars = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0) throw new InvalidRequestException($"--var expects name=value, got '{pair}'", "var");
            string name = pair[..eq].Trim(), value = pair[(eq + 1)..];
            if (name.Length == 0) throw new InvalidRequestException($"--var expects name=value, got '{pair}'", "var");
            vars[name] = ParseValue(value);
        }
        return vars;
    }

    /// <summary>JSON when <paramref name="value"/> is a valid JSON document, else the string itself.</summary>
    public static JsonNode? ParseValue(string value)
    {
        try
        {
            return JsonNode.Parse(value);
        }
        catch (JsonException)
        {
            return JsonValue.Create(value);
        }
    }

    /// <summary>Reads a text file, or stdin for "-" when a reader is given; I/O failures become a clear error.</summary>
    public static string ReadFile(string path, string what, TextReader? stdin = null)
    {
        if (path == "-" && stdin != null) return stdin.ReadToEnd();
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new SharpInferException($"cannot read {what} '{path}': {e.Message}");
        }
    }

    /// <summary>Parses JSON read from <paramref name="path"/>; syntax errors name the file, line and position.</summary>
    public static JsonNode ParseJsonFile(string text, string path, string what)
    {
        try
        {
            return JsonNode.Parse(text) ?? throw new InvalidRequestException($"{what} '{path}' holds null, not JSON data", what);
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException($"{what} '{path}' is not valid JSON: {e.Message}", what);
        }
    }
}
