using System.Globalization;
using System.Numerics;
using System.Text;

namespace SharpInfer.Tokenization.Jinja;

/// <summary>Python string formatting: <c>'%s' % x</c> (and Jinja's <c>format</c> filter), <c>str.format</c>,
/// and exactly rounded float formatting (round-half-even on the exact binary value, like CPython).</summary>
internal static class PyFormat
{
    // ------------------------------------------------------------------ exact decimal rounding

    /// <summary>round_half_even(|v| × 10^decimals) computed exactly.</summary>
    public static BigInteger RoundScaled(double v, int decimals)
    {
        long bits = BitConverter.DoubleToInt64Bits(v);
        int exp = (int)((bits >> 52) & 0x7FF);
        long man = bits & 0xFFFFFFFFFFFFFL;
        if (exp == 0) exp = 1; else man |= 1L << 52;
        exp -= 1075;
        BigInteger num = man, den = BigInteger.One;
        if (exp > 0) num <<= exp; else den <<= -exp;
        if (decimals >= 0) num *= BigInteger.Pow(10, decimals); else den *= BigInteger.Pow(10, -decimals);
        var q = BigInteger.DivRem(num, den, out var r);
        var twice = r * 2;
        int c = twice.CompareTo(den);
        if (c > 0 || (c == 0 && !q.IsEven)) q += 1;
        return q;
    }

