using System.Globalization;
using System.Text;

namespace SharpInfer.Tokenization.Jinja;

/// <summary>Built-in filters, tests and global functions (Jinja2's, plus Hugging Face's <c>tojson</c>,
/// <c>raise_exception</c> and <c>strftime_now</c>).</summary>
internal static partial class Builtins
{
    public static readonly Dictionary<string, FilterFn> Filters = new(StringComparer.Ordinal);
    public static readonly Dictionary<string, TestFn> Tests = new(StringComparer.Ordinal);
    public static readonly Dictionary<string, JinjaValue> Globals = new(StringComparer.Ordinal);

    static Builtins()
    {
        RegisterFilters();
        RegisterTests();
        RegisterGlobals();
    }

    // ------------------------------------------------------------------ helpers

    private static JinjaString S(string s) => new(s);

    private static string SoftStr(JinjaValue v) => Py.Str(v);

    private static bool Flag(JinjaArgs a, int i, string name, bool def = false) => a.Get(i, name)?.IsTruthy ?? def;

    private static long Int(JinjaArgs a, int i, string name, long def)
    {
        var v = a.Get(i, name);
        if (v is null or JinjaNone) return def;
        if (Py.IsIntLike(v, out long l)) return l;
        if (v is JinjaFloat f) return (long)f.Value;
        throw Err.Type($"argument '{name}' must be an integer, not {v.TypeName}");
    }

    private static string? Str(JinjaArgs a, int i, string name)
    {
        var v = a.Get(i, name);
        return v is null or JinjaNone ? null : Py.Str(v);
    }

    /// <summary>Jinja2's <c>ignore_case</c> post-processing for case-insensitive sorting and comparison.</summary>
    private static JinjaValue IgnoreCase(JinjaValue v) => v is JinjaString s ? S(s.Value.ToLowerInvariant()) : v;

    /// <summary>Jinja2's <c>make_attrgetter</c>: dotted path, integer parts become indexes, each step is a subscript.</summary>
    private static Func<JinjaValue, JinjaValue> AttrGetter(RenderState st, JinjaValue? attribute, Func<JinjaValue, JinjaValue>? post = null, JinjaValue? def = null)
    {
        if (attribute is null or JinjaNone) return post ?? (x => x);
        var parts = attribute is JinjaString s
            ? s.Value.Split('.').Select(p => p.Length > 0 && p.All(char.IsAsciiDigit) ? (JinjaValue)JinjaInt.Of(long.Parse(p, CultureInfo.InvariantCulture)) : S(p)).ToArray()
            : [attribute];
        return item =>
        {
            foreach (var part in parts)
            {
                item = Ops.GetItem(st, item, part);
                if (def is not null && item is JinjaUndefined) { item = def; break; }
            }
            return post is null ? item : post(item);
        };
    }

    private static Func<JinjaValue, JinjaValue> MultiAttrGetter(RenderState st, JinjaValue? attribute, Func<JinjaValue, JinjaValue>? post)
    {
        if (attribute is JinjaString s && s.Value.Contains(','))
        {
            var getters = s.Value.Split(',').Select(p => AttrGetter(st, S(p), post)).ToArray();
            return item => new JinjaList(getters.Select(g => g(item)).ToList(), isTuple: true);
        }
        return AttrGetter(st, attribute, post);
    }

    private static JinjaValue CallFilter(RenderState st, string name, JinjaValue input, JinjaArgs args)
    {
        if (!Filters.TryGetValue(name, out var fn)) throw Err.Runtime($"No filter named '{name}'.");
        st.Step();
        return fn(st, input, args);
    }

    private static bool CallTest(RenderState st, string name, JinjaValue input, JinjaArgs args)
    {
        if (!Tests.TryGetValue(name, out var fn)) throw Err.Runtime($"No test named '{name}'.");
        st.Step();
        return fn(st, input, args);
    }

