using System.Text;

namespace SharpInfer.Sampling.Grammar;

/// <summary>
/// Parses llama.cpp's GBNF: <c>name ::= alternatives</c> rules, <c>|</c>, groups, <c>* + ?</c>, <c>{m}</c>,
/// <c>{m,}</c>, <c>{m,n}</c>, "literals", [classes] with ranges and <c>^</c> negation, <c>.</c> (any character),
/// escapes (\n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH) and # comments. A rule runs until the next
/// <c>name ::=</c>, so alternatives may continue on following lines. Errors throw
/// <see cref="InvalidRequestException"/> with the offending line.
/// </summary>
internal sealed class GbnfParser
{
    /// <summary>Largest repetition bound accepted: {m,n} expands into about n rules.</summary>
    public const int MaxRepetition = 10_000;

    private readonly string _s;
    private int _i;
    private readonly GrammarRules _g = new();
    private readonly string _field;

    private GbnfParser(string text, string field) { _s = text; _field = field; }

    public static GrammarRules Parse(string text, string field = "grammar")
    {
        var p = new GbnfParser(text, field);
        p.ParseAll();
        return p._g;
    }

    private InvalidRequestException Error(string msg)
    {
        int line = 1;
        for (int k = 0; k < Math.Min(_i, _s.Length); k++) if (_s[k] == '\n') line++;
        return new InvalidRequestException($"invalid grammar (line {line}): {msg}", _field);
    }

    private void ParseAll()
    {
        SkipSpace();
        while (_i < _s.Length)
        {
            string name = Name();
            SkipSpace();
            if (!Take("::=")) throw Error($"expected '::=' after rule name '{name}'");
            if (!_g.Defined.Add(name)) throw Error($"rule '{name}' is defined twice");
            int id = _g.Named(name);
            _g.Rules[id].AddRange(Alternatives(nested: false));
            SkipSpace();
        }
        if (!_g.Defined.Contains("root")) throw Error("the grammar has no 'root' rule");
        foreach (var name in _g.ByName.Keys)
            if (!_g.Defined.Contains(name)) throw Error($"rule '{name}' is used but never defined");
    }

    private List<List<Symbol>> Alternatives(bool nested)
    {
        var alts = new List<List<Symbol>> { Sequence(nested) };
        while (true)
        {
            SkipSpace();
            if (_i < _s.Length && _s[_i] == '|') { _i++; alts.Add(Sequence(nested)); }
            else return alts;
        }
    }

    private List<Symbol> Sequence(bool nested)
    {
        var seq = new List<Symbol>();
        int lastStart = -1;
        while (true)
        {
            SkipSpace();
            if (_i >= _s.Length) return seq;
            char c = _s[_i];
            if (c == '|' || (c == ')' && nested)) return seq;
            if (c == ')') throw Error("unmatched ')'");
            if (!nested && AtRuleStart()) return seq;
            int start = seq.Count;
            if (c == '"')
            {
                _i++;
                var bytes = new List<byte>();
                var buf = new byte[4];
                while (true)
                {
                    if (_i >= _s.Length) throw Error("unterminated string literal");
                    if (_s[_i] == '"') { _i++; break; }
                    int n = Utf8Ranges.Encode(CodePoint(), buf);
                    for (int k = 0; k < n; k++) bytes.Add(buf[k]);
                }
                foreach (var b in bytes) seq.Add(Symbol.Byte(b));
            }
            else if (c == '[') { _i++; seq.Add(CharClass()); }
            else if (c == '.') { _i++; seq.Add(Class([(0, Utf8Ranges.MaxCodePoint)])); }
            else if (c == '(')
            {
                _i++;
                int group = _g.New("group");
                _g.Rules[group].AddRange(Alternatives(nested: true));
                SkipSpace();
                if (!Take(")")) throw Error("expected ')'");
                seq.Add(Symbol.Ref(group));
            }
            else if (IsNameChar(c)) seq.Add(Symbol.Ref(_g.Named(Name())));
            else if (c is '*' or '+' or '?' or '{')
            {
                if (lastStart < 0) throw Error($"'{c}' has nothing to repeat");
                Repeat(seq, lastStart);
                continue;
            }
            else throw Error($"unexpected character '{c}'");
            lastStart = start;
        }
    }

    /// <summary>Applies a postfix operator to <c>seq[start..]</c> (the last item), expanding it as llama.cpp does:
    /// x{m,n} = m copies of x then n-m nested optional copies, x* = a right-recursive rule.</summary>
    private void Repeat(List<Symbol> seq, int start)
    {
        int min, max;
        char op = _s[_i++];
        if (op == '*') (min, max) = (0, -1);
        else if (op == '+') (min, max) = (1, -1);
        else if (op == '?') (min, max) = (0, 1);
        else
        {
            SkipSpace();
            min = Int();
            SkipSpace();
            max = min;
            if (Take(","))
            {
                SkipSpace();
                max = _i < _s.Length && char.IsAsciiDigit(_s[_i]) ? Int() : -1;
                SkipSpace();
            }
            if (!Take("}")) throw Error("expected '}' after repetition bounds");
            if (max >= 0 && max < min) throw Error($"repetition {{{min},{max}}} has max below min");
        }
        if (min > MaxRepetition || max > MaxRepetition) throw Error($"repetition bounds above {MaxRepetition} are not supported");
        var item = seq.GetRange(start, seq.Count - start);
        seq.RemoveRange(start, seq.Count - start);
        if (item.Count > 1)
        {
            int wrap = _g.New("item");
            _g.Rules[wrap].Add(item);
            item = [Symbol.Ref(wrap)];
        }
        for (int k = 0; k < min; k++) seq.AddRange(item);
        if (max < 0)
        {
            int star = _g.New("star");
            _g.Rules[star].Add([.. item, Symbol.Ref(star)]);
            _g.Rules[star].Add([]);
            seq.Add(Symbol.Ref(star));
        }
        else if (max > min)
        {
            int inner = -1;
            for (int k = 0; k < max - min; k++)
            {
                int opt = _g.New("opt");
                _g.Rules[opt].Add(inner < 0 ? [.. item] : [.. item, Symbol.Ref(inner)]);
                _g.Rules[opt].Add([]);
                inner = opt;
            }
            seq.Add(Symbol.Ref(inner));
        }
    }

