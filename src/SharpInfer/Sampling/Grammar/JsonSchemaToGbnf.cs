using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpInfer.Sampling.Grammar;

/// <summary>
/// Converts a JSON Schema into GBNF (the subset documented in docs/structured-output.md). Like llama.cpp's
/// json-schema-to-grammar it bounds what the schema leaves open (whitespace runs, digit counts) so even a
/// random-weight model completes. Objects never get properties the schema does not list (as OpenAI's strict
/// mode); properties are emitted in schema order, required ones always. An unsupported keyword or value is an
/// <see cref="InvalidRequestException"/>, never silently dropped.
/// </summary>
internal sealed class JsonSchemaToGbnf
{
    private const string Field = "json_schema";
    private const int MaxDigits = 15;
    private const int AdditionalMembers = 4;

    private static readonly HashSet<string> Annotations =
        ["$schema", "$id", "$comment", "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly", "$defs", "definitions"];

    private readonly StringBuilder _rules = new();
    private readonly Dictionary<string, string> _refs = [];
    private readonly JsonNode _root;
    private int _next;

    private JsonSchemaToGbnf(JsonNode root) => _root = root;

    /// <summary>GBNF for documents valid under <paramref name="schema"/>.</summary>
    public static string Convert(JsonNode? schema)
    {
        var c = new JsonSchemaToGbnf(schema ?? new JsonObject());
        string root = c.Visit(c._root, "root-value");
        c._rules.Insert(0, $"root ::= {root}\n");
        c._rules.Append("ws ::= \"\" | \" \" | \"\\n\" [ ]{0,8}\n");
        return c._rules.ToString();
    }

