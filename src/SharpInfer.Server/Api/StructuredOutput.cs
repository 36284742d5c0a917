using System.Text;
using System.Text.Json.Nodes;
using SharpInfer.Sampling;
using SharpInfer.Sampling.Grammar;
using SharpInfer.Tokenization;

namespace SharpInfer.Server.Api;

/// <summary>
/// The structured-output request fields, turned into one grammar constraint: OpenAI's <c>response_format</c>
/// (<c>json_object</c>, <c>json_schema</c>), llama.cpp's <c>grammar</c> and <c>json_schema</c>, and vLLM's
/// <c>structured_outputs</c> (<c>json</c>, <c>regex</c>, <c>choice</c>, <c>grammar</c>). At most one may be
/// given. Constraints are cached by grammar text, so repeated requests reuse their token masks.
/// </summary>
internal static class StructuredOutput
{
    private const int CacheSize = 32;
    private static readonly Dictionary<(Tokenizer, string Gbnf, string Preserved), GrammarConstraint> Cache = [];

    /// <summary>Whether the body has any structured-output field (before validating it).</summary>
    public static bool IsRequested(JsonBody b) =>
        (b.Object("response_format") is { } rf && new JsonBody(rf).String("type") is not (null or "text"))
        || b["grammar"] is not null || b["json_schema"] is not null || b["structured_outputs"] is not null;

    /// <summary>The constraint the body asks for, or null; 400 naming the field for anything invalid.
    /// <paramref name="wrap"/> may rewrite the grammar (chat: room for reasoning before the answer).</summary>
    public static ILogitsProcessorFactory? Read(JsonBody b, Tokenizer tokenizer, int vocabSize, Func<string, string>? wrap = null,
                                                int[]? preserved = null)
    {
        var found = new List<(string Field, Func<string> Gbnf)>();
        if (b.Object("response_format") is { } rf)
        {
            var f = new JsonBody(rf);
            switch (f.String("type"))
            {
                case null or "text": break;
                case "json_object":
                    found.Add(("response_format", () => f["schema"] is JsonObject s ? JsonSchemaToGbnf.Convert(s) : JsonSchemaToGbnf.AnyObject()));
                    break;
                case "json_schema":
                    var js = f.Object("json_schema") ?? throw ApiException.BadRequest("'response_format' of type 'json_schema' needs a 'json_schema' object.", "response_format");
                    var schema = new JsonBody(js).Object("schema") ?? new JsonObject();
                    found.Add(("response_format", () => JsonSchemaToGbnf.Convert(schema)));
                    break;
                case var t: throw ApiException.BadRequest($"'response_format' of type '{t}' is not supported (text, json_object, json_schema).", "response_format");
            }
        }
        if (b.String("grammar") is { } g) found.Add(("grammar", () => g));
        if (b.Object("json_schema") is { } j) found.Add(("json_schema", () => JsonSchemaToGbnf.Convert(j)));
        if (b.Object("structured_outputs") is { } so)
        {
            var s = new JsonBody(so);
            if (s["json"] is { } json)
                found.Add(("structured_outputs", () => json is JsonValue v && v.TryGetValue(out string? text) ? JsonSchemaToGbnf.Convert(text) : JsonSchemaToGbnf.Convert((JsonNode?)json)));
            if (s.String("regex") is { } regex) found.Add(("structured_outputs", (Func<string>)(() => "root ::= " + RegexToGbnf.Translate(regex, inJsonString: false))));
            if (s.Array("choice") is { } choice)
                found.Add(("structured_outputs", () => "root ::= " + string.Join(" | ", choice.Select(c => Literal(c?.GetValue<string>() ?? "")))));
            if (s.String("grammar") is { } sg) found.Add(("structured_outputs", () => sg));
        }
        if (found.Count == 0) return null;
        if (found.Count > 1)
            throw ApiException.BadRequest($"only one structured-output constraint may be given, got {string.Join(", ", found.Select(f => f.Field))}.", found[1].Field);
        var (field, make) = found[0];
        return Compile(() => wrap is null ? make() : wrap(make()), field, tokenizer, vocabSize, preserved);
    }

    /// <summary>A grammar constraint (cached by grammar text and preserved tokens); 400 naming <paramref name="field"/>
    /// when it is invalid. <paramref name="preserved"/>: control tokens the reply renders, which the grammar matches by
    /// their text.</summary>
    public static ILogitsProcessorFactory Compile(Func<string> make, string field, Tokenizer tokenizer, int vocabSize, int[]? preserved = null)
    {
        try
        {
            string gbnf = make();
            var key = (tokenizer, gbnf, preserved is { Length: > 0 } ? string.Join(',', preserved) : "");
            lock (Cache)
            {
                if (Cache.TryGetValue(key, out var cached)) return cached;
                var c = new GrammarConstraint(CompiledGrammar.FromGbnf(gbnf, field), TokenTrie.For(tokenizer, preserved), vocabSize);
                if (Cache.Count >= CacheSize) Cache.Clear();
                Cache[key] = c;
                return c;
            }
        }
        catch (InvalidRequestException e) { throw ApiException.BadRequest(e.Message, field); }
        catch (InvalidOperationException e) { throw ApiException.BadRequest($"invalid '{field}': {e.Message}", field); }
    }

    private static string Literal(string s)
    {
        if (s.Length == 0) throw ApiException.BadRequest("'structured_outputs.choice' entries must be non-empty strings.", "structured_outputs");
        var sb = new StringBuilder("\"");
        foreach (char c in s) sb.Append(c is '"' or '\\' ? "\\" + c : c < 0x20 ? $"\\x{(int)c:X2}" : c.ToString());
        return sb.Append('"').ToString();
    }
}