    /// <summary>Python's <c>round(v, ndigits)</c> for floats.</summary>
    public static double Round(double v, int ndigits)
    {
        if (double.IsNaN(v) || double.IsInfinity(v) || v == 0) return v;
        if (ndigits > 330) return v;
        if (ndigits < -330) return 0.0 * Math.Sign(v);
        var q = RoundScaled(v, ndigits);
        string s = q.ToString(CultureInfo.InvariantCulture) + "E" + (-ndigits).ToString(CultureInfo.InvariantCulture);
        double r = double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);
        return double.IsNegative(v) ? -r : r;
    }

    private static string Special(double v, bool upper)
    {
        string s = double.IsNaN(v) ? "nan" : double.IsNegative(v) ? "-inf" : "inf";
        return upper ? s.ToUpperInvariant() : s;
    }

    /// <summary><c>'%.{prec}f' % v</c>.</summary>
    public static string Fixed(double v, int prec, bool alt = false)
    {
        if (double.IsNaN(v) || double.IsInfinity(v)) return Special(v, false);
        string digits = RoundScaled(v, prec).ToString(CultureInfo.InvariantCulture);
        if (digits.Length <= prec) digits = new string('0', prec - digits.Length + 1) + digits;
        var sb = new StringBuilder();
        if (double.IsNegative(v)) sb.Append('-');
        sb.Append(digits, 0, digits.Length - prec);
        if (prec > 0 || alt) sb.Append('.');
        sb.Append(digits, digits.Length - prec, prec);
        return sb.ToString();
    }

    /// <summary>Digits (prec+1 significant) and decimal exponent of |v|, exactly rounded.</summary>
    private static (string Digits, int Exp) Scientific(double v, int prec)
    {
        if (v == 0) return (new string('0', prec + 1), 0);
        int k = (int)Math.Floor(Math.Log10(Math.Abs(v)));
        var lim = BigInteger.Pow(10, prec + 1);
        for (int guard = 0; guard < 4; guard++)
        {
            var q = RoundScaled(v, prec - k);
            if (q >= lim) { k++; continue; }
            if (q < lim / 10) { k--; continue; }
            return (q.ToString(CultureInfo.InvariantCulture), k);
        }
        var q2 = RoundScaled(v, prec - k);
        return (q2.ToString(CultureInfo.InvariantCulture), k);
    }

    /// <summary><c>'%.{prec}e' % v</c>.</summary>
    public static string Exponent(double v, int prec, bool upper, bool alt = false)
    {
        if (double.IsNaN(v) || double.IsInfinity(v)) return Special(v, upper);
        var (d, k) = Scientific(v, prec);
        var sb = new StringBuilder();
        if (double.IsNegative(v)) sb.Append('-');
        sb.Append(d[0]);
        if (prec > 0 || alt) sb.Append('.');
        sb.Append(d, 1, d.Length - 1);
        sb.Append(upper ? 'E' : 'e').Append(k < 0 ? '-' : '+').Append(Math.Abs(k).ToString("00", CultureInfo.InvariantCulture));
        return sb.ToString();
    }

    /// <summary><c>'%.{prec}g' % v</c>.</summary>
    public static string General(double v, int prec, bool upper, bool alt = false)
    {
        if (double.IsNaN(v) || double.IsInfinity(v)) return Special(v, upper);
        if (prec == 0) prec = 1;
        var (_, k) = Scientific(v, prec - 1);
        string s = k >= -4 && k < prec ? Fixed(v, prec - 1 - k, alt) : Exponent(v, prec - 1, upper, alt);
        if (alt) return s;
        int e = s.IndexOfAny(['e', 'E']);
        string mant = e >= 0 ? s.Substring(0, e) : s, rest = e >= 0 ? s.Substring(e) : "";
        if (mant.Contains('.')) mant = mant.TrimEnd('0').TrimEnd('.');
        return mant + rest;
    }

    // ------------------------------------------------------------------ printf-style

    public static string Printf(string fmt, JinjaValue args)
    {
        List<JinjaValue> list;
        JinjaDict? mapping = null;
        if (args is JinjaList { IsTuple: true } t) list = t.Items;
        else
        {
            list = [args];
            if (args is JinjaDict d) mapping = d;
        }
        int next = 0;
        var sb = new StringBuilder();
        int i = 0, n = fmt.Length;
        JinjaValue NextArg()
        {
            if (next >= list.Count) throw Err.Type("not enough arguments for format string");
            return list[next++];
        }
        while (i < n)
        {
            char c = fmt[i++];
            if (c != '%') { sb.Append(c); continue; }
            if (i >= n) throw Err.Runtime("incomplete format");
            JinjaValue? keyed = null;
            if (fmt[i] == '(')
            {
                if (mapping is null) throw Err.Type("format requires a mapping");
                int depth = 1, start = ++i;
                while (i < n && depth > 0)
                {
                    if (fmt[i] == '(') depth++;
                    else if (fmt[i] == ')') depth--;
                    i++;
                }
                if (depth > 0) throw Err.Runtime("incomplete format key");
                string key = fmt.Substring(start, i - 1 - start);
                if (!mapping.TryGet(key, out keyed)) throw Err.Runtime($"KeyError: {Py.Repr(new JinjaString(key))}");
            }
            bool left = false, plus = false, space = false, alt = false, zero = false;
            for (; i < n; i++)
            {
                char f = fmt[i];
                if (f == '-') left = true;
                else if (f == '+') plus = true;
                else if (f == ' ') space = true;
                else if (f == '#') alt = true;
                else if (f == '0') zero = true;
                else break;
            }
            int width = 0;
            if (i < n && fmt[i] == '*')
            {
                i++;
                var w = NextArg();
                width = Py.IsIntLike(w, out long wl) ? (int)wl : throw Err.Type("* wants int");
                if (width < 0) { left = true; width = -width; }
            }
            else while (i < n && char.IsAsciiDigit(fmt[i])) width = checked(width * 10 + (fmt[i++] - '0'));
            int prec = -1;
            if (i < n && fmt[i] == '.')
            {
                i++;
                prec = 0;
                if (i < n && fmt[i] == '*')
                {
                    i++;
                    var p = NextArg();
                    prec = Py.IsIntLike(p, out long pl) ? (int)Math.Max(0, pl) : throw Err.Type("* wants int");
                }
                else while (i < n && char.IsAsciiDigit(fmt[i])) prec = checked(prec * 10 + (fmt[i++] - '0'));
            }
            while (i < n && fmt[i] is 'h' or 'l' or 'L') i++;
            if (i >= n) throw Err.Runtime("incomplete format");
            char type = fmt[i++];
            if (type == '%') { sb.Append('%'); continue; }
            var v = keyed ?? NextArg();
            string body;
            bool numeric = false;
            string sign = "";
            switch (type)
            {
                case 's':
                    body = Py.Str(v);
                    if (prec >= 0 && body.Length > prec) body = body.Substring(0, prec);
                    break;
                case 'r':
                case 'a':
                    body = Py.Repr(v);
                    if (prec >= 0 && body.Length > prec) body = body.Substring(0, prec);
                    break;
                case 'd':
                case 'i':
                case 'u':
                {
                    numeric = true;
                    BigInteger iv = ToInteger(v, type, allowFloat: true);
                    if (iv.Sign < 0) { sign = "-"; iv = -iv; }
                    body = iv.ToString(CultureInfo.InvariantCulture);
                    if (prec >= 0 && body.Length < prec) body = new string('0', prec - body.Length) + body;
                    break;
                }
                case 'x':
                case 'X':
                case 'o':
                {
                    numeric = true;
                    BigInteger iv = ToInteger(v, type, allowFloat: false);
                    if (iv.Sign < 0) { sign = "-"; iv = -iv; }
                    body = type == 'o' ? ToOctal(iv) : iv.ToString(type == 'x' ? "x" : "X", CultureInfo.InvariantCulture).TrimStart('0');
                    if (body.Length == 0) body = "0";
                    if (prec >= 0 && body.Length < prec) body = new string('0', prec - body.Length) + body;
                    if (alt) body = (type == 'o' ? "0o" : type == 'x' ? "0x" : "0X") + body;
                    break;
                }
                case 'e':
                case 'E':
                case 'f':
                case 'F':
                case 'g':
                case 'G':
                {
                    numeric = true;
                    if (!Py.IsNumber(v))
                        throw Err.Type($"must be real number, not {v.TypeName}");
                    double dv = Py.ToDouble(v);
                    int p = prec < 0 ? 6 : prec;
                    body = type switch
                    {
                        'e' or 'E' => Exponent(dv, p, type == 'E', alt),
                        'f' or 'F' => Fixed(dv, p, alt),
                        _ => General(dv, p, type == 'G', alt),
                    };
                    if (type == 'F') body = body.ToUpperInvariant();
                    if (body.StartsWith('-')) { sign = "-"; body = body.Substring(1); }
                    break;
                }
                case 'c':
                    if (v is JinjaString cs && Py.Len(cs.Value) == 1) body = cs.Value;
                    else if (Py.IsIntLike(v, out long cv) && cv >= 0 && cv <= 0x10FFFF) body = char.ConvertFromUtf32((int)cv);
                    else throw Err.Type("%c requires int or char");
                    break;
                default:
                    throw Err.Runtime($"unsupported format character '{type}' (0x{(int)type:x}) at index {i - 1}");
            }
            if (numeric && sign.Length == 0) sign = plus ? "+" : space ? " " : "";
            int len = sign.Length + Py.Len(body);
            if (width > len)
            {
                if (left) sb.Append(sign).Append(body).Append(' ', width - len);
                else if (zero && numeric) sb.Append(sign).Append('0', width - len).Append(body);
                else sb.Append(' ', width - len).Append(sign).Append(body);
            }
            else sb.Append(sign).Append(body);
        }
        if (mapping is null && next < list.Count) throw Err.Type("not all arguments converted during string formatting");
        return sb.ToString();
    }

    private static string ToOctal(BigInteger v)
    {
        if (v.IsZero) return "0";
        var sb = new StringBuilder();
        while (!v.IsZero)
        {
            sb.Insert(0, (char)('0' + (int)(v % 8)));
            v /= 8;
        }
        return sb.ToString();
    }

    private static BigInteger ToInteger(JinjaValue v, char type, bool allowFloat)
    {
        if (Py.IsInteger(v, out var big)) return big;
        if (allowFloat && v is JinjaFloat f)
        {
            if (double.IsNaN(f.Value) || double.IsInfinity(f.Value)) throw Err.Runtime("cannot convert float to integer");
            return new BigInteger(Math.Truncate(f.Value));
        }
        throw Err.Type(allowFloat
            ? $"%{type} format: a real number is required, not {v.TypeName}"
            : $"%{type} format: an integer is required, not {v.TypeName}");
    }

    // ------------------------------------------------------------------ str.format

    public static string StrFormat(string fmt, JinjaArgs args)
    {
        var sb = new StringBuilder();
        int auto = 0;
        bool usedAuto = false, usedManual = false;
        int i = 0, n = fmt.Length;
        while (i < n)
        {
            char c = fmt[i];
            if (c == '{')
            {
                if (i + 1 < n && fmt[i + 1] == '{') { sb.Append('{'); i += 2; continue; }
                int depth = 1, start = ++i;
                while (i < n && depth > 0)
                {
                    if (fmt[i] == '{') depth++;
                    else if (fmt[i] == '}') depth--;
                    i++;
                }
                if (depth > 0) throw Err.Runtime("expected '}' before end of string");
                string field = fmt.Substring(start, i - 1 - start);
                sb.Append(FormatField(field, args, ref auto, ref usedAuto, ref usedManual));
                continue;
            }
            if (c == '}')
            {
                if (i + 1 < n && fmt[i + 1] == '}') { sb.Append('}'); i += 2; continue; }
                throw Err.Runtime("Single '}' encountered in format string");
            }
            sb.Append(c);
            i++;
        }
        return sb.ToString();
    }

    private static string FormatField(string field, JinjaArgs args, ref int auto, ref bool usedAuto, ref bool usedManual)
    {
        // split off format spec (first ':' not inside brackets) and conversion
        int k = 0, bracket = 0;
        for (; k < field.Length; k++)
        {
            char ch = field[k];
            if (ch == '[') bracket++;
            else if (ch == ']') bracket--;
            else if (bracket == 0 && (ch == ':' || ch == '!')) break;
        }
        string name = field.Substring(0, k);
        char conv = '\0';
        string spec = "";
        if (k < field.Length && field[k] == '!')
        {
            if (k + 1 >= field.Length) throw Err.Runtime("end of string while looking for conversion specifier");
            conv = field[k + 1];
            k += 2;
            if (k < field.Length && field[k] != ':') throw Err.Runtime("expected ':' after conversion specifier");
        }
        if (k < field.Length && field[k] == ':') spec = field.Substring(k + 1);
        if (spec.Contains('{')) spec = StrFormat(spec, args);

        // resolve the value
        int p = 0;
        while (p < name.Length && name[p] != '.' && name[p] != '[') p++;
        string first = name.Substring(0, p);
        JinjaValue value;
        if (first.Length == 0)
        {
            if (usedManual) throw Err.Runtime("cannot switch from manual field specification to automatic field numbering");
            usedAuto = true;
            value = Positional(args, auto++);
        }
        else if (first.All(char.IsAsciiDigit))
        {
            if (usedAuto) throw Err.Runtime("cannot switch from automatic field numbering to manual field specification");
            usedManual = true;
            value = Positional(args, int.Parse(first, CultureInfo.InvariantCulture));
        }
        else
        {
            value = args.Named.FirstOrDefault(kv => kv.Key == first).Value ?? throw Err.Runtime($"KeyError: '{first}'");
        }
        while (p < name.Length)
        {
            if (name[p] == '.')
            {
                int q = ++p;
                while (p < name.Length && name[p] != '.' && name[p] != '[') p++;
                value = Ops.GetAttr(value, name.Substring(q, p - q));
            }
            else
            {
                int q = ++p;
                while (p < name.Length && name[p] != ']') p++;
                string key = name.Substring(q, p - q);
                p++;
                JinjaValue kv = key.Length > 0 && key.All(char.IsAsciiDigit) ? JinjaInt.Of(long.Parse(key, CultureInfo.InvariantCulture)) : new JinjaString(key);
                value = value switch
                {
                    JinjaList l when kv is JinjaInt ki && ki.Value < l.Items.Count => l.Items[(int)ki.Value],
                    JinjaDict d when d.TryGet(kv, out var dv) => dv,
                    _ => throw Err.Runtime($"KeyError: {Py.Repr(kv)}"),
                };
            }
        }
        if (conv == 'r' || conv == 'a') value = new JinjaString(Py.Repr(value));
        else if (conv == 's') value = new JinjaString(Py.Str(value));
        else if (conv != '\0') throw Err.Runtime($"Unknown conversion specifier {conv}");
        return FormatSpec(value, spec);
    }

    private static JinjaValue Positional(JinjaArgs args, int index)
    {
        if (index >= args.Positional.Count)
            throw Err.Runtime($"Replacement index {index} out of range for positional args tuple");
        return args.Positional[index];
    }

    /// <summary>Python's <c>format(value, spec)</c>.</summary>
    public static string FormatSpec(JinjaValue value, string spec)
    {
        if (spec.Length == 0) return Py.Str(value);
        int i = 0;
        char fill = ' ', align = '\0';
        if (spec.Length >= 2 && spec[1] is '<' or '>' or '=' or '^') { fill = spec[0]; align = spec[1]; i = 2; }
        else if (spec[0] is '<' or '>' or '=' or '^') { align = spec[0]; i = 1; }
        char sign = '-';
        if (i < spec.Length && spec[i] is '+' or '-' or ' ') sign = spec[i++];
        if (i < spec.Length && spec[i] == 'z') i++;
        bool alt = false;
        if (i < spec.Length && spec[i] == '#') { alt = true; i++; }
        if (i < spec.Length && spec[i] == '0')
        {
            if (align == '\0') { fill = '0'; align = '='; }
            i++;
        }
        int width = 0;
        while (i < spec.Length && char.IsAsciiDigit(spec[i])) width = checked(width * 10 + (spec[i++] - '0'));
        char grouping = '\0';
        if (i < spec.Length && spec[i] is ',' or '_') grouping = spec[i++];
        int prec = -1;
        if (i < spec.Length && spec[i] == '.')
        {
            i++;
            prec = 0;
            while (i < spec.Length && char.IsAsciiDigit(spec[i])) prec = checked(prec * 10 + (spec[i++] - '0'));
        }
        char type = '\0';
        if (i < spec.Length) type = spec[i++];
        if (i < spec.Length) throw Err.Runtime("Invalid format specifier");

        string body;
        string signStr = "";
        bool numeric;
        switch (value)
        {
            case JinjaString s:
                if (type is not '\0' and not 's') throw Err.Runtime($"Unknown format code '{type}' for object of type 'str'");
                if (align == '=') throw Err.Runtime("'=' alignment not allowed in string format specifier");
                body = prec >= 0 && Py.Len(s.Value) > prec ? string.Concat(Py.Chars(s.Value).Take(prec)) : s.Value;
                numeric = false;
                break;
            case JinjaInt or JinjaBool when type is '\0' or 'd' or 'n' or 'b' or 'o' or 'x' or 'X' or 'c':
            {
                Py.IsInteger(value, out var iv);
                numeric = true;
                if (type == 'c') { body = char.ConvertFromUtf32((int)iv); break; }
                if (iv.Sign < 0) { signStr = "-"; iv = -iv; }
                body = type switch
                {
                    'b' => ToBase(iv, 2),
                    'o' => ToOctal(iv),
                    'x' => ToBase(iv, 16),
                    'X' => ToBase(iv, 16).ToUpperInvariant(),
                    _ => iv.ToString(CultureInfo.InvariantCulture),
                };
                if (grouping != '\0') body = Group(body, grouping, type is 'b' or 'o' or 'x' or 'X' ? 4 : 3);
                if (alt && type is 'b' or 'o' or 'x' or 'X') body = "0" + (type == 'X' ? 'X' : type) + body;
                break;
            }
            case JinjaInt or JinjaBool or JinjaFloat when type is '\0' or 'e' or 'E' or 'f' or 'F' or 'g' or 'G' or '%':
            {
                numeric = true;
                double d = Py.ToDouble(value);
                int p = prec < 0 ? 6 : prec;
                body = type switch
                {
                    'e' or 'E' => Exponent(d, p, type == 'E', alt),
                    'f' or 'F' => Fixed(d, p, alt),
                    'g' or 'G' => General(d, p, type == 'G', alt),
                    '%' => Fixed(d * 100, p, alt) + "%",
                    _ => prec < 0 ? Py.FloatRepr(d) : General(d, Math.Max(1, prec), false, alt),
                };
                if (type == 'F') body = body.ToUpperInvariant();
                if (body.StartsWith('-')) { signStr = "-"; body = body.Substring(1); }
                if (grouping != '\0')
                {
                    int dot = body.IndexOfAny(['.', 'e', 'E', '%']);
                    string ip = dot < 0 ? body : body.Substring(0, dot);
                    if (ip.All(char.IsAsciiDigit)) body = Group(ip, grouping, 3) + (dot < 0 ? "" : body.Substring(dot));
                }
                break;
            }
            case JinjaInt or JinjaBool or JinjaFloat:
                throw Err.Runtime($"Unknown format code '{type}' for object of type '{value.TypeName}'");
            default:
                throw Err.Type($"unsupported format string passed to {value.TypeName}.__format__");
        }
        if (numeric && signStr.Length == 0) signStr = sign == '+' ? "+" : sign == ' ' ? " " : "";
        if (align == '\0') align = numeric ? '>' : '<';
        int len = signStr.Length + Py.Len(body);
        if (width <= len) return signStr + body;
        int pad = width - len;
        string f = fill.ToString();
        string Rep(int k) => k <= 0 ? "" : string.Concat(Enumerable.Repeat(f, k));
        return align switch
        {
            '<' => signStr + body + Rep(pad),
            '>' => Rep(pad) + signStr + body,
            '=' => signStr + Rep(pad) + body,
            _ => Rep(pad / 2) + signStr + body + Rep(pad - pad / 2),
        };
    }

    private static string ToBase(BigInteger v, int radix)
    {
        if (v.IsZero) return "0";
        var sb = new StringBuilder();
        while (!v.IsZero)
        {
            int d = (int)(v % radix);
            sb.Insert(0, (char)(d < 10 ? '0' + d : 'a' + d - 10));
            v /= radix;
        }
        return sb.ToString();
    }

    private static string Group(string digits, char sep, int every)
    {
        var sb = new StringBuilder();
        int first = digits.Length % every;
        if (first == 0) first = every;
        sb.Append(digits, 0, Math.Min(first, digits.Length));
        for (int i = first; i < digits.Length; i += every) sb.Append(sep).Append(digits, i, every);
        return sb.ToString();
    }
}