    public static string Convert(string schemaJson)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(schemaJson); }
        catch (JsonException e) { throw new InvalidRequestException($"'json_schema' is not valid JSON: {e.Message}", Field); }
        return Convert(node);
    }

    /// <summary>The catch-all for <c>{"type": "json_object"}</c>: any JSON object, bounded.</summary>
    public static string AnyObject() => Convert(new JsonObject { ["type"] = "object", ["additionalProperties"] = true });

    private static InvalidRequestException Error(string msg) => new($"unsupported JSON schema: {msg}", Field);

    private string Rule(string hint, string body)
    {
        string name = $"{hint}-{_next++}";
        _rules.Append(name).Append(" ::= ").Append(body).Append('\n');
        return name;
    }

    private static string Literal(string json)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in json) sb.Append(c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c.ToString());
        return sb.Append('"').ToString();
    }

    private static string JsonLiteral(JsonNode? v) => Literal(v?.ToJsonString(new JsonSerializerOptions { WriteIndented = false }) ?? "null");

    private string Visit(JsonNode? node, string hint)
    {
        if (node is JsonValue bv && bv.TryGetValue(out bool b))
        {
            if (!b) throw Error($"schema 'false' at {hint} matches nothing");
            return Visit(AnyValue(), hint);
        }
        if (node is not JsonObject s) throw Error($"a schema must be an object or boolean (at {hint})");
        foreach (var (key, _) in s)
            if (!Known.Contains(key) && !Annotations.Contains(key)) throw Error($"keyword '{key}' is not supported (at {hint})");

        if (s["$ref"] is { } r) return Ref(r.GetValue<string>());
        if (s["const"] is var cn && s.ContainsKey("const")) return JsonLiteral(cn) + " ws";
        if (s["enum"] is JsonArray en)
        {
            if (en.Count == 0) throw Error("'enum' is empty");
            return "(" + string.Join(" | ", en.Select(JsonLiteral)) + ") ws";
        }
        if ((s["anyOf"] ?? s["oneOf"]) is JsonArray any)
        {
            if (any.Count == 0) throw Error("'anyOf'/'oneOf' is empty");
            return "(" + string.Join(" | ", any.Select((a, i) => Visit(a, $"{hint}-alt{i}"))) + ")";
        }
        var type = s["type"];
        if (type is JsonArray types)
        {
            var alts = types.Select(t => { var copy = (JsonObject)s.DeepClone(); copy["type"] = t!.GetValue<string>(); return Visit(copy, hint); });
            return "(" + string.Join(" | ", alts) + ")";
        }
        string? t = type?.GetValue<string>();
        if (t == null)
        {
            if (s.ContainsKey("properties")) t = "object";
            else if (s.ContainsKey("items") || s.ContainsKey("prefixItems")) t = "array";
            else return Visit(AnyValue(), hint);
        }
        return t switch
        {
            "object" => Object(s, hint),
            "array" => Array(s, hint),
            "string" => String(s, hint),
            "number" => Number(s),
            "integer" => Integer(s),
            "boolean" => "(\"true\" | \"false\") ws",
            "null" => "\"null\" ws",
            _ => throw Error($"type '{t}' is not supported"),
        };
    }

    private static readonly HashSet<string> Known =
    [
        "type", "properties", "required", "additionalProperties", "enum", "const", "items", "prefixItems", "minItems",
        "maxItems", "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "anyOf", "oneOf", "$ref", "format",
    ];

    // any JSON value, bounded so generation finishes: shallow containers, short strings
    private static JsonObject AnyValue() => new()
    {
        ["anyOf"] = new JsonArray(
            new JsonObject { ["type"] = "string", ["maxLength"] = 16 },
            new JsonObject { ["type"] = "number" },
            new JsonObject { ["type"] = "boolean" },
            new JsonObject { ["type"] = "null" },
            new JsonObject { ["type"] = "array", ["maxItems"] = 4, ["items"] = new JsonObject { ["anyOf"] = new JsonArray(new JsonObject { ["type"] = "string", ["maxLength"] = 16 }, new JsonObject { ["type"] = "number" }, new JsonObject { ["type"] = "boolean" }, new JsonObject { ["type"] = "null" }) } }),
    };

    private string Ref(string reference)
    {
        if (_refs.TryGetValue(reference, out var name)) return name;
        string? path = reference.StartsWith("#/$defs/") ? "$defs" : reference.StartsWith("#/definitions/") ? "definitions" : null;
        if (path == null) throw Error($"'$ref' '{reference}' is not supported (only #/$defs/… and #/definitions/…)");
        string key = reference[(path.Length + 3)..];
        var target = _root[path]?[key] ?? throw Error($"'$ref' '{reference}' points nowhere");
        name = $"ref-{_next++}";
        _refs[reference] = name;
        string body = Visit(target, name);
        _rules.Append(name).Append(" ::= ").Append(body).Append('\n');
        return name;
    }

    private string Object(JsonObject s, string hint)
    {
        var props = s["properties"] as JsonObject ?? [];
        var required = (s["required"] as JsonArray)?.Select(r => r!.GetValue<string>()).ToHashSet() ?? [];
        foreach (var r in required)
            if (!props.ContainsKey(r)) throw Error($"required property '{r}' is not in 'properties'");
        var additional = s["additionalProperties"];
        bool extra = additional is JsonObject || (additional is JsonValue av && av.TryGetValue(out bool ab) && ab);
        if (extra && props.Count > 0) throw Error("'additionalProperties' other than false is only supported on objects without 'properties'");
        if (extra)
        {
            string value = additional is JsonObject ? Visit(additional, hint + "-extra") : Visit(AnyValue(), hint + "-extra");
            string kv = Rule("kv", $"\"\\\"\" [a-zA-Z0-9_]{{1,16}} \"\\\"\" ws \":\" ws {value}");
            return $"\"{{\" ws ({kv} (\",\" ws {kv}){{0,{AdditionalMembers - 1}}})? \"}}\" ws";
        }
        var members = new List<(string Kv, bool Required)>();
        foreach (var (name, schema) in props)
        {
            string value = Visit(schema, $"{hint}-{name}");
            members.Add((Rule("kv", $"{Literal(JsonValue.Create(name).ToJsonString())} ws \":\" ws {value}"), required.Contains(name)));
        }
        // required first (fixed), then each optional one may follow; with none required the first present
        // optional one opens the list
        var req = members.Where(m => m.Required).Select(m => m.Kv).ToList();
        var opt = members.Where(m => !m.Required).Select(m => m.Kv).ToList();
        string body;
        if (req.Count > 0)
            body = string.Join(" \",\" ws ", req) + string.Concat(opt.Select(o => $" (\",\" ws {o})?"));
        else if (opt.Count > 0)
        {
            var firsts = new List<string>();
            for (int k = 0; k < opt.Count; k++)
                firsts.Add(opt[k] + string.Concat(opt.Skip(k + 1).Select(o => $" (\",\" ws {o})?")));
            body = "(" + string.Join(" | ", firsts) + ")?";
        }
        else body = "";
        return $"\"{{\" ws {body} \"}}\" ws";
    }

    private string Array(JsonObject s, string hint)
    {
        // draft-04's tuple form, "items": [schemas]: exactly those items in order (llama.cpp's converter reads it so)
        if (s["items"] is JsonArray tuple)
            return $"\"[\" ws {string.Join(" \",\" ws ", tuple.Select((t, i) => Visit(t, $"{hint}-tuple-{i}")))} \"]\" ws";
        var prefix = (s["prefixItems"] as JsonArray)?.Select((p, i) => Visit(p, $"{hint}-{i}")).ToList() ?? [];
        int min = s["minItems"]?.GetValue<int>() ?? 0;
        int? max = s["maxItems"]?.GetValue<int>();
        if (min < 0 || max < min) throw Error("'minItems'/'maxItems' are out of order");
        var itemsNode = s["items"];
        bool noMore = itemsNode is JsonValue iv && iv.TryGetValue(out bool ib) && !ib;
        string? item = noMore ? null : itemsNode != null ? Visit(itemsNode, hint + "-item") : prefix.Count == 0 ? Visit(AnyValue(), hint + "-item") : null;
        if (max < prefix.Count) prefix = prefix.GetRange(0, max.Value);
        int p = prefix.Count;
        if (item == null && min > p) throw Error("'minItems' asks for more items than 'prefixItems' allows");
        int restMin = Math.Max(0, min - p);
        int restMax = max == null ? -1 : max.Value - p;   // -1: unbounded
        string r = item == null || restMax == 0 ? "" : Rule("item", item);
        string Reps(int lo, int hi) => hi < 0 ? (lo == 0 ? "*" : $"{{{lo},}}") : $"{{{lo},{hi}}}";
        string body;
        if (p == 0)
        {
            if (r.Length == 0) body = "";
            else if (restMin == 0) body = $"({r} (\",\" ws {r}){Reps(0, restMax < 0 ? -1 : restMax - 1)})?";
            else body = $"{r} (\",\" ws {r}){Reps(restMin - 1, restMax < 0 ? -1 : restMax - 1)}";
        }
        else
        {
            // prefix items in order; those beyond minItems are optional, each only if the one before is present
            string tail = r.Length == 0 ? "" : $" (\",\" ws {r}){Reps(restMin, restMax)}";
            for (int i = p - 1; i >= 1; i--)
                tail = i < min ? $" \",\" ws {prefix[i]}{tail}" : $" (\",\" ws {prefix[i]}{tail})?";
            body = min > 0 ? $"{prefix[0]}{tail}" : $"({prefix[0]}{tail})?";
        }
        return $"\"[\" ws {body} \"]\" ws";
    }

    private string String(JsonObject s, string hint)
    {
        if (s["pattern"] is { } pattern)
        {
            if (s.ContainsKey("minLength") || s.ContainsKey("maxLength") || s.ContainsKey("format"))
                throw Error("'pattern' cannot be combined with 'minLength'/'maxLength'/'format'");
            return $"\"\\\"\" {RegexToGbnf.Translate(pattern.GetValue<string>())} \"\\\"\" ws";
        }
        if (s["format"] is { } format)
        {
            string f = format.GetValue<string>();
            const string hour = "([01] [0-9] | \"2\" [0-3])";
            string date = $"[0-9]{{4}} \"-\" (\"0\" [1-9] | \"1\" [0-2]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01])";
            string time = $"{hour} \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{{1,6}})? (\"Z\" | [+-] {hour} \":\" [0-5] [0-9])";
            string body = f switch
            {
                "date" => date,
                "time" => time,
                "date-time" => $"{date} \"T\" {time}",
                "uuid" => "[0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{12}",
                _ => throw Error($"'format' '{f}' is not supported (date, time, date-time, uuid)"),
            };
            return $"\"\\\"\" {Rule(f, body)} \"\\\"\" ws";
        }
        int min = s["minLength"]?.GetValue<int>() ?? 0;
        int? max = s["maxLength"]?.GetValue<int>();
        if (min < 0 || max < min) throw Error("'minLength'/'maxLength' are out of order");
        string ch = Rule("char", "[^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})");
        string rep = max == null ? $"{{{min},}}" : $"{{{min},{max}}}";
        return $"\"\\\"\" {ch}{rep} \"\\\"\" ws";
    }

    private static string Number(JsonObject s)
    {
        if (s.ContainsKey("minimum") || s.ContainsKey("maximum") || s.ContainsKey("exclusiveMinimum") || s.ContainsKey("exclusiveMaximum"))
            throw Error("'minimum'/'maximum' are supported for integers only");
        return $"\"-\"? (\"0\" | [1-9] [0-9]{{0,{MaxDigits - 1}}}) (\".\" [0-9]{{1,{MaxDigits}}})? ([eE] [-+]? [0-9]{{1,3}})? ws";
    }

    private static string Integer(JsonObject s)
    {
        long bound = (long)Math.Pow(10, MaxDigits) - 1;
        long lo = -bound, hi = bound;
        if (s["minimum"] is { } mn) lo = Math.Max(lo, (long)Math.Ceiling(mn.GetValue<double>()));
        if (s["exclusiveMinimum"] is { } emn) lo = Math.Max(lo, (long)Math.Floor(emn.GetValue<double>()) + 1);
        if (s["maximum"] is { } mx) hi = Math.Min(hi, (long)Math.Floor(mx.GetValue<double>()));
        if (s["exclusiveMaximum"] is { } emx) hi = Math.Min(hi, (long)Math.Ceiling(emx.GetValue<double>()) - 1);
        if (lo > hi) throw Error($"integer range [{lo}, {hi}] is empty");
        var alts = new List<string>();
        if (lo < 0) alts.Add("\"-\" (" + Range(Math.Max(1, -hi), -lo) + ")");
        if (hi >= 0) alts.Add(Range(Math.Max(0, lo), hi));
        return "(" + string.Join(" | ", alts) + ") ws";
    }

    /// <summary>Decimal strings (no leading zeros) of the integers in [lo, hi], lo ≥ 0.</summary>
    private static string Range(long lo, long hi)
    {
        var alts = new List<string>();
        for (int len = Digits(lo); len <= Digits(hi); len++)
        {
            long a = Math.Max(lo, len == 1 ? 0 : Pow10(len - 1)), b = Math.Min(hi, Pow10(len) - 1);
            if (a <= b) alts.Add(SameLength(a.ToString(CultureInfo.InvariantCulture), b.ToString(CultureInfo.InvariantCulture)));
        }
        return string.Join(" | ", alts);
    }

    private static int Digits(long v) => v.ToString(CultureInfo.InvariantCulture).Length;
    private static long Pow10(int n) { long r = 1; for (int i = 0; i < n; i++) r *= 10; return r; }

    private static string SameLength(string a, string b)
    {
        if (a.Length == 0) return "\"\"";
        if (a.Length == 1) return a == b ? $"\"{a}\"" : $"[{a}-{b}]";
        if (a[0] == b[0]) return $"\"{a[0]}\" ({SameLength(a[1..], b[1..])})";
        var alts = new List<string>
        {
            $"\"{a[0]}\" ({SameLength(a[1..], new string('9', a.Length - 1))})",
        };
        if (a[0] + 1 <= b[0] - 1) alts.Add($"[{(char)(a[0] + 1)}-{(char)(b[0] - 1)}] [0-9]{{{a.Length - 1}}}");
        alts.Add($"\"{b[0]}\" ({SameLength(new string('0', a.Length - 1), b[1..])})");
        return string.Join(" | ", alts);
    }
}
