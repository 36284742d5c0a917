using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace SharpInfer.Tokenization.Jinja;

/// <summary>Python semantics of values: str/repr, float repr, equality, ordering, truthiness.</summary>
internal static class Py
{
    // ------------------------------------------------------------------ str / repr

    public static string Str(JinjaValue v) => v switch
    {
        JinjaString s => s.Value,
        JinjaUndefined => "",
        JinjaInt i => i.Text,
        JinjaBool b => b.Value ? "True" : "False",
        JinjaNone => "None",
        JinjaFloat f => FloatRepr(f.Value),
        _ => Repr(v),
    };

    public static string Repr(JinjaValue v)
    {
        var sb = new StringBuilder();
        AppendRepr(sb, v, null);
        return sb.ToString();
    }

    public static void AppendRepr(StringBuilder sb, JinjaValue v, HashSet<JinjaValue>? seen)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        switch (v)
        {
            case JinjaString s: AppendStringRepr(sb, s.Value); return;
            case JinjaUndefined: sb.Append("Undefined"); return;
            case JinjaList list:
            {
                seen ??= new HashSet<JinjaValue>(ReferenceEqualityComparer.Instance);
                if (!seen.Add(list)) { sb.Append(list.IsTuple ? "(...)" : "[...]"); return; }
                if (list.ViewName is not null) sb.Append(list.ViewName).Append('(');
                sb.Append(list.IsTuple ? '(' : '[');
                for (int i = 0; i < list.Items.Count; i++)
                {
                    if (i > 0) sb.Append(", ");
                    AppendRepr(sb, list.Items[i], seen);
                }
                if (list.IsTuple && list.Items.Count == 1) sb.Append(',');
                sb.Append(list.IsTuple ? ')' : ']');
                if (list.ViewName is not null) sb.Append(')');
                seen.Remove(list);
                return;
            }
            case JinjaDict dict:
            {
                seen ??= new HashSet<JinjaValue>(ReferenceEqualityComparer.Instance);
                if (!seen.Add(dict)) { sb.Append("{...}"); return; }
                sb.Append('{');
                bool first = true;
                foreach (var (k, val) in dict.Map)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    AppendRepr(sb, k, seen);
                    sb.Append(": ");
                    AppendRepr(sb, val, seen);
                }
                sb.Append('}');
                seen.Remove(dict);
                return;
            }
            case JinjaNamespace ns:
            {
                seen ??= new HashSet<JinjaValue>(ReferenceEqualityComparer.Instance);
                if (!seen.Add(ns)) { sb.Append("<Namespace ...>"); return; }
                sb.Append("<Namespace {");
                bool first = true;
                foreach (var name in ns.Order)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    AppendStringRepr(sb, name);
                    sb.Append(": ");
                    AppendRepr(sb, ns.Attributes[name], seen);
                }
                sb.Append("}>");
                seen.Remove(ns);
                return;
            }
            case JinjaFunction fn: sb.Append("<function ").Append(fn.Name).Append('>'); return;
            case MacroValue m: sb.Append("<Macro '").Append(m.Name).Append("'>"); return;
            case LoopObject loop: sb.Append(loop.ToString()); return;
            case CyclerObject: sb.Append("<Cycler>"); return;
            case JinjaCallable: sb.Append("<function>"); return;
            default: sb.Append(Str(v)); return;
        }
    }

    /// <summary>Python's <c>repr(str)</c>.</summary>
    public static void AppendStringRepr(StringBuilder sb, string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        sb.Append(quote);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == quote || c == '\\') { sb.Append('\\').Append(c); continue; }
            switch (c)
            {
                case '\t': sb.Append("\\t"); continue;
                case '\n': sb.Append("\\n"); continue;
                case '\r': sb.Append("\\r"); continue;
            }
            if (c < ' ' || c == 0x7f) { sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture)); continue; }
            if (c < 0x7f) { sb.Append(c); continue; }
            int cp = c;
            int width = 1;
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                cp = char.ConvertToUtf32(c, s[i + 1]);
                width = 2;
            }
            if (IsPrintable(cp)) sb.Append(s, i, width);
            else if (cp <= 0xff) sb.Append("\\x").Append(cp.ToString("x2", CultureInfo.InvariantCulture));
            else if (cp <= 0xffff) sb.Append("\\u").Append(cp.ToString("x4", CultureInfo.InvariantCulture));
            else sb.Append("\\U").Append(cp.ToString("x8", CultureInfo.InvariantCulture));
            i += width - 1;
        }
        sb.Append(quote);
    }

    private static bool IsPrintable(int cp)
    {
        if (cp == ' ') return true;
        if (cp >= 0xD800 && cp <= 0xDFFF) return false;
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat switch
        {
            UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
                or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                or UnicodeCategory.SpaceSeparator => false,
            _ => true,
        };
    }

    /// <summary>Python's <c>repr(float)</c>: shortest round-trip digits; exponent form when the decimal
    /// exponent is below -4 or at least 16 (<c>1e-05</c>, <c>1e+16</c>), else fixed with at least one decimal.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        bool neg = r[0] == '-';
        if (neg) r = r.Substring(1);
        int exp = 0;
        int e = r.IndexOfAny(['E', 'e']);
        string mant = r;
        if (e >= 0)
        {
            exp = int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            mant = r.Substring(0, e);
        }
        int dot = mant.IndexOf('.');
        string intPart = dot >= 0 ? mant.Substring(0, dot) : mant;
        string fracPart = dot >= 0 ? mant.Substring(dot + 1) : "";
        string digits = intPart + fracPart;
        int decpt = intPart.Length + exp;
        // strip leading zeros
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') { lead++; decpt--; }
        digits = digits.Substring(lead).TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        var sb = new StringBuilder();
        if (neg) sb.Append('-');
        if (decpt > -4 && decpt <= 16)
        {
            if (decpt <= 0) sb.Append("0.").Append('0', -decpt).Append(digits);
            else if (decpt >= digits.Length) sb.Append(digits).Append('0', decpt - digits.Length).Append(".0");
            else sb.Append(digits, 0, decpt).Append('.').Append(digits, decpt, digits.Length - decpt);
        }
        else
        {
            sb.Append(digits[0]);
            if (digits.Length > 1) sb.Append('.').Append(digits, 1, digits.Length - 1);
            int x = decpt - 1;
            sb.Append('e').Append(x < 0 ? '-' : '+').Append(Math.Abs(x).ToString("00", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    // ------------------------------------------------------------------ equality / ordering

    public static bool IsNumber(JinjaValue v) => v is JinjaInt or JinjaFloat or JinjaBool;

    public static bool IsIntLike(JinjaValue v, out long value)
    {
        switch (v)
        {
            case JinjaInt i: value = i.Value; return i.Big is null;
            case JinjaBool b: value = b.Value ? 1 : 0; return true;
            default: value = 0; return false;
        }
    }

    public static double ToDouble(JinjaValue v) => v switch
    {
        JinjaInt i => i.Big is { } big ? (double)big : i.Value,
        JinjaFloat f => f.Value,
        JinjaBool b => b.Value ? 1 : 0,
        _ => throw Err.Type($"expected a number, got {v.TypeName}"),
    };

    /// <summary>Integer value of an int or bool at full precision.</summary>
    public static bool IsInteger(JinjaValue v, out System.Numerics.BigInteger value)
    {
        switch (v)
        {
            case JinjaInt i: value = i.BigValue; return true;
            case JinjaBool b: value = b.Value ? 1 : 0; return true;
            default: value = default; return false;
        }
    }

    public static bool Equal(JinjaValue a, JinjaValue b)
    {
        if (ReferenceEquals(a, b)) return a is not JinjaFloat f || !double.IsNaN(f.Value);
        if (IsNumber(a) && IsNumber(b))
        {
            if (IsIntLike(a, out long x) && IsIntLike(b, out long y)) return x == y;
            if (IsInteger(a, out var bx) && IsInteger(b, out var by)) return bx == by;
            return ToDouble(a) == ToDouble(b);
        }
        switch (a)
        {
            case JinjaString sa: return b is JinjaString sb && sa.Value == sb.Value;
            case JinjaNone: return b is JinjaNone;
            case JinjaUndefined: return b is JinjaUndefined;
            case JinjaList la:
            {
                RuntimeHelpers.EnsureSufficientExecutionStack();
                if (b is not JinjaList lb || la.IsTuple != lb.IsTuple || la.Items.Count != lb.Items.Count) return false;
                for (int i = 0; i < la.Items.Count; i++)
                    if (!Equal(la.Items[i], lb.Items[i])) return false;
                return true;
            }
            case JinjaDict da:
            {
                RuntimeHelpers.EnsureSufficientExecutionStack();
                if (b is not JinjaDict db || da.Map.Count != db.Map.Count) return false;
                foreach (var (k, v) in da.Map)
                    if (!db.Map.TryGetValue(k, out var other) || !Equal(v, other)) return false;
                return true;
            }
            default: return false;
        }
    }

    /// <summary>Python ordering (<c>&lt;</c> and friends); raises TypeError for unorderable types.</summary>
    public static int Compare(JinjaValue a, JinjaValue b, string op = "<")
    {
        if (IsNumber(a) && IsNumber(b))
        {
            if (IsIntLike(a, out long x) && IsIntLike(b, out long y)) return x.CompareTo(y);
            if (IsInteger(a, out var bx) && IsInteger(b, out var by)) return bx.CompareTo(by);
            double dx = ToDouble(a), dy = ToDouble(b);
            return dx < dy ? -1 : dx > dy ? 1 : 0; // NaN compares as "equal" here; callers use Less for exactness
        }
        if (a is JinjaString sa && b is JinjaString sb) return CompareCodePoints(sa.Value, sb.Value);
        if (a is JinjaList la && b is JinjaList lb && la.IsTuple == lb.IsTuple)
        {
            RuntimeHelpers.EnsureSufficientExecutionStack();
            int n = Math.Min(la.Items.Count, lb.Items.Count);
            for (int i = 0; i < n; i++)
            {
                if (Equal(la.Items[i], lb.Items[i])) continue;
                return Compare(la.Items[i], lb.Items[i], op);
            }
            return la.Items.Count.CompareTo(lb.Items.Count);
        }
        if (a is JinjaUndefined ua) throw Err.Undefined(ua);
        if (b is JinjaUndefined ub) throw Err.Undefined(ub);
        throw Err.Type($"'{op}' not supported between instances of '{a.TypeName}' and '{b.TypeName}'");
    }

    public static bool CompareOp(string op, JinjaValue a, JinjaValue b)
    {
        if (a is JinjaFloat or JinjaInt && b is JinjaFloat or JinjaInt && (a is JinjaFloat || b is JinjaFloat))
        {
            double x = ToDouble(a), y = ToDouble(b);
            return op switch { "<" => x < y, "<=" => x <= y, ">" => x > y, _ => x >= y };
        }
        int c = Compare(a, b, op);
        return op switch { "<" => c < 0, "<=" => c <= 0, ">" => c > 0, _ => c >= 0 };
    }

    /// <summary>Ordinal comparison by Unicode code point (Python's string order).</summary>
    public static int CompareCodePoints(string a, string b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++)
        {
            char x = a[i], y = b[i];
            if (x == y) continue;
            return Fix(x).CompareTo(Fix(y));
        }
        return a.Length.CompareTo(b.Length);

        static int Fix(char c) => c >= 0xD800 && c <= 0xDFFF ? c + 0x2000 : c >= 0xE000 ? c - 0x800 : c;
    }

    // ------------------------------------------------------------------ strings by code point

    public static bool HasSurrogates(string s) => s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    public static int Len(string s)
    {
        if (!HasSurrogates(s)) return s.Length;
        int n = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            n++;
        }
        return n;
    }

    /// <summary>The code points of <paramref name="s"/> as separate strings.</summary>
    public static string[] Chars(string s)
    {
        var list = new List<string>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                list.Add(s.Substring(i, 2));
                i++;
            }
            else list.Add(s[i].ToString());
        }
        return list.ToArray();
    }

    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || (c >= '\x1c' && c <= '\x1f');

    public static bool IsSpace(string s)
    {
        if (s.Length == 0) return false;
        foreach (char c in s) if (!IsSpace(c)) return false;
        return true;
    }

    /// <summary>Python's <c>slice.indices</c> iteration: yields indices for <c>seq[start:stop:step]</c>.</summary>
    public static List<int> SliceIndices(int len, long? start, long? stop, long? step)
    {
        long st = step ?? 1;
        if (st == 0) throw Err.Runtime("slice step cannot be zero");
        long lo, hi;
        if (start is null) lo = st < 0 ? len - 1 : 0;
        else
        {
            lo = start.Value;
            if (lo < 0) { lo += len; if (lo < 0) lo = st < 0 ? -1 : 0; }
            else if (lo >= len) lo = st < 0 ? len - 1 : len;
        }
        if (stop is null) hi = st < 0 ? -1 : len;
        else
        {
            hi = stop.Value;
            if (hi < 0) { hi += len; if (hi < 0) hi = st < 0 ? -1 : 0; }
            else if (hi >= len) hi = st < 0 ? len - 1 : len;
        }
        var result = new List<int>();
        if (st > 0) for (long i = lo; i < hi; i += st) result.Add((int)i);
        else for (long i = lo; i > hi; i += st) result.Add((int)i);
        return result;
    }

    /// <summary>Python's <c>str.splitlines()</c>.</summary>
    public static List<string> SplitLines(string s, bool keepEnds = false)
    {
        var lines = new List<string>();
        int start = 0, i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            int eol;
            if (c == '\r' && i + 1 < s.Length && s[i + 1] == '\n') eol = 2;
            else if (c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029') eol = 1;
            else { i++; continue; }
            lines.Add(s.Substring(start, (keepEnds ? i + eol : i) - start));
            i += eol;
            start = i;
        }
        if (start < s.Length) lines.Add(s.Substring(start));
        return lines;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static JinjaValue Bool(bool b) => b ? JinjaBool.TrueValue : JinjaBool.FalseValue;
}
