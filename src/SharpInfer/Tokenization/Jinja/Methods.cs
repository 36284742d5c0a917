using System.Globalization;
using System.Text;

namespace SharpInfer.Tokenization.Jinja;

/// <summary>Python methods of str, list, tuple and dict values that templates call
/// (<c>s.strip()</c>, <c>d.items()</c>, <c>l.append(x)</c>, ...).</summary>
internal static class Methods
{
    private static readonly HashSet<string> StrMethods = new(StringComparer.Ordinal)
    {
        "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "upper", "lower", "title",
        "capitalize", "swapcase", "casefold", "replace", "find", "rfind", "index", "rindex", "count", "join", "format",
        "splitlines", "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower", "istitle", "isnumeric",
        "isdecimal", "zfill", "center", "ljust", "rjust", "removeprefix", "removesuffix", "partition", "rpartition",
    };

    private static readonly HashSet<string> ListMethods = new(StringComparer.Ordinal)
        { "append", "pop", "insert", "extend", "index", "count", "remove", "reverse", "sort", "copy", "clear" };

    private static readonly HashSet<string> TupleMethods = new(StringComparer.Ordinal) { "index", "count" };

    private static readonly HashSet<string> DictMethods = new(StringComparer.Ordinal)
        { "items", "keys", "values", "get", "update", "pop", "setdefault", "copy", "clear" };

    public static bool IsMethod(JinjaValue obj, string name) => obj switch
    {
        JinjaString => StrMethods.Contains(name),
        JinjaList l => l.IsTuple ? TupleMethods.Contains(name) : ListMethods.Contains(name),
        JinjaDict => DictMethods.Contains(name),
        _ => false,
    };

    public static JinjaValue Bind(JinjaValue obj, string name) =>
        new JinjaFunction(name, (st, a) => Call(st, obj, name, a));

    public static JinjaValue Call(RenderState st, JinjaValue obj, string name, JinjaArgs a) => obj switch
    {
        JinjaString s => CallStr(st, s.Value, name, a),
        JinjaList l => CallList(st, l, name, a),
        JinjaDict d => CallDict(st, d, name, a),
        _ => throw Err.Type($"'{obj.TypeName}' object has no attribute '{name}'"),
    };

    private static JinjaValue Arg(JinjaArgs a, int i, string name) => a.Get(i, name) ?? JinjaNone.Instance;

    private static string? OptStr(JinjaArgs a, int i, string name, string method)
    {
        var v = a.Get(i, name);
        return v switch
        {
            null or JinjaNone => null,
            JinjaString s => s.Value,
            _ => throw Err.Type($"{method} arg must be None or str"),
        };
    }

    private static string ReqStr(JinjaArgs a, int i, string name, string method)
    {
        var v = a.Get(i, name);
        return v switch
        {
            JinjaString s => s.Value,
            null => throw Err.Type($"{method}() missing required argument '{name}'"),
            JinjaUndefined u => throw Err.Undefined(u),
            _ => throw Err.Type($"must be str, not {v.TypeName}"),
        };
    }

    private static long ReqInt(JinjaArgs a, int i, string name, string method, long? def = null)
    {
        var v = a.Get(i, name);
        if (v is null or JinjaNone && def is not null) return def.Value;
        if (v is not null && Py.IsIntLike(v, out long l)) return l;
        if (v is JinjaUndefined u) throw Err.Undefined(u);
        throw Err.Type($"{method}() argument '{name}' must be an integer");
    }

    private static JinjaString S(string s) => new(s);

    // ------------------------------------------------------------------ str