    private static JinjaArgs Rest(JinjaArgs a, int skip) =>
        new(a.Positional.Skip(skip).ToList(), a.Named);

    private static JinjaList ListOf(IEnumerable<JinjaValue> items) => new(items.ToList());

    // ------------------------------------------------------------------ filters

    private static void RegisterFilters()
    {
        var f = Filters;
        f["abs"] = (st, v, a) => v switch
        {
            JinjaInt i => JinjaInt.Of(System.Numerics.BigInteger.Abs(i.BigValue)),
            JinjaBool b => JinjaInt.Of(b.Value ? 1 : 0),
            JinjaFloat d => new JinjaFloat(Math.Abs(d.Value)),
            JinjaUndefined u => throw Err.Undefined(u),
            _ => throw Err.Type($"bad operand type for abs(): '{v.TypeName}'"),
        };
        f["attr"] = (st, v, a) => Ops.GetAttr(v, Str(a, 0, "name") ?? throw Err.Type("attr() requires a name"));
        f["batch"] = (st, v, a) =>
        {
            long count = Int(a, 0, "linecount", 0);
            if (count <= 0) throw Err.Runtime("batch size must be positive");
            var fill = a.Get(1, "fill_with");
            var result = new List<JinjaValue>();
            var tmp = new List<JinjaValue>();
            foreach (var item in Ops.Iterate(st, v))
            {
                if (tmp.Count == count) { result.Add(new JinjaList(tmp)); tmp = new List<JinjaValue>(); }
                tmp.Add(item);
            }
            if (tmp.Count > 0)
            {
                if (fill is not null and not JinjaNone) while (tmp.Count < count) tmp.Add(fill);
                result.Add(new JinjaList(tmp));
            }
            return new JinjaList(result);
        };
        f["capitalize"] = (st, v, a) => S(Methods.Capitalize(SoftStr(v)));
        f["center"] = (st, v, a) =>
        {
            long w = Int(a, 0, "width", 80);
            st.CheckLength(w);
            return S(Methods.Pad(SoftStr(v), (int)Math.Max(0, w), " ", "center"));
        };
        f["default"] = f["d"] = (st, v, a) =>
        {
            var def = a.Get(0, "default_value") ?? JinjaString.Empty;
            bool boolean = Flag(a, 1, "boolean");
            if (v is JinjaUndefined || (boolean && !v.IsTruthy)) return def;
            return v;
        };
        f["dictsort"] = (st, v, a) =>
        {
            if (v is not JinjaDict d) throw Err.Type("dictsort filter requires a mapping");
            bool cs = Flag(a, 0, "case_sensitive");
            string by = Str(a, 1, "by") ?? "key";
            bool reverse = Flag(a, 2, "reverse");
            int pos = by == "key" ? 0 : by == "value" ? 1 : throw Err.Runtime("You can only sort by either \"key\" or \"value\"");
            st.Charge(d.Count);
            var pairs = d.Map.Select(kv => (JinjaValue)new JinjaList([kv.Key, kv.Value], isTuple: true)).ToList();
            JinjaValue Key(JinjaValue p) { var x = ((JinjaList)p).Items[pos]; return cs ? x : IgnoreCase(x); }
            return new JinjaList(Sorting.StableSort(pairs, (x, y) => Py.Compare(Key(x), Key(y)), reverse));
        };
        f["escape"] = f["e"] = f["forceescape"] = (st, v, a) => S(Escape(SoftStr(v)));
        f["first"] = (st, v, a) =>
        {
            var items = v is JinjaList l ? l.Items : Ops.Iterate(st, v);
            return items.Count > 0 ? items[0] : new JinjaUndefined("No first item, sequence was empty.");
        };
        f["last"] = (st, v, a) =>
        {
            var items = v is JinjaList l ? l.Items : Ops.Iterate(st, v);
            return items.Count > 0 ? items[^1] : new JinjaUndefined("No last item, sequence was empty.");
        };
        f["float"] = (st, v, a) => v is JinjaUndefined u ? throw Err.Undefined(u) : ToFloat(v) is double d ? new JinjaFloat(d) : (a.Get(0, "default") ?? new JinjaFloat(0.0));
        f["int"] = (st, v, a) =>
        {
            if (v is JinjaUndefined u) throw Err.Undefined(u);
            var def = a.Get(0, "default") ?? JinjaInt.Of(0);
            long b = Int(a, 1, "base", 10);
            if (v is JinjaString s && TryParseInt(s.Value, (int)b, out long parsed)) return JinjaInt.Of(parsed);
            if (v is JinjaInt) return v;
            if (Py.IsIntLike(v, out long l)) return JinjaInt.Of(l);
            if (ToFloat(v) is double d && !double.IsNaN(d) && !double.IsInfinity(d) && Math.Abs(d) < 9.2e18) return JinjaInt.Of((long)Math.Truncate(d));
            return def;
        };
        f["format"] = (st, v, a) =>
        {
            if (a.Positional.Count > 0 && a.Named.Count > 0)
                throw Err.Runtime("can't handle positional and keyword arguments at the same time");
            JinjaValue args;
            if (a.Named.Count > 0)
            {
                var d = new JinjaDict();
                foreach (var (k, x) in a.Named) d.Set(k, x);
                args = d;
            }
            else args = new JinjaList(a.Positional.ToList(), isTuple: true);
            var r = PyFormat.Printf(SoftStr(v), args);
            st.CheckLength(r.Length);
            return S(r);
        };
        f["indent"] = (st, v, a) =>
        {
            var w = a.Get(0, "width");
            string ind = w is JinjaString ws ? ws.Value : new string(' ', (int)Math.Clamp(w is null ? 4 : Py.IsIntLike(w, out long wl) ? wl : 4, 0, 10000));
            bool first = Flag(a, 1, "first"), blank = Flag(a, 2, "blank");
            string s = SoftStr(v) + "\n";
            var lines = Py.SplitLines(s);
            string rv;
            if (blank) rv = string.Join("\n" + ind, lines);
            else
            {
                var sb = new StringBuilder(lines.Count > 0 ? lines[0] : "");
                for (int i = 1; i < lines.Count; i++) sb.Append('\n').Append(lines[i].Length > 0 ? ind + lines[i] : lines[i]);
                rv = sb.ToString();
            }
            if (first) rv = ind + rv;
            st.CheckLength(rv.Length);
            return S(rv);
        };
        f["items"] = (st, v, a) => v switch
        {
            JinjaUndefined => new JinjaList(new List<JinjaValue>()),
            JinjaDict d => Methods.Call(st, d, "items", JinjaArgs.Empty),
            _ => throw Err.Type("Can only get item pairs from a mapping."),
        };
        f["join"] = (st, v, a) =>
        {
            string sep = Str(a, 0, "d") ?? "";
            var get = AttrGetter(st, a.Get(1, "attribute"));
            var sb = new StringBuilder();
            bool firstItem = true;
            foreach (var item in Ops.Iterate(st, v))
            {
                if (!firstItem) sb.Append(sep);
                firstItem = false;
                sb.Append(Py.Str(get(item)));
                st.CheckLength(sb.Length);
            }
            return S(sb.ToString());
        };
        f["length"] = f["count"] = (st, v, a) => JinjaInt.Of(Ops.Length(v));
        f["list"] = (st, v, a) => new JinjaList(Ops.Iterate(st, v));
        f["lower"] = (st, v, a) => S(Methods.Lower(SoftStr(v)));
        f["upper"] = (st, v, a) => S(Methods.Upper(SoftStr(v)));
        f["map"] = (st, v, a) =>
        {
            Func<JinjaValue, JinjaValue> fn;
            if (a.Positional.Count == 0 && a.Named.Any(kv => kv.Key == "attribute"))
            {
                var attr = a.Get(-1, "attribute");
                var def = a.Get(-1, "default");
                var extra = a.Named.FirstOrDefault(kv => kv.Key is not "attribute" and not "default");
                if (extra.Key is not null) throw Err.Runtime($"Unexpected keyword argument '{extra.Key}'");
                fn = AttrGetter(st, attr, null, def);
            }
            else
            {
                if (a.Positional.Count == 0) throw Err.Runtime("map requires a filter argument");
                string name = Py.Str(a.Positional[0]);
                var rest = Rest(a, 1);
                fn = item => CallFilter(st, name, item, rest);
            }
            return ListOf(Ops.Iterate(st, v).Select(fn));
        };
        f["max"] = (st, v, a) => MinMax(st, v, a, max: true);
        f["min"] = (st, v, a) => MinMax(st, v, a, max: false);
        f["reject"] = (st, v, a) => SelectOrReject(st, v, a, attr: false, select: false);
        f["rejectattr"] = (st, v, a) => SelectOrReject(st, v, a, attr: true, select: false);
        f["select"] = (st, v, a) => SelectOrReject(st, v, a, attr: false, select: true);
        f["selectattr"] = (st, v, a) => SelectOrReject(st, v, a, attr: true, select: true);
        f["replace"] = (st, v, a) =>
        {
            string old = Str(a, 0, "old") ?? throw Err.Type("replace() missing required argument 'old'");
            string nw = Str(a, 1, "new") ?? throw Err.Type("replace() missing required argument 'new'");
            return S(Methods.Replace(SoftStr(v), old, nw, Int(a, 2, "count", -1), st));
        };
        f["reverse"] = (st, v, a) =>
        {
            if (v is JinjaString s) return S(string.Concat(Py.Chars(s.Value).Reverse()));
            var items = Ops.Iterate(st, v);
            items.Reverse();
            return new JinjaList(items);
        };
        f["round"] = (st, v, a) =>
        {
            long precision = Int(a, 0, "precision", 0);
            string method = Str(a, 1, "method") ?? "common";
            if (method is not ("common" or "ceil" or "floor")) throw Err.Runtime("method must be common, ceil or floor");
            if (v is JinjaUndefined u) throw Err.Undefined(u);
            if (!Py.IsNumber(v)) throw Err.Type($"type {v.TypeName} doesn't define __round__ method");
            if (method == "common")
            {
                if (Py.IsIntLike(v, out long iv))
                {
                    if (precision >= 0) return JinjaInt.Of(iv);
                    return JinjaInt.Of((long)PyFormat.Round(iv, (int)precision));
                }
                return new JinjaFloat(PyFormat.Round(Py.ToDouble(v), (int)Math.Clamp(precision, -400, 400)));
            }
            double p = Math.Pow(10, precision);
            double x = Py.ToDouble(v) * p;
            return new JinjaFloat((method == "ceil" ? Math.Ceiling(x) : Math.Floor(x)) / p);
        };
        f["safe"] = (st, v, a) => v is JinjaString ? v : S(SoftStr(v));
        f["sort"] = (st, v, a) =>
        {
            bool reverse = Flag(a, 0, "reverse"), cs = Flag(a, 1, "case_sensitive");
            var key = MultiAttrGetter(st, a.Get(2, "attribute"), cs ? null : IgnoreCase);
            var items = Ops.Iterate(st, v);
            var keys = items.Select(key).ToList();
            var idx = Enumerable.Range(0, items.Count).ToList();
            var sorted = Sorting.StableSort(idx, (x, y) => Py.Compare(keys[x], keys[y]), reverse);
            return ListOf(sorted.Select(i => items[i]));
        };
        f["string"] = (st, v, a) => v is JinjaString ? v : S(SoftStr(v));
        f["sum"] = (st, v, a) =>
        {
            var get = AttrGetter(st, a.Get(0, "attribute"));
            JinjaValue total = a.Get(1, "start") ?? JinjaInt.Of(0);
            foreach (var item in Ops.Iterate(st, v)) total = Ops.Binary(st, "+", total, get(item));
            return total;
        };
        f["title"] = (st, v, a) => S(JinjaTitle(SoftStr(v)));
        f["tojson"] = (st, v, a) =>
        {
            var o = PyJson.MakeOptions(Flag(a, 0, "ensure_ascii"), a.Get(1, "indent"), a.Get(2, "separators"), Flag(a, 3, "sort_keys"));
            return S(PyJson.Dumps(v, o, st));
        };
        f["trim"] = (st, v, a) => S(Methods.Strip(SoftStr(v), Str(a, 0, "chars"), true, true));
        f["truncate"] = (st, v, a) =>
        {
            string s = SoftStr(v);
            long length = Int(a, 0, "length", 255);
            bool killwords = Flag(a, 1, "killwords");
            string end = Str(a, 2, "end") ?? "...";
            long leeway = Int(a, 3, "leeway", 5);
            if (length < end.Length) throw Err.Runtime($"expected length >= {end.Length}, got {length}");
            if (leeway < 0) throw Err.Runtime($"expected leeway >= 0, got {leeway}");
            var chars = Py.Chars(s);
            if (chars.Length <= length + leeway) return S(s);
            string head = string.Concat(chars.Take((int)(length - end.Length)));
            if (killwords) return S(head + end);
            int sp = head.LastIndexOf(' ');
            return S((sp >= 0 ? head.Substring(0, sp) : head) + end);
        };
        f["unique"] = (st, v, a) =>
        {
            bool cs = Flag(a, 0, "case_sensitive");
            var key = AttrGetter(st, a.Get(1, "attribute"), cs ? null : IgnoreCase);
            var seen = new HashSet<JinjaValue>(KeyComparer.Instance);
            var result = new List<JinjaValue>();
            foreach (var item in Ops.Iterate(st, v))
                if (seen.Add(key(item))) result.Add(item);
            return new JinjaList(result);
        };
        f["wordcount"] = (st, v, a) =>
        {
            int n = 0;
            bool inWord = false;
            foreach (char c in SoftStr(v))
            {
                bool w = char.IsLetterOrDigit(c) || c == '_' || char.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.ConnectorPunctuation;
                if (w && !inWord) n++;
                inWord = w;
            }
            return JinjaInt.Of(n);
        };
    }

