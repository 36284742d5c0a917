using System.Globalization;
using System.Text;

namespace SharpInfer.Tokenization.Jinja;

/// <summary>Python's <c>json.dumps(x, ensure_ascii=..., indent=..., separators=..., sort_keys=...)</c>, byte for byte.</summary>
internal static class PyJson
{
    public sealed record Options(bool EnsureAscii, string? Indent, string ItemSeparator, string KeySeparator, bool SortKeys);

    public static Options MakeOptions(bool ensureAscii, JinjaValue? indent, JinjaValue? separators, bool sortKeys)
    {
        string? ind = indent switch
        {
            null or JinjaNone or JinjaUndefined => null,
            JinjaString s => s.Value,
            JinjaInt i => new string(' ', (int)Math.Clamp(i.Value, 0, 1000)),
            JinjaBool b => new string(' ', b.Value ? 1 : 0),
            _ => throw Err.Type($"indent must be an int or a string, not {indent.TypeName}"),
        };
        string item = ind is null ? ", " : ",", key = ": ";
        if (separators is JinjaList { Items.Count: 2 } sep)
        {
            item = sep.Items[0] is JinjaString a ? a.Value : throw Err.Type("separators must be strings");
            key = sep.Items[1] is JinjaString b2 ? b2.Value : throw Err.Type("separators must be strings");
        }
        else if (separators is not null and not JinjaNone and not JinjaUndefined)
            throw Err.Type("separators must be a (item_separator, key_separator) pair");
        return new Options(ensureAscii, ind, item, key, sortKeys);
    }

    public static string Dumps(JinjaValue value, Options o, RenderState? state)
    {
        var sb = new StringBuilder();
        var stack = new HashSet<JinjaValue>(ReferenceEqualityComparer.Instance);
        Write(sb, value, o, 0, stack, state);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, JinjaValue v, Options o, int level, HashSet<JinjaValue> stack, RenderState? state)
    {
        state?.CheckLength(sb.Length);
        if (state is not null && level > state.Options.MaxDepth)
            throw Err.Limit(TemplateLimit.Depth, $"tojson nesting exceeded MaxDepth ({state.Options.MaxDepth})");
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        switch (v)
        {
            case JinjaNone: sb.Append("null"); return;
            case JinjaBool b: sb.Append(b.Value ? "true" : "false"); return;
            case JinjaInt i: sb.Append(i.Text); return;
            case JinjaFloat f: sb.Append(FloatJson(f.Value)); return;
            case JinjaString s: WriteString(sb, s.Value, o.EnsureAscii); return;
            case JinjaList list:
            {
                if (list.Items.Count == 0) { sb.Append("[]"); return; }
                if (!stack.Add(list)) throw Err.Runtime("Circular reference detected");
                sb.Append('[');
                string? nl = o.Indent is null ? null : "\n" + Repeat(o.Indent, level + 1);
                if (nl is not null) sb.Append(nl);
                for (int k = 0; k < list.Items.Count; k++)
                {
                    if (k > 0) { sb.Append(o.ItemSeparator); if (nl is not null) sb.Append(nl); }
                    state?.Step();
                    Write(sb, list.Items[k], o, level + 1, stack, state);
                }
                if (nl is not null) sb.Append('\n').Append(Repeat(o.Indent!, level));
                sb.Append(']');
                stack.Remove(list);
                return;
            }
            case JinjaDict dict:
            {
                if (dict.Map.Count == 0) { sb.Append("{}"); return; }
                if (!stack.Add(dict)) throw Err.Runtime("Circular reference detected");
                IEnumerable<KeyValuePair<JinjaValue, JinjaValue>> entries = dict.Map;
                if (o.SortKeys)
                {
                    entries = Sorting.StableSort(dict.Map.ToList(), (x, y) => Py.Compare(x.Key, y.Key));
                }
                sb.Append('{');
                string? nl = o.Indent is null ? null : "\n" + Repeat(o.Indent, level + 1);
                if (nl is not null) sb.Append(nl);
                bool first = true;
                foreach (var (k, val) in entries)
                {
                    if (!first) { sb.Append(o.ItemSeparator); if (nl is not null) sb.Append(nl); }
                    first = false;
                    state?.Step();
                    string key = k switch
                    {
                        JinjaString s => s.Value,
                        JinjaBool b => b.Value ? "true" : "false",
                        JinjaInt i => i.Text,
                        JinjaFloat f => FloatJson(f.Value),
                        JinjaNone => "null",
                        _ => throw Err.Type($"keys must be str, int, float, bool or None, not {k.TypeName}"),
                    };
                    WriteString(sb, key, o.EnsureAscii);
                    sb.Append(o.KeySeparator);
                    Write(sb, val, o, level + 1, stack, state);
                }
                if (nl is not null) sb.Append('\n').Append(Repeat(o.Indent!, level));
                sb.Append('}');
                stack.Remove(dict);
                return;
            }
            default:
                throw Err.Type($"Object of type {v.TypeName} is not JSON serializable");
        }
    }

    private static string Repeat(string s, int n)
    {
        if (n <= 0 || s.Length == 0) return "";
        return n == 1 ? s : new StringBuilder(s.Length * n).Insert(0, s, n).ToString();
    }

    public static string FloatJson(double d)
    {
        if (double.IsNaN(d)) return "NaN";
        if (double.IsPositiveInfinity(d)) return "Infinity";
        if (double.IsNegativeInfinity(d)) return "-Infinity";
        return Py.FloatRepr(d);
    }

    public static void WriteString(StringBuilder sb, string s, bool ensureAscii)
    {
        sb.Append('"');
        int run = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            string? esc = c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\b' => "\\b",
                '\f' => "\\f",
                _ => null,
            };
            if (esc is null && (c < 0x20 || (ensureAscii && c > 0x7e)))
                esc = "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture);
            if (esc is null) continue;
            sb.Append(s, run, i - run).Append(esc);
            run = i + 1;
        }
        sb.Append(s, run, s.Length - run);
        sb.Append('"');
    }
}