    private static JinjaValue CallStr(RenderState st, string s, string name, JinjaArgs a)
    {
        switch (name)
        {
            case "strip": return S(Strip(s, OptStr(a, 0, "chars", name), true, true));
            case "lstrip": return S(Strip(s, OptStr(a, 0, "chars", name), true, false));
            case "rstrip": return S(Strip(s, OptStr(a, 0, "chars", name), false, true));
            case "split":
            case "rsplit":
            {
                var parts = Split(s, OptStr(a, 0, "sep", name), ReqInt(a, 1, "maxsplit", name, -1), name == "rsplit");
                st.Charge(parts.Count);
                return new JinjaList(parts.Select(p => (JinjaValue)S(p)).ToList());
            }
            case "startswith":
            case "endswith":
            {
                var arg = a.Get(0, name == "startswith" ? "prefix" : "suffix") ?? throw Err.Type($"{name}() takes at least 1 argument (0 given)");
                string target = SliceArgs(s, a, 1);
                IEnumerable<JinjaValue> options = arg is JinjaList { IsTuple: true } t ? t.Items : [arg];
                foreach (var o in options)
                {
                    if (o is not JinjaString os)
                        throw Err.Type($"{name} first arg must be str or a tuple of str, not {o.TypeName}");
                    bool hit = name == "startswith" ? target.StartsWith(os.Value, StringComparison.Ordinal) : target.EndsWith(os.Value, StringComparison.Ordinal);
                    if (hit) return JinjaBool.TrueValue;
                }
                return JinjaBool.FalseValue;
            }
            case "upper": return S(Upper(s));
            case "lower":
            case "casefold": return S(Lower(s));
            case "title": return S(Title(s));
            case "capitalize": return S(Capitalize(s));
            case "swapcase":
            {
                var sb = new StringBuilder(s.Length);
                foreach (char c in s) sb.Append(char.IsUpper(c) ? char.ToLowerInvariant(c) : char.IsLower(c) ? char.ToUpperInvariant(c) : c);
                return S(sb.ToString());
            }
            case "replace":
            {
                string old = ReqStr(a, 0, "old", name), nw = ReqStr(a, 1, "new", name);
                long count = ReqInt(a, 2, "count", name, -1);
                var r = Replace(s, old, nw, count, st);
                return S(r);
            }
            case "find":
            case "rfind":
            case "index":
            case "rindex":
            {
                string sub = ReqStr(a, 0, "sub", name);
                int offset = CpOffset(s, a, 1, out string target);
                int i = name is "find" or "index" ? target.IndexOf(sub, StringComparison.Ordinal) : target.LastIndexOf(sub, StringComparison.Ordinal);
                if (i < 0)
                {
                    if (name is "index" or "rindex") throw Err.Runtime("substring not found");
                    return JinjaInt.Of(-1);
                }
                return JinjaInt.Of(offset + Py.Len(target.Substring(0, i)));
            }
            case "count":
            {
                string sub = ReqStr(a, 0, "sub", name);
                CpOffset(s, a, 1, out string target);
                if (sub.Length == 0) return JinjaInt.Of(Py.Len(target) + 1);
                int n = 0, p = 0;
                while ((p = target.IndexOf(sub, p, StringComparison.Ordinal)) >= 0) { n++; p += sub.Length; }
                return JinjaInt.Of(n);
            }
            case "join":
            {
                var items = Ops.Iterate(st, a.Get(0, "iterable") ?? throw Err.Type("join() takes exactly one argument (0 given)"));
                var sb = new StringBuilder();
                for (int i = 0; i < items.Count; i++)
                {
                    if (items[i] is not JinjaString str) throw Err.Type($"sequence item {i}: expected str instance, {items[i].TypeName} found");
                    if (i > 0) sb.Append(s);
                    sb.Append(str.Value);
                    st.CheckLength(sb.Length);
                }
                return S(sb.ToString());
            }
            case "format":
            {
                var r = PyFormat.StrFormat(s, a);
                st.CheckLength(r.Length);
                return S(r);
            }
            case "splitlines":
            {
                bool keep = (a.Get(0, "keepends") ?? JinjaBool.FalseValue).IsTruthy;
                return new JinjaList(Py.SplitLines(s, keep).Select(x => (JinjaValue)S(x)).ToList());
            }
            case "isdigit":
            case "isdecimal": return Py.Bool(s.Length > 0 && s.All(char.IsDigit));
            case "isnumeric": return Py.Bool(s.Length > 0 && s.All(char.IsNumber));
            case "isalpha": return Py.Bool(s.Length > 0 && s.All(c => char.IsLetter(c) || char.IsSurrogate(c)));
            case "isalnum": return Py.Bool(s.Length > 0 && s.All(c => char.IsLetterOrDigit(c) || char.IsNumber(c)));
            case "isspace": return Py.Bool(Py.IsSpace(s));
            case "islower": return Py.Bool(s.Any(IsCased) && !s.Any(c => char.IsUpper(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.TitlecaseLetter));
            case "isupper": return Py.Bool(s.Any(IsCased) && !s.Any(c => char.IsLower(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.TitlecaseLetter));
            case "istitle": return Py.Bool(s.Any(IsCased) && Title(s) == s);
            case "zfill":
            {
                long width = ReqInt(a, 0, "width", name);
                int len = Py.Len(s);
                if (width <= len) return S(s);
                st.CheckLength(width);
                int signLen = s.Length > 0 && (s[0] == '+' || s[0] == '-') ? 1 : 0;
                return S(s.Substring(0, signLen) + new string('0', (int)(width - len)) + s.Substring(signLen));
            }
            case "center":
            case "ljust":
            case "rjust":
            {
                long width = ReqInt(a, 0, "width", name);
                string fill = OptStr(a, 1, "fillchar", name) ?? " ";
                if (Py.Len(fill) != 1) throw Err.Type("The fill character must be exactly one character long");
                st.CheckLength(width);
                return S(Pad(s, (int)Math.Max(0, width), fill, name));
            }
            case "removeprefix":
            {
                string p = ReqStr(a, 0, "prefix", name);
                return S(p.Length > 0 && s.StartsWith(p, StringComparison.Ordinal) ? s.Substring(p.Length) : s);
            }
            case "removesuffix":
            {
                string p = ReqStr(a, 0, "suffix", name);
                return S(p.Length > 0 && s.EndsWith(p, StringComparison.Ordinal) ? s.Substring(0, s.Length - p.Length) : s);
            }
            case "partition":
            case "rpartition":
            {
                string sep = ReqStr(a, 0, "sep", name);
                if (sep.Length == 0) throw Err.Runtime("empty separator");
                int i = name == "partition" ? s.IndexOf(sep, StringComparison.Ordinal) : s.LastIndexOf(sep, StringComparison.Ordinal);
                List<JinjaValue> parts = i < 0
                    ? (name == "partition" ? [S(s), JinjaString.Empty, JinjaString.Empty] : [JinjaString.Empty, JinjaString.Empty, S(s)])
                    : [S(s.Substring(0, i)), S(sep), S(s.Substring(i + sep.Length))];
                return new JinjaList(parts, isTuple: true);
            }
        }
        throw Err.Type($"'str' object has no attribute '{name}'");
    }

    /// <summary>For find/count: applies optional start/end (code point offsets); returns the start offset.</summary>
    private static int CpOffset(string s, JinjaArgs a, int first, out string target)
    {
        var start = a.Get(first, "start");
        var end = a.Get(first + 1, "end");
        if (start is null or JinjaNone && end is null or JinjaNone) { target = s; return 0; }
        var chars = Py.Chars(s);
        long? st = start is null or JinjaNone ? null : Py.IsIntLike(start, out long x) ? x : throw Err.Type("slice indices must be integers or None");
        long? en = end is null or JinjaNone ? null : Py.IsIntLike(end, out long y) ? y : throw Err.Type("slice indices must be integers or None");
        var idx = Py.SliceIndices(chars.Length, st, en, 1);
        target = string.Concat(idx.Select(i => chars[i]));
        if (idx.Count > 0) return idx[0];
        long lo = st ?? 0;
        if (lo < 0) lo = Math.Max(0, lo + chars.Length);
        return (int)Math.Min(lo, chars.Length);
    }

    private static string SliceArgs(string s, JinjaArgs a, int first)
    {
        CpOffset(s, a, first, out string target);
        return target;
    }

    private static bool IsCased(char c) => char.IsUpper(c) || char.IsLower(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.TitlecaseLetter;

    public static string Strip(string s, string? chars, bool left, bool right)
    {
        if (!Py.HasSurrogates(s) && (chars is null || !Py.HasSurrogates(chars)))
        {
            int lo = 0, hi = s.Length;
            if (chars is null)
            {
                if (left) while (lo < hi && Py.IsSpace(s[lo])) lo++;
                if (right) while (hi > lo && Py.IsSpace(s[hi - 1])) hi--;
            }
            else
            {
                if (left) while (lo < hi && chars.Contains(s[lo])) lo++;
                if (right) while (hi > lo && chars.Contains(s[hi - 1])) hi--;
            }
            return lo == 0 && hi == s.Length ? s : s.Substring(lo, hi - lo);
        }
        Func<string, bool> strip;
        if (chars is null) strip = c => c.Length == 1 && Py.IsSpace(c[0]);
        else
        {
            var set = new HashSet<string>(Py.Chars(chars), StringComparer.Ordinal);
            strip = set.Contains;
        }
        var cs = Py.Chars(s);
        int a = 0, b = cs.Length;
        if (left) while (a < b && strip(cs[a])) a++;
        if (right) while (b > a && strip(cs[b - 1])) b--;
        return string.Concat(cs[a..b]);
    }

    public static List<string> Split(string s, string? sep, long maxsplit, bool fromRight)
    {
        var result = new List<string>();
        if (maxsplit < 0) maxsplit = long.MaxValue;
        if (sep is null)
        {
            if (!fromRight)
            {
                int i = 0, n = s.Length;
                while (true)
                {
                    while (i < n && Py.IsSpace(s[i])) i++;
                    if (i >= n) break;
                    if (result.Count >= maxsplit)
                    {
                        result.Add(s.Substring(i));
                        break;
                    }
                    int j = i;
                    while (j < n && !Py.IsSpace(s[j])) j++;
                    result.Add(s.Substring(i, j - i));
                    i = j;
                }
            }
            else
            {
                int j = s.Length;
                while (true)
                {
                    while (j > 0 && Py.IsSpace(s[j - 1])) j--;
                    if (j <= 0) break;
                    if (result.Count >= maxsplit)
                    {
                        result.Add(s.Substring(0, j));
                        break;
                    }
                    int i = j;
                    while (i > 0 && !Py.IsSpace(s[i - 1])) i--;
                    result.Add(s.Substring(i, j - i));
                    j = i;
                }
                result.Reverse();
            }
            return result;
        }
        if (sep.Length == 0) throw Err.Runtime("empty separator");
        if (!fromRight)
        {
            int start = 0;
            while (result.Count < maxsplit)
            {
                int k = s.IndexOf(sep, start, StringComparison.Ordinal);
                if (k < 0) break;
                result.Add(s.Substring(start, k - start));
                start = k + sep.Length;
            }
            result.Add(s.Substring(start));
        }
        else
        {
            int end = s.Length;
            int splits = 0;
            while (splits < maxsplit && end >= sep.Length)
            {
                int k = s.LastIndexOf(sep, end - 1, end, StringComparison.Ordinal);
                if (k < 0) break;
                result.Add(s.Substring(k + sep.Length, end - k - sep.Length));
                end = k;
                splits++;
            }
            result.Add(s.Substring(0, end));
            result.Reverse();
        }
        return result;
    }

    public static string Replace(string s, string old, string nw, long count, RenderState? st = null)
    {
        if (count < 0) count = long.MaxValue;
        if (count == 0) return s;
        var sb = new StringBuilder();
        if (old.Length == 0)
        {
            var chars = Py.Chars(s);
            long done = 0;
            foreach (var c in chars)
            {
                if (done < count) { sb.Append(nw); done++; }
                sb.Append(c);
                st?.CheckLength(sb.Length);
            }
            if (done < count) sb.Append(nw);
            return sb.ToString();
        }
        int start = 0;
        long n = 0;
        while (n < count)
        {
            int k = s.IndexOf(old, start, StringComparison.Ordinal);
            if (k < 0) break;
            sb.Append(s, start, k - start).Append(nw);
            st?.CheckLength(sb.Length);
            start = k + old.Length;
            n++;
        }
        sb.Append(s, start, s.Length - start);
        return sb.ToString();
    }

    /// <summary>Python's <c>str.upper()</c>: invariant mapping plus the common full (one-to-many) mappings.</summary>
    public static string Upper(string s)
    {
        string u = s.ToUpperInvariant();
        if (u.AsSpan().IndexOfAny("ßŉǰΐΰևﬀﬁﬂﬃﬄﬅﬆ") < 0) return u;
        var sb = new StringBuilder(u.Length + 4);
        foreach (char c in u)
        {
            sb.Append(c switch
            {
                'ß' => "SS",
                'ŉ' => "\u02BCN",
                'ǰ' => "J\u030C",
                'ΐ' => "\u0399\u0308\u0301",
                'ΰ' => "\u03A5\u0308\u0301",
                'և' => "\u0535\u0552",
                'ﬀ' => "FF",
                'ﬁ' => "FI",
                'ﬂ' => "FL",
                'ﬃ' => "FFI",
                'ﬄ' => "FFL",
                'ﬅ' or 'ﬆ' => "ST",
                _ => null,
            } ?? c.ToString());
        }
        return sb.ToString();
    }

    /// <summary>Python's <c>str.lower()</c>: invariant mapping plus U+0130 → "i̇".</summary>
    public static string Lower(string s)
    {
        string l = s.ToLowerInvariant();
        return s.Contains('\u0130') ? l.Replace("\u0130", "i\u0307") : l;
    }

    /// <summary>Python's <c>str.title()</c>: a cased character is uppercased after an uncased one, lowercased otherwise.</summary>
    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevCased = false;
        foreach (char c in s)
        {
            bool cased = IsCased(c);
            if (cased) sb.Append(prevCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            else sb.Append(c);
            prevCased = cased;
        }
        return sb.ToString();
    }

    public static string Capitalize(string s)
    {
        if (s.Length == 0) return s;
        int first = char.IsHighSurrogate(s[0]) && s.Length > 1 ? 2 : 1;
        return s.Substring(0, first).ToUpperInvariant() + s.Substring(first).ToLowerInvariant();
    }

    public static string Pad(string s, int width, string fill, string how)
    {
        int len = Py.Len(s);
        if (width <= len) return s;
        int marg = width - len;
        int left = how switch
        {
            "ljust" => 0,
            "rjust" => marg,
            _ => marg / 2 + (marg & width & 1),
        };
        var sb = new StringBuilder();
        for (int i = 0; i < left; i++) sb.Append(fill);
        sb.Append(s);
        for (int i = 0; i < marg - left; i++) sb.Append(fill);
        return sb.ToString();
    }

    // ------------------------------------------------------------------ list / tuple

    private static JinjaValue CallList(RenderState st, JinjaList l, string name, JinjaArgs a)
    {
        var items = l.Items;
        if (l.IsTuple && !TupleMethods.Contains(name)) throw Err.Type($"'tuple' object has no attribute '{name}'");
        switch (name)
        {
            case "append":
                st.CheckLength(items.Count + 1);
                items.Add(a.Get(0, "object") ?? throw Err.Type("append() takes exactly one argument (0 given)"));
                return JinjaNone.Instance;
            case "extend":
            {
                var more = Ops.Iterate(st, a.Get(0, "iterable") ?? throw Err.Type("extend() takes exactly one argument (0 given)"));
                st.CheckLength((long)items.Count + more.Count);
                items.AddRange(more);
                return JinjaNone.Instance;
            }
            case "insert":
            {
                long i = ReqInt(a, 0, "index", name);
                var v = a.Get(1, "object") ?? throw Err.Type("insert expected 2 arguments, got 1");
                if (i < 0) i = Math.Max(0, i + items.Count);
                st.CheckLength(items.Count + 1);
                items.Insert((int)Math.Min(i, items.Count), v);
                return JinjaNone.Instance;
            }
            case "pop":
            {
                if (items.Count == 0) throw Err.Runtime("pop from empty list");
                long i = ReqInt(a, 0, "index", name, -1);
                if (i < 0) i += items.Count;
                if (i < 0 || i >= items.Count) throw Err.Runtime("pop index out of range");
                var v = items[(int)i];
                items.RemoveAt((int)i);
                return v;
            }
            case "remove":
            {
                var x = a.Get(0, "value") ?? throw Err.Type("remove() takes exactly one argument (0 given)");
                int i = items.FindIndex(v => Py.Equal(v, x));
                if (i < 0) throw Err.Runtime("list.remove(x): x not in list");
                items.RemoveAt(i);
                return JinjaNone.Instance;
            }
            case "index":
            {
                var x = a.Get(0, "value") ?? throw Err.Type("index() takes at least 1 argument (0 given)");
                int i = items.FindIndex(v => Py.Equal(v, x));
                if (i < 0) throw Err.Runtime($"{Py.Repr(x)} is not in list");
                return JinjaInt.Of(i);
            }
            case "count":
            {
                var x = a.Get(0, "value") ?? throw Err.Type("count() takes exactly one argument (0 given)");
                return JinjaInt.Of(items.Count(v => Py.Equal(v, x)));
            }
            case "reverse":
                items.Reverse();
                return JinjaNone.Instance;
            case "sort":
            {
                bool reverse = (a.Get(-1, "reverse") ?? JinjaBool.FalseValue).IsTruthy;
                st.Charge(items.Count);
                var sorted = Sorting.StableSort(items, (x, y) => Py.Compare(x, y), reverse);
                items.Clear();
                items.AddRange(sorted);
                return JinjaNone.Instance;
            }
            case "copy": return new JinjaList(new List<JinjaValue>(items));
            case "clear":
                items.Clear();
                return JinjaNone.Instance;
        }
        throw Err.Type($"'list' object has no attribute '{name}'");
    }

    // ------------------------------------------------------------------ dict

    private static JinjaValue CallDict(RenderState st, JinjaDict d, string name, JinjaArgs a)
    {
        switch (name)
        {
            case "items":
                st.Charge(d.Map.Count);
                return new JinjaList(d.Map.Select(kv => (JinjaValue)new JinjaList([kv.Key, kv.Value], isTuple: true)).ToList()) { ViewName = "dict_items" };
            case "keys":
                st.Charge(d.Map.Count);
                return new JinjaList(d.Map.Keys.ToList()) { ViewName = "dict_keys" };
            case "values":
                st.Charge(d.Map.Count);
                return new JinjaList(d.Map.Values.ToList()) { ViewName = "dict_values" };
            case "get":
            {
                var k = a.Get(0, "key") ?? throw Err.Type("get expected at least 1 argument, got 0");
                CheckHashable(k);
                return d.TryGet(k, out var v) ? v : Arg(a, 1, "default");
            }
            case "setdefault":
            {
                var k = a.Get(0, "key") ?? throw Err.Type("setdefault expected at least 1 argument, got 0");
                CheckHashable(k);
                if (d.TryGet(k, out var v)) return v;
                var def = Arg(a, 1, "default");
                d.Set(k, def);
                return def;
            }
            case "pop":
            {
                var k = a.Get(0, "key") ?? throw Err.Type("pop expected at least 1 argument, got 0");
                CheckHashable(k);
                if (d.TryGet(k, out var v))
                {
                    d.Map.Remove(k);
                    return v;
                }
                return a.Get(1, "default") ?? throw Err.Runtime($"KeyError: {Py.Repr(k)}");
            }
            case "update":
            {
                if (a.Positional.Count > 0)
                {
                    var other = a.Positional[0];
                    if (other is JinjaDict od)
                        foreach (var (k, v) in od.Map.ToList()) d.Set(k, v);
                    else
                        foreach (var pair in Ops.Iterate(st, other))
                        {
                            var kv = Ops.Iterate(st, pair);
                            if (kv.Count != 2) throw Err.Type("dictionary update sequence element has wrong length");
                            CheckHashable(kv[0]);
                            d.Set(kv[0], kv[1]);
                        }
                }
                foreach (var (k, v) in a.Named) d.Set(k, v);
                st.CheckLength(d.Map.Count);
                return JinjaNone.Instance;
            }
            case "copy":
            {
                var c = new JinjaDict();
                foreach (var (k, v) in d.Map) c.Set(k, v);
                return c;
            }
            case "clear":
                d.Map.Clear();
                return JinjaNone.Instance;
        }
        throw Err.Type($"'dict' object has no attribute '{name}'");
    }

    public static void CheckHashable(JinjaValue k)
    {
        if (k is JinjaDict || k is JinjaList { IsTuple: false }) throw Err.Type($"unhashable type: '{k.TypeName}'");
    }
}

/// <summary>Stable merge sort (Python's sorted() is stable, also with reverse=True) that lets the
/// comparison's exceptions through unchanged.</summary>
internal static class Sorting
{
    public static List<T> StableSort<T>(IReadOnlyList<T> items, Comparison<T> cmp, bool reverse = false)
    {
        var a = items.ToArray();
        var tmp = new T[a.Length];
        Comparison<T> c = reverse ? (x, y) => cmp(y, x) : cmp;
        Sort(a, tmp, 0, a.Length, c);
        return a.ToList();
    }

    private static void Sort<T>(T[] a, T[] tmp, int lo, int hi, Comparison<T> cmp)
    {
        if (hi - lo < 2) return;
        if (hi - lo <= 8)
        {
            for (int i = lo + 1; i < hi; i++)
            {
                var x = a[i];
                int j = i - 1;
                while (j >= lo && cmp(a[j], x) > 0) { a[j + 1] = a[j]; j--; }
                a[j + 1] = x;
            }
            return;
        }
        int mid = (lo + hi) / 2;
        Sort(a, tmp, lo, mid, cmp);
        Sort(a, tmp, mid, hi, cmp);
        int p = lo, q = mid, k = lo;
        while (p < mid && q < hi) tmp[k++] = cmp(a[q], a[p]) < 0 ? a[q++] : a[p++];
        while (p < mid) tmp[k++] = a[p++];
        while (q < hi) tmp[k++] = a[q++];
        Array.Copy(tmp, lo, a, lo, hi - lo);
    }
}