    private static JinjaValue MinMax(RenderState st, JinjaValue v, JinjaArgs a, bool max)
    {
        bool cs = Flag(a, 0, "case_sensitive");
        var key = AttrGetter(st, a.Get(1, "attribute"), cs ? null : IgnoreCase);
        var items = Ops.Iterate(st, v);
        if (items.Count == 0) return new JinjaUndefined("No aggregated item, sequence was empty.");
        var best = items[0];
        var bestKey = key(best);
        for (int i = 1; i < items.Count; i++)
        {
            var k = key(items[i]);
            int c = Py.Compare(k, bestKey);
            if (max ? c > 0 : c < 0) { best = items[i]; bestKey = k; }
        }
        return best;
    }

    private static JinjaValue SelectOrReject(RenderState st, JinjaValue v, JinjaArgs a, bool attr, bool select)
    {
        int off = attr ? 1 : 0;
        Func<JinjaValue, JinjaValue> trans = x => x;
        if (attr)
        {
            if (a.Positional.Count == 0) throw Err.Runtime("Missing parameter for attribute name");
            trans = AttrGetter(st, a.Positional[0]);
        }
        Func<JinjaValue, bool> test;
        if (a.Positional.Count > off)
        {
            string name = Py.Str(a.Positional[off]);
            var rest = Rest(a, off + 1);
            test = x => CallTest(st, name, x, rest);
        }
        else test = x => x.IsTruthy;
        var result = new List<JinjaValue>();
        foreach (var item in Ops.Iterate(st, v))
        {
            st.Step();
            if (test(trans(item)) == select) result.Add(item);
        }
        return new JinjaList(result);
    }

