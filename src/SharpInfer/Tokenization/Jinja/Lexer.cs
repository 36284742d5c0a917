using System.Globalization;
using System.Text;

namespace SharpInfer.Tokenization.Jinja;

internal enum TokenType { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof }

internal readonly record struct Token(TokenType Type, string Text, int Pos, object? Value = null)
{
    public bool IsOp(string op) => Type == TokenType.Op && Text == op;
    public bool IsName(string name) => Type == TokenType.Name && Text == name;
    public override string ToString() => Type switch
    {
        TokenType.Eof => "'end of template'",
        TokenType.BlockEnd => "'end of statement block'",
        TokenType.VarEnd => "'end of print statement'",
        TokenType.Data => "'template data'",
        _ => $"'{Text}'",
    };
}

/// <summary>Maps source offsets to 1-based line and column.</summary>
internal sealed class SourceMap
{
    private readonly List<int> _lineStarts = [0];
    public SourceMap(string source)
    {
        for (int i = 0; i < source.Length; i++)
            if (source[i] == '\n') _lineStarts.Add(i + 1);
    }

    public (int Line, int Column) Locate(int pos)
    {
        int idx = _lineStarts.BinarySearch(pos);
        if (idx < 0) idx = ~idx - 1;
        return (idx + 1, pos - _lineStarts[idx] + 1);
    }
}

/// <summary>Splits a template into data and tag tokens, applying Jinja2's whitespace control
/// (<c>-</c>/<c>+</c> modifiers, <c>trim_blocks</c>, <c>lstrip_blocks</c>).</summary>
internal sealed class Lexer
{
    private static readonly string[] Operators =
        ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", "|", ",", ";", ":", ".", "=", "<", ">"];

    private readonly string _src;
    private readonly JinjaOptions _options;
    private readonly SourceMap _map;
    private readonly List<Token> _tokens = new();

    private Lexer(string src, JinjaOptions options, SourceMap map)
    {
        _src = src;
        _options = options;
        _map = map;
    }

    /// <summary>Jinja2 normalizes newlines to \n and drops one trailing newline (keep_trailing_newline=False).</summary>
    public static string Normalize(string source, JinjaOptions options)
    {
        string s = source.Contains('\r') ? source.Replace("\r\n", "\n").Replace('\r', '\n') : source;
        if (!options.KeepTrailingNewline && s.EndsWith('\n')) s = s.Substring(0, s.Length - 1);
        return s;
    }

    public static List<Token> Tokenize(string normalizedSource, JinjaOptions options, SourceMap map)
    {
        var lx = new Lexer(normalizedSource, options, map);
        lx.Run();
        return lx._tokens;
    }

    private TemplateException Fail(string message, int pos)
    {
        var (l, c) = _map.Locate(pos);
        return Err.Syntax(message, l, c);
    }

    private void Run()
    {
        string s = _src;
        int n = s.Length;
        int pos = 0;
        bool lineStarting = true;
        while (pos < n)
        {
            int idx = FindTagStart(pos);
            if (idx < 0)
            {
                _tokens.Add(new Token(TokenType.Data, s.Substring(pos), pos));
                break;
            }
            char kind = s[idx + 1];
            char mod = idx + 2 < n ? s[idx + 2] : '\0';
            bool hasMod = mod is '-' or '+';
            string text = s.Substring(pos, idx - pos);
            if (mod == '-') text = RStrip(text);
            else if (mod != '+' && _options.LstripBlocks && kind != '{')
            {
                int lpos = text.LastIndexOf('\n') + 1;
                if ((lpos > 0 || lineStarting) && lpos < text.Length && Py.IsSpace(text.Substring(lpos)))
                    text = text.Substring(0, lpos);
            }
            if (text.Length > 0) _tokens.Add(new Token(TokenType.Data, text, pos));
            int p = idx + 2 + (hasMod ? 1 : 0);

            if (kind == '#')
            {
                int e = s.IndexOf("#}", p, StringComparison.Ordinal);
                if (e < 0) throw Fail("Missing end of comment tag", idx);
                pos = AfterEnd(e, e + 2, p, allowTrim: true);
            }
            else if (kind == '%' && TryRaw(idx, p, out int after)) pos = after;
            else
            {
                pos = LexTag(kind == '{', idx, p);
            }
            lineStarting = pos > 0 && s[pos - 1] == '\n';
        }
        _tokens.Add(new Token(TokenType.Eof, "", n));
    }