    private Symbol CharClass()
    {
        bool negate = Take("^");
        var ranges = new List<(int, int)>();
        while (true)
        {
            if (_i >= _s.Length) throw Error("unterminated character class");
            if (_s[_i] == ']') { _i++; break; }
            int lo = CodePoint(), hi = lo;
            if (_i + 1 < _s.Length && _s[_i] == '-' && _s[_i + 1] != ']')
            {
                _i++;
                hi = CodePoint();
                if (hi < lo) throw Error($"character range is reversed (U+{lo:X4}-U+{hi:X4})");
            }
            ranges.Add((lo, hi));
        }
        if (negate)
        {
            ranges.Sort();
            var comp = new List<(int, int)>();
            int next = 0;
            foreach (var (lo, hi) in ranges)
            {
                if (lo > next) comp.Add((next, lo - 1));
                next = Math.Max(next, hi + 1);
            }
            if (next <= Utf8Ranges.MaxCodePoint) comp.Add((next, Utf8Ranges.MaxCodePoint));
            ranges = comp;
        }
        return Class(ranges);
    }

    /// <summary>A class as one byte-set symbol when all of it is ASCII, else a rule of UTF-8 byte sequences.</summary>
    private Symbol Class(List<(int Lo, int Hi)> ranges)
    {
        var seqs = new List<(byte Lo, byte Hi)[]>();
        foreach (var (lo, hi) in ranges) Utf8Ranges.Split(lo, hi, seqs);
        Symbol single = Symbol.Bytes(1, 0);   // empty set
        var multi = new List<List<Symbol>>();
        foreach (var seq in seqs)
        {
            if (seq.Length == 1) single = single.Union(Symbol.Bytes(seq[0].Lo, seq[0].Hi));
            else multi.Add(seq.Select(r => Symbol.Bytes(r.Lo, r.Hi)).ToList());
        }
        if (multi.Count == 0) return single;
        int rule = _g.New("class");
        if (single != Symbol.Bytes(1, 0)) _g.Rules[rule].Add([single]);
        _g.Rules[rule].AddRange(multi);
        return Symbol.Ref(rule);
    }

    private int CodePoint()
    {
        char c = _s[_i++];
        if (c != '\\')
        {
            if (char.IsHighSurrogate(c) && _i < _s.Length && char.IsLowSurrogate(_s[_i])) return char.ConvertToUtf32(c, _s[_i++]);
            return c;
        }
        if (_i >= _s.Length) throw Error("dangling '\\'");
        char e = _s[_i++];
        return e switch
        {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '\\' or '"' or '[' or ']' or '-' or '^' or '/' => e,
            'x' => Hex(2),
            'u' => Hex(4),
            'U' => Hex(8),
            _ => throw Error($"unknown escape '\\{e}'"),
        };
    }

    private int Hex(int digits)
    {
        if (_i + digits > _s.Length) throw Error("truncated hex escape");
        if (!int.TryParse(_s.AsSpan(_i, digits), System.Globalization.NumberStyles.HexNumber, null, out int v) || v > Utf8Ranges.MaxCodePoint)
            throw Error($"bad hex escape '{_s.Substring(_i, digits)}'");
        _i += digits;
        return v;
    }

    private int Int()
    {
        int start = _i;
        while (_i < _s.Length && char.IsAsciiDigit(_s[_i])) _i++;
        if (_i == start || _i - start > 6) throw Error("expected a repetition count");
        return int.Parse(_s.AsSpan(start, _i - start));
    }

    private static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_';

    private string Name()
    {
        int start = _i;
        while (_i < _s.Length && IsNameChar(_s[_i])) _i++;
        if (_i == start) throw Error($"expected a rule name, found '{(_i < _s.Length ? _s[_i] : ' ')}'");
        return _s[start.._i];
    }

    private bool AtRuleStart()
    {
        int j = _i;
        while (j < _s.Length && IsNameChar(_s[j])) j++;
        if (j == _i) return false;
        while (j < _s.Length && _s[j] is ' ' or '\t' or '\r' or '\n') j++;
        return string.CompareOrdinal(_s, j, "::=", 0, 3) == 0;
    }

    private bool Take(string t)
    {
        if (string.CompareOrdinal(_s, _i, t, 0, t.Length) != 0) return false;
        _i += t.Length;
        return true;
    }

    private void SkipSpace()
    {
        while (_i < _s.Length)
        {
            char c = _s[_i];
            if (c is ' ' or '\t' or '\r' or '\n') _i++;
            else if (c == '#') { while (_i < _s.Length && _s[_i] != '\n') _i++; }
            else break;
        }
    }
}