    /// <summary>Jinja2's <c>title</c> filter: words start after '-', whitespace, '(', '{', '[' or '&lt;'.</summary>
    private static string JinjaTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool atStart = true;
        foreach (char c in s)
        {
            bool sep = c is '-' or '(' or '{' or '[' or '<' || Py.IsSpace(c);
            if (sep) { sb.Append(c); atStart = true; continue; }
            sb.Append(atStart ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            atStart = false;
        }
        return sb.ToString();
    }

    public static string Escape(string s)
    {
        if (s.AsSpan().IndexOfAny("&<>'\"") < 0) return s;
        var sb = new StringBuilder(s.Length + 16);
        foreach (char c in s)
        {
            sb.Append(c switch
            {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '\'' => "&#39;",
                '"' => "&#34;",
                _ => null,
            } ?? c.ToString());
        }
        return sb.ToString();
    }

    private static double? ToFloat(JinjaValue v)
    {
        switch (v)
        {
            case JinjaFloat f: return f.Value;
            case JinjaInt i: return Py.ToDouble(i);
            case JinjaBool b: return b.Value ? 1 : 0;
            case JinjaString s:
            {
                string t = s.Value.Trim().Replace("_", "");
                string lower = t.ToLowerInvariant();
                if (lower is "inf" or "+inf" or "infinity" or "+infinity") return double.PositiveInfinity;
                if (lower is "-inf" or "-infinity") return double.NegativeInfinity;
                if (lower is "nan" or "+nan" or "-nan") return double.NaN;
                if (t.Length > 0 && (char.IsAsciiDigit(t[^1]) || t[^1] == '.') &&
                    double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) return d;
                return null;
            }
            default: return null;
        }
    }