    private int FindTagStart(int from)
    {
        string s = _src;
        while (true)
        {
            int i = s.IndexOf('{', from);
            if (i < 0 || i + 1 >= s.Length) return -1;
            char c = s[i + 1];
            if (c is '{' or '%' or '#') return i;
            from = i + 1;
        }
    }

    private static string RStrip(string text)
    {
        int end = text.Length;
        while (end > 0 && Py.IsSpace(text[end - 1])) end--;
        return text.Substring(0, end);
    }

    /// <summary>Position after an end tag whose closing delimiter spans [delimStart, delimEnd): a '-' just
    /// before it strips all following whitespace, a '+' keeps everything, otherwise trim_blocks removes one newline.</summary>
    private int AfterEnd(int delimStart, int delimEnd, int contentStart, bool allowTrim)
    {
        string s = _src;
        char before = delimStart - 1 >= contentStart ? s[delimStart - 1] : '\0';
        int pos = delimEnd;
        if (before == '-')
        {
            while (pos < s.Length && Py.IsSpace(s[pos])) pos++;
        }
        else if (before != '+' && allowTrim && _options.TrimBlocks && pos < s.Length && s[pos] == '\n') pos++;
        return pos;
    }

    private static bool IsWs(char c) => Py.IsSpace(c);

    private bool TryRaw(int tagStart, int p, out int after)
    {
        string s = _src;
        after = 0;
        int q = p;
        while (q < s.Length && IsWs(s[q])) q++;
        if (string.CompareOrdinal(s, q, "raw", 0, 3) != 0) return false;
        q += 3;
        if (q < s.Length && (char.IsLetterOrDigit(s[q]) || s[q] == '_')) return false;
        while (q < s.Length && IsWs(s[q])) q++;
        int contentStart;
        if (string.CompareOrdinal(s, q, "-%}", 0, 3) == 0)
        {
            contentStart = q + 3;
            while (contentStart < s.Length && Py.IsSpace(s[contentStart])) contentStart++;
        }
        else if (string.CompareOrdinal(s, q, "%}", 0, 2) == 0) contentStart = q + 2;
        else return false;

        // find {%[-+]?\s*endraw\s*[-+]?%}
        int search = contentStart;
        while (true)
        {
            int b = s.IndexOf("{%", search, StringComparison.Ordinal);
            if (b < 0) throw Fail("Missing end of raw directive", tagStart);
            int r = b + 2;
            char mod = r < s.Length ? s[r] : '\0';
            if (mod is '-' or '+') r++;
            while (r < s.Length && IsWs(s[r])) r++;
            if (string.CompareOrdinal(s, r, "endraw", 0, 6) != 0) { search = b + 2; continue; }
            r += 6;
            while (r < s.Length && IsWs(s[r])) r++;
            int delimStart;
            if (r < s.Length && (s[r] == '-' || s[r] == '+') && string.CompareOrdinal(s, r + 1, "%}", 0, 2) == 0) delimStart = r + 1;
            else if (string.CompareOrdinal(s, r, "%}", 0, 2) == 0) delimStart = r;
            else { search = b + 2; continue; }

            string text = s.Substring(contentStart, b - contentStart);
            if (mod == '-') text = RStrip(text);
            else if (mod != '+' && _options.LstripBlocks)
            {
                int lpos = text.LastIndexOf('\n') + 1;
                bool lineStarting = contentStart > 0 && s[contentStart - 1] == '\n';
                if ((lpos > 0 || lineStarting) && lpos < text.Length && Py.IsSpace(text.Substring(lpos)))
                    text = text.Substring(0, lpos);
            }
            if (text.Length > 0) _tokens.Add(new Token(TokenType.Data, text, contentStart));
            after = AfterEnd(delimStart, delimStart + 2, r, allowTrim: true);
            return true;
        }
    }

