using System.Text;

namespace SharpInfer.Sampling.Grammar;

/// <summary>
/// Translates the documented regex subset of JSON-schema <c>pattern</c> into a GBNF expression for the inside of
/// a JSON string: literals, escapes (\d \w \s \D \W \S and escaped punctuation), classes with ranges and negation,
/// <c>.</c>, groups (including <c>(?:</c>), <c>|</c>, <c>* + ?</c> and <c>{m}</c> <c>{m,}</c> <c>{m,n}</c>,
/// with <c>^</c>/<c>$</c> only at the ends. The whole string must match. Characters that would need a JSON escape
/// (<c>"</c>, <c>\</c>, control characters) are never generated: negated classes and <c>.</c> exclude them, and
/// a pattern that names them literally is rejected.
/// </summary>
internal sealed class RegexToGbnf
{
    private const string JsonUnsafe = "\"\\\\\\x00-\\x1F\\x7F";   // GBNF class body: quote, backslash, controls
    private readonly string _p;
    private readonly bool _inJsonString;
    private readonly string _unsafeChars;
    private int _i;

    private RegexToGbnf(string pattern, bool inJsonString)
    {
        _p = pattern;
        _inJsonString = inJsonString;
        _unsafeChars = inJsonString ? JsonUnsafe : "";
    }

    /// <summary>A GBNF expression for the strings <paramref name="pattern"/> matches in full; with
    /// <paramref name="inJsonString"/> false (vLLM's <c>regex</c> output) any character may be generated.</summary>
    public static string Translate(string pattern, bool inJsonString = true)
    {
        string body0 = pattern.StartsWith('^') ? pattern[1..] : pattern;
        if (body0.EndsWith('$') && !body0.EndsWith("\\$")) body0 = body0[..^1];
        var t = new RegexToGbnf(body0, inJsonString);
        string body = t.Alternatives();
        if (t._i != t._p.Length) throw t.Error($"unexpected '{t._p[t._i]}'");
        return "(" + body + ")";
    }

    private InvalidRequestException Error(string msg) => new($"unsupported 'pattern' /{_p}/: {msg}", "json_schema");

    private string Alternatives()
    {
        var alts = new List<string> { Sequence() };
        while (_i < _p.Length && _p[_i] == '|') { _i++; alts.Add(Sequence()); }
        return string.Join(" | ", alts.Select(a => a.Length == 0 ? "\"\"" : a));
    }

    private string Sequence()
    {
        var items = new List<string>();
        while (_i < _p.Length && _p[_i] is not ('|' or ')'))
        {
            char c = _p[_i];
            string atom;
            if (c == '(')
            {
                _i++;
                if (_p.AsSpan(_i).StartsWith("?:")) _i += 2;
                else if (_i < _p.Length && _p[_i] == '?') throw Error("lookarounds and named groups are not supported");
                atom = "(" + Alternatives() + ")";
                if (_i >= _p.Length || _p[_i] != ')') throw Error("missing ')'");
                _i++;
            }
            else if (c == '[') { _i++; atom = Class(); }
            else if (c == '.') { _i++; atom = "[^\\n" + _unsafeChars + "]"; }
            else if (c == '\\') { _i++; atom = Escape(inClass: false); }
            else if (c is '*' or '+' or '?' or '{') throw Error($"'{c}' has nothing to repeat");
            else if (c is '^' or '$') throw Error("anchors are only supported at the start and end");
            else { _i++; atom = Literal(c); }
            atom += Quantifier();
            items.Add(atom);
        }
        return string.Join(" ", items);
    }

    private string Quantifier()
    {
        if (_i >= _p.Length) return "";
        char c = _p[_i];
        if (c is '*' or '+' or '?') { _i++; Lazy(); return c.ToString(); }
        if (c != '{') return "";
        int close = _p.IndexOf('}', _i);
        if (close < 0) throw Error("unterminated '{'");
        string q = _p[_i..(close + 1)];
        foreach (char d in q[1..^1]) if (!char.IsAsciiDigit(d) && d != ',') throw Error($"bad quantifier '{q}'");
        _i = close + 1;
        Lazy();
        return q;
    }

    private void Lazy()
    {
        if (_i < _p.Length && _p[_i] == '?') _i++;   // lazy and greedy match the same strings when the whole string must match
    }

    private string Literal(char c)
    {
        if (!_inJsonString) return c is '"' or '\\' || c < 0x20 ? $"\"\\x{(int)c:X2}\"" : "\"" + c + "\"";
        if (c is '"' or '\\' || c < 0x20 || c == 0x7F) throw Error($"character U+{(int)c:X4} would need a JSON escape");
        return "\"" + c + "\"";
    }

    private string Escape(bool inClass)
    {
        if (_i >= _p.Length) throw Error("dangling '\\'");
        char e = _p[_i++];
        string? set = e switch
        {
            'd' => "0-9",
            'w' => "a-zA-Z0-9_",
            's' => " \\t\\n\\r",
            _ => null,
        };
        if (set != null) return inClass ? set : "[" + set + "]";
        string? neg = e switch
        {
            'D' => "0-9",
            'W' => "a-zA-Z0-9_",
            'S' => " \\t\\n\\r",
            _ => null,
        };
        if (neg != null)
        {
            if (inClass) throw Error($"'\\{e}' inside a class is not supported");
            return "[^" + neg + _unsafeChars + "]";
        }
        if (char.IsAsciiLetterOrDigit(e)) throw Error($"escape '\\{e}' is not supported");
        return inClass ? ClassChar(e) : Literal(e);
    }

    private static string ClassChar(char c) => c is ']' or '[' or '-' or '^' or '\\' ? "\\" + c : c < 0x20 ? $"\\x{(int)c:X2}" : c.ToString();

    private string Class()
    {
        var sb = new StringBuilder("[");
        bool negate = _i < _p.Length && _p[_i] == '^';
        if (negate) { _i++; sb.Append('^'); }
        bool first = true;
        while (true)
        {
            if (_i >= _p.Length) throw Error("unterminated '['");
            char c = _p[_i];
            if (c == ']' && !first) { _i++; break; }
            first = false;
            if (c == '\\') { _i++; sb.Append(Escape(inClass: true)); continue; }
            if (_inJsonString && !negate && (c is '"' or '\\' || c < 0x20)) throw Error($"character U+{(int)c:X4} would need a JSON escape");
            _i++;
            sb.Append(c == '-' && _i < _p.Length && _p[_i] != ']' && sb.Length > 1 ? "-" : ClassChar(c));
        }
        if (negate) sb.Append(_unsafeChars);
        return sb.Append(']').ToString();
    }
}