    private static bool TryParseInt(string s, int radix, out long value)
    {
        value = 0;
        string t = s.Trim();
        bool neg = false;
        if (t.StartsWith('-') || t.StartsWith('+')) { neg = t[0] == '-'; t = t.Substring(1); }
        if (radix == 0 || radix == 16 || radix == 8 || radix == 2)
        {
            string lower = t.ToLowerInvariant();
            if (lower.StartsWith("0x") && radix is 0 or 16) { radix = 16; t = t.Substring(2); }
            else if (lower.StartsWith("0o") && radix is 0 or 8) { radix = 8; t = t.Substring(2); }
            else if (lower.StartsWith("0b") && radix is 0 or 2) { radix = 2; t = t.Substring(2); }
            else if (radix == 0) radix = 10;
        }
        if (t.Length == 0 || t.StartsWith('_') || t.EndsWith('_') || t.Contains("__")) return false;
        t = t.Replace("_", "");
        if (radix < 2 || radix > 36) return false;
        try
        {
            foreach (char c in t)
            {
                int d = char.IsAsciiDigit(c) ? c - '0' : char.IsAsciiLetter(c) ? char.ToLowerInvariant(c) - 'a' + 10 : 99;
                if (d >= radix) return false;
                value = checked(value * radix + d);
            }
        }
        catch (OverflowException)
        {
            return false;
        }
        if (neg) value = -value;
        return true;
    }