    /// <summary>Lexes the inside of a {{ }} or {% %} tag; returns the position after its end.</summary>
    private int LexTag(bool isVariable, int tagStart, int p)
    {
        string s = _src;
        int n = s.Length;
        _tokens.Add(new Token(isVariable ? TokenType.VarBegin : TokenType.BlockBegin, isVariable ? "{{" : "{%", tagStart));
        int depth = 0;
        while (true)
        {
            while (p < n && IsWs(s[p])) p++;
            if (p >= n) throw Fail(isVariable ? "unexpected end of template, expected '}}'" : "unexpected end of template, expected '%}'", tagStart);
            if (depth == 0)
            {
                if (isVariable)
                {
                    if (s[p] == '-' && string.CompareOrdinal(s, p + 1, "}}", 0, 2) == 0)
                    {
                        _tokens.Add(new Token(TokenType.VarEnd, "}}", p));
                        return AfterEnd(p + 1, p + 3, p, allowTrim: false);
                    }
                    if (string.CompareOrdinal(s, p, "}}", 0, 2) == 0)
                    {
                        _tokens.Add(new Token(TokenType.VarEnd, "}}", p));
                        return p + 2;
                    }
                }
                else
                {
                    if ((s[p] == '-' || s[p] == '+') && string.CompareOrdinal(s, p + 1, "%}", 0, 2) == 0)
                    {
                        _tokens.Add(new Token(TokenType.BlockEnd, "%}", p));
                        return AfterEnd(p + 1, p + 3, p, allowTrim: true);
                    }
                    if (string.CompareOrdinal(s, p, "%}", 0, 2) == 0)
                    {
                        _tokens.Add(new Token(TokenType.BlockEnd, "%}", p));
                        return AfterEnd(p, p + 2, p, allowTrim: true);
                    }
                }
            }
            char c = s[p];
            if (char.IsAsciiDigit(c))
            {
                p = LexNumber(p);
                continue;
            }
            if (char.IsLetter(c) || c == '_')
            {
                int start = p;
                while (p < n && (char.IsLetterOrDigit(s[p]) || s[p] == '_')) p++;
                _tokens.Add(new Token(TokenType.Name, s.Substring(start, p - start), start));
                continue;
            }
            if (c is '\'' or '"')
            {
                p = LexString(p);
                continue;
            }
            string? op = null;
            foreach (var o in Operators)
                if (string.CompareOrdinal(s, p, o, 0, o.Length) == 0) { op = o; break; }
            if (op is null) throw Fail($"unexpected char '{c}'", p);
            if (op is "(" or "[" or "{") depth++;
            else if (op is ")" or "]" or "}")
            {
                if (depth == 0) throw Fail($"unexpected '{op}'", p);
                depth--;
            }
            _tokens.Add(new Token(TokenType.Op, op, p));
            p += op.Length;
        }
    }