    // ------------------------------------------------------------------ tests

    private static void RegisterTests()
    {
        var t = Tests;
        t["defined"] = (st, v, a) => v is not JinjaUndefined;
        t["undefined"] = (st, v, a) => v is JinjaUndefined;
        t["none"] = (st, v, a) => v is JinjaNone;
        t["boolean"] = (st, v, a) => v is JinjaBool;
        t["true"] = (st, v, a) => v is JinjaBool { Value: true };
        t["false"] = (st, v, a) => v is JinjaBool { Value: false };
        t["string"] = (st, v, a) => v is JinjaString;
        t["number"] = (st, v, a) => Py.IsNumber(v);
        t["integer"] = (st, v, a) => v is JinjaInt;
        t["float"] = (st, v, a) => v is JinjaFloat;
        t["mapping"] = (st, v, a) => v is JinjaDict;
        t["iterable"] = (st, v, a) => v is JinjaString or JinjaList or JinjaDict or JinjaUndefined;
        t["sequence"] = (st, v, a) => v is JinjaString or JinjaList or JinjaDict or JinjaUndefined;
        t["callable"] = (st, v, a) => v is JinjaCallable;
        t["odd"] = (st, v, a) => Py.Equal(Ops.Arith("%", IntArg(v), JinjaInt.Of(2)), JinjaInt.Of(1));
        t["even"] = (st, v, a) => Py.Equal(Ops.Arith("%", IntArg(v), JinjaInt.Of(2)), JinjaInt.Of(0));
        t["divisibleby"] = (st, v, a) =>
        {
            var num = a.Get(0, "num") ?? throw Err.Type("divisibleby() missing required argument 'num'");
            return Py.Equal(Ops.Binary(st, "%", IntArg(v), num), JinjaInt.Of(0));
        };
        TestFn eq = (st, v, a) => Py.Equal(v, Other(a));
        TestFn ne = (st, v, a) => !Py.Equal(v, Other(a));
        TestFn lt = (st, v, a) => Py.CompareOp("<", v, Other(a));
        TestFn le = (st, v, a) => Py.CompareOp("<=", v, Other(a));
        TestFn gt = (st, v, a) => Py.CompareOp(">", v, Other(a));
        TestFn ge = (st, v, a) => Py.CompareOp(">=", v, Other(a));
        t["eq"] = t["equalto"] = t["=="] = eq;
        t["ne"] = t["!="] = ne;
        t["lt"] = t["lessthan"] = t["<"] = lt;
        t["le"] = t["<="] = le;
        t["gt"] = t["greaterthan"] = t[">"] = gt;
        t["ge"] = t[">="] = ge;
        t["in"] = (st, v, a) => Ops.In(v, a.Get(0, "seq") ?? throw Err.Type("in() missing required argument 'seq'"));
        t["sameas"] = (st, v, a) =>
        {
            var other = Other(a);
            if (ReferenceEquals(v, other)) return true;
            // None/True/False are singletons in Python; small ints are cached too.
            return (v, other) switch
            {
                (JinjaInt x, JinjaInt y) => x.Value == y.Value && x.Value >= -5 && x.Value <= 256,
                _ => false,
            };
        };
        t["upper"] = (st, v, a) => Methods.Call(st, S(SoftStr(v)), "isupper", JinjaArgs.Empty).IsTruthy;
        t["lower"] = (st, v, a) => Methods.Call(st, S(SoftStr(v)), "islower", JinjaArgs.Empty).IsTruthy;
        t["escaped"] = (st, v, a) => false;
        t["filter"] = (st, v, a) => v is JinjaString s && Filters.ContainsKey(s.Value);
        t["test"] = (st, v, a) => v is JinjaString s && Tests.ContainsKey(s.Value);
    }

    private static JinjaValue IntArg(JinjaValue v) => v is JinjaUndefined u ? throw Err.Undefined(u) : v;

    private static JinjaValue Other(JinjaArgs a) =>
        a.Get(0, "other") ?? throw Err.Type("test missing required argument 'other'");

    // ------------------------------------------------------------------ globals

    private static void RegisterGlobals()
    {
        var g = Globals;
        g["range"] = new JinjaFunction("range", (st, a) =>
        {
            long start = 0, stop, step = 1;
            long ArgAt(int i) => Py.IsIntLike(a.Positional[i], out long x) ? x
                : throw Err.Type($"'{a.Positional[i].TypeName}' object cannot be interpreted as an integer");
            switch (a.Positional.Count)
            {
                case 1: stop = ArgAt(0); break;
                case 2: start = ArgAt(0); stop = ArgAt(1); break;
                case 3: start = ArgAt(0); stop = ArgAt(1); step = ArgAt(2); break;
                default: throw Err.Type($"range expected 1 to 3 arguments, got {a.Positional.Count}");
            }
            if (step == 0) throw Err.Runtime("range() arg 3 must not be zero");
            long count = step > 0
                ? (stop > start ? (long)(((decimal)stop - start + step - 1) / step) : 0)
                : (stop < start ? (long)(((decimal)start - stop - step - 1) / -step) : 0);
            if (count > st.Options.MaxRangeLength)
                throw Err.Limit(TemplateLimit.RangeLength, $"range() of {count} items exceeds MaxRangeLength ({st.Options.MaxRangeLength})");
            st.Charge(count);
            var items = new List<JinjaValue>((int)count);
            for (long i = 0, x = start; i < count; i++, x += step) items.Add(JinjaInt.Of(x));
            return new JinjaList(items);
        });
        g["dict"] = new JinjaFunction("dict", (st, a) =>
        {
            var d = new JinjaDict();
            if (a.Positional.Count > 1) throw Err.Type($"dict expected at most 1 argument, got {a.Positional.Count}");
            if (a.Positional.Count == 1) Methods.Call(st, d, "update", new JinjaArgs([a.Positional[0]], []));
            foreach (var (k, v) in a.Named) d.Set(k, v);
            return d;
        });
        g["namespace"] = new JinjaFunction("namespace", (st, a) =>
        {
            var ns = new JinjaNamespace();
            if (a.Positional.Count > 1) throw Err.Type($"dict expected at most 1 argument, got {a.Positional.Count}");
            if (a.Positional.Count == 1)
            {
                var d = new JinjaDict();
                Methods.Call(st, d, "update", new JinjaArgs([a.Positional[0]], []));
                foreach (var (k, v) in d.Map) ns.Set(Py.Str(k), v);
            }
            foreach (var (k, v) in a.Named) ns.Set(k, v);
            return ns;
        });
        g["raise_exception"] = new JinjaFunction("raise_exception", (st, a) =>
        {
            var msg = a.Get(0, "message");
            throw new TemplateException(TemplateErrorKind.Raised, msg is null ? "raise_exception() called" : Py.Str(msg));
        });
        g["strftime_now"] = new JinjaFunction("strftime_now", (st, a) =>
        {
            var fmt = a.Get(0, "format") as JinjaString ?? throw Err.Type("strftime_now() requires a format string");
            return S(Strftime.Format(st.Now(), fmt.Value));
        });
        g["joiner"] = new JinjaFunction("joiner", (st, a) =>
        {
            string sep = Str(a, 0, "sep") ?? ", ";
            bool used = false;
            return new JinjaFunction("joiner", (st2, a2) =>
            {
                if (!used) { used = true; return JinjaString.Empty; }
                return S(sep);
            });
        });
        g["cycler"] = new JinjaFunction("cycler", (st, a) =>
        {
            if (a.Positional.Count == 0) throw Err.Runtime("at least one item has to be provided");
            return new CyclerObject(a.Positional.ToList());
        });
    }
}

/// <summary>Jinja2's <c>cycler(*items)</c>: <c>.next()</c>, <c>.reset()</c>, <c>.current</c>.</summary>
internal sealed class CyclerObject(List<JinjaValue> items) : JinjaValue
{
    private int _pos;
    internal override string TypeName => "Cycler";

    public JinjaValue Attr(string name) => name switch
    {
        "current" => items[_pos],
        "items" => new JinjaList(items.ToList()),
        "next" => new JinjaFunction("next", (st, a) =>
        {
            var v = items[_pos];
            _pos = (_pos + 1) % items.Count;
            return v;
        }),
        "reset" => new JinjaFunction("reset", (st, a) =>
        {
            _pos = 0;
            return JinjaNone.Instance;
        }),
        _ => Ops.MissingAttr(this, name),
    };
}