    private int LexNumber(int p)
    {
        string s = _src;
        int n = s.Length;
        int start = p;
        // prefixed integers
        if (s[p] == '0' && p + 1 < n && (s[p + 1] | 0x20) is 'x' or 'o' or 'b')
        {
            char k = (char)(s[p + 1] | 0x20);
            int radix = k == 'x' ? 16 : k == 'o' ? 8 : 2;
            int q = p + 2;
            var digits = new StringBuilder();
            while (q < n && (s[q] == '_' || Uri.IsHexDigit(s[q])))
            {
                if (s[q] != '_') digits.Append(s[q]);
                q++;
            }
            if (digits.Length == 0) throw Fail("invalid number literal", start);
            long v = 0;
            foreach (char d in digits.ToString())
            {
                int dv = Uri.FromHex(d);
                if (dv >= radix) throw Fail("invalid digit in number literal", start);
                v = checked(v * radix + dv);
            }
            _tokens.Add(new Token(TokenType.Int, s.Substring(start, q - start), start, JinjaInt.Of(v)));
            return q;
        }
        while (p < n && (char.IsAsciiDigit(s[p]) || (s[p] == '_' && p + 1 < n && char.IsAsciiDigit(s[p + 1])))) p++;
        bool isFloat = false;
        if (p + 1 < n && s[p] == '.' && char.IsAsciiDigit(s[p + 1]) && !(start > 0 && s[start - 1] == '.'))
        {
            isFloat = true;
            p++;
            while (p < n && (char.IsAsciiDigit(s[p]) || (s[p] == '_' && p + 1 < n && char.IsAsciiDigit(s[p + 1])))) p++;
        }
        if (p < n && (s[p] | 0x20) == 'e' && !(start > 0 && s[start - 1] == '.'))
        {
            int q = p + 1;
            if (q < n && (s[q] == '+' || s[q] == '-')) q++;
            if (q < n && char.IsAsciiDigit(s[q]))
            {
                isFloat = true;
                p = q;
                while (p < n && (char.IsAsciiDigit(s[p]) || s[p] == '_')) p++;
            }
        }
        string text = s.Substring(start, p - start);
        string clean = text.Replace("_", "");
        if (isFloat)
            _tokens.Add(new Token(TokenType.Float, text, start, double.Parse(clean, NumberStyles.Float, CultureInfo.InvariantCulture)));
        else
        {
            if (long.TryParse(clean, NumberStyles.None, CultureInfo.InvariantCulture, out long v))
                _tokens.Add(new Token(TokenType.Int, text, start, JinjaInt.Of(v)));
            else if (clean.Length <= 4300)
                _tokens.Add(new Token(TokenType.Int, text, start, JinjaInt.Of(System.Numerics.BigInteger.Parse(clean, CultureInfo.InvariantCulture))));
            else throw Fail("integer literal too large", start);
        }
        return p;
    }

    private int LexString(int p)
    {
        string s = _src;
        char quote = s[p];
        int start = p;
        p++;
        var sb = new StringBuilder();
        while (true)
        {
            if (p >= s.Length) throw Fail("unterminated string", start);
            char c = s[p];
            if (c == quote) { p++; break; }
            if (c != '\\') { sb.Append(c); p++; continue; }
            if (p + 1 >= s.Length) throw Fail("unterminated string", start);
            char e = s[p + 1];
            p += 2;
            switch (e)
            {
                case '\n': break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'v': sb.Append('\v'); break;
                case 'x': p = Hex(p, 2, sb, start); break;
                case 'u': p = Hex(p, 4, sb, start); break;
                case 'U': p = Hex(p, 8, sb, start); break;
                default:
                    if (e >= '0' && e <= '7')
                    {
                        int v = e - '0';
                        for (int k = 0; k < 2 && p < s.Length && s[p] >= '0' && s[p] <= '7'; k++, p++) v = v * 8 + (s[p] - '0');
                        sb.Append((char)v);
                    }
                    else sb.Append('\\').Append(e);
                    break;
            }
        }
        _tokens.Add(new Token(TokenType.String, s.Substring(start, p - start), start, sb.ToString()));
        return p;
    }

    private int Hex(int p, int count, StringBuilder sb, int start)
    {
        string s = _src;
        if (p + count > s.Length) throw Fail("truncated escape sequence in string", start);
        int v = 0;
        for (int k = 0; k < count; k++)
        {
            char h = s[p + k];
            if (!Uri.IsHexDigit(h)) throw Fail("truncated escape sequence in string", start);
            v = v * 16 + Uri.FromHex(h);
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF && count == 8)) throw Fail("illegal Unicode character in string", start);
        if (v < 0x10000) sb.Append((char)v); else sb.Append(char.ConvertFromUtf32(v));
        return p + count;
    }
}
