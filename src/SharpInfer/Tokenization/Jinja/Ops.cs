using System.Text;

namespace SharpInfer.Tokenization.Jinja;

/// <summary>Operators, attribute/item access, iteration and calls with Jinja2/Python semantics.</summary>
internal static class Ops
{
    /// <summary>Jinja2's <c>object_type_repr</c> used in undefined messages.</summary>
    public static string ObjectTypeRepr(JinjaValue v) => v is JinjaNone ? "None" : $"{v.TypeName} object";

    public static JinjaUndefined MissingAttr(JinjaValue obj, string name) =>
        new($"'{ObjectTypeRepr(obj)}' has no attribute '{name}'");

    public static JinjaUndefined MissingItem(JinjaValue obj, JinjaValue key) =>
        key is JinjaString s ? MissingAttr(obj, s.Value) : new($"{ObjectTypeRepr(obj)} has no element {Py.Repr(key)}");

    // ------------------------------------------------------------------ attribute / item access

    /// <summary><c>obj.name</c>: Python attribute first (methods), then item, else undefined.</summary>
    public static JinjaValue GetAttr(JinjaValue obj, string name)
    {
        switch (obj)
        {
            case JinjaUndefined u: throw Err.Undefined(u);
            case JinjaDict d:
                if (Methods.IsMethod(obj, name)) return Methods.Bind(obj, name);
                return d.TryGet(name, out var v) ? v : MissingAttr(obj, name);
            case JinjaNamespace ns:
                return ns.Attributes.TryGetValue(name, out var nv) ? nv : MissingAttr(obj, name);
            case LoopObject loop: return loop.Attr(name);
            case CyclerObject cyc: return cyc.Attr(name);
            default:
                if (Methods.IsMethod(obj, name)) return Methods.Bind(obj, name);
                return MissingAttr(obj, name);
        }
    }

    /// <summary><c>obj[key]</c>: item first, then (for string keys) attribute, else undefined.</summary>
    public static JinjaValue GetItem(RenderState st, JinjaValue obj, JinjaValue key)
    {
        switch (obj)
        {
            case JinjaUndefined u: throw Err.Undefined(u);
            case JinjaDict d:
                if (key is not JinjaDict && key is not JinjaList { IsTuple: false } && d.TryGet(key, out var v)) return v;
                break;
            case JinjaList list:
                if (Py.IsIntLike(key, out long idx))
                {
                    if (idx < 0) idx += list.Items.Count;
                    if (idx >= 0 && idx < list.Items.Count) return list.Items[(int)idx];
                    return MissingItem(obj, key);
                }
                break;
            case JinjaString s:
                if (Py.IsIntLike(key, out long ci))
                {
                    if (!Py.HasSurrogates(s.Value))
                    {
                        if (ci < 0) ci += s.Value.Length;
                        if (ci >= 0 && ci < s.Value.Length) return new JinjaString(s.Value[(int)ci].ToString());
                        return MissingItem(obj, key);
                    }
                    var chars = Py.Chars(s.Value);
                    if (ci < 0) ci += chars.Length;
                    if (ci >= 0 && ci < chars.Length) return new JinjaString(chars[ci]);
                    return MissingItem(obj, key);
                }
                break;
        }
        if (key is JinjaString name) return GetAttr(obj, name.Value);
        return MissingItem(obj, key);
    }

    public static JinjaValue Slice(RenderState st, JinjaValue obj, JinjaValue? a, JinjaValue? b, JinjaValue? c)
    {
        if (obj is JinjaUndefined u) throw Err.Undefined(u);
        // Jinja2 compiles slices to a plain Python subscript, so errors propagate instead of giving undefined.
        if (obj is JinjaDict) throw Err.Type("unhashable type: 'slice'");
        if (obj is not (JinjaList or JinjaString)) throw Err.Type($"'{obj.TypeName}' object is not subscriptable");
        if (!SliceBound(a, out long? start) || !SliceBound(b, out long? stop) || !SliceBound(c, out long? step))
            throw Err.Type("slice indices must be integers or None or have an __index__ method");
        switch (obj)
        {
            case JinjaList list:
            {
                var idx = Py.SliceIndices(list.Items.Count, start, stop, step);
                st.Charge(idx.Count);
                var items = new List<JinjaValue>(idx.Count);
                foreach (int i in idx) items.Add(list.Items[i]);
                return new JinjaList(items, list.IsTuple);
            }
            case JinjaString s:
            {
                if (!Py.HasSurrogates(s.Value))
                {
                    if ((step ?? 1) == 1)
                    {
                        var r = Py.SliceIndices(s.Value.Length, start, stop, 1);
                        return r.Count == 0 ? JinjaString.Empty : new JinjaString(s.Value.Substring(r[0], r.Count));
                    }
                    var idx = Py.SliceIndices(s.Value.Length, start, stop, step);
                    var sb = new StringBuilder(idx.Count);
                    foreach (int i in idx) sb.Append(s.Value[i]);
                    return new JinjaString(sb.ToString());
                }
                var chars = Py.Chars(s.Value);
                var ids = Py.SliceIndices(chars.Length, start, stop, step);
                var sb2 = new StringBuilder();
                foreach (int i in ids) sb2.Append(chars[i]);
                return new JinjaString(sb2.ToString());
            }
            default:
                throw Err.Type($"'{obj.TypeName}' object is not subscriptable");
        }
    }

    private static bool SliceBound(JinjaValue? v, out long? value)
    {
        value = null;
        if (v is null or JinjaNone) return true;
        if (Py.IsIntLike(v, out long l)) { value = l; return true; }
        if (Py.IsInteger(v, out var big)) { value = big.Sign < 0 ? long.MinValue / 2 : long.MaxValue / 2; return true; }
        if (v is JinjaUndefined u) throw Err.Undefined(u);
        return false;
    }

    // ------------------------------------------------------------------ calls

    public static JinjaValue Call(RenderState st, JinjaValue fn, JinjaArgs args) => fn switch
    {
        JinjaCallable c => c.Call(st, args),
        JinjaUndefined u => throw Err.Undefined(u),
        _ => throw Err.Type($"'{fn.TypeName}' object is not callable"),
    };

    // ------------------------------------------------------------------ iteration

    /// <summary>Python <c>list(iter(v))</c> with Jinja2's undefined → empty.</summary>
    public static List<JinjaValue> Iterate(RenderState st, JinjaValue v)
    {
        switch (v)
        {
            case JinjaList l:
                st.Charge(l.Items.Count);
                return new List<JinjaValue>(l.Items);
            case JinjaDict d:
                st.Charge(d.Map.Count);
                return new List<JinjaValue>(d.Map.Keys);
            case JinjaString s:
            {
                st.Charge(s.Value.Length);
                var list = new List<JinjaValue>(s.Value.Length);
                if (!Py.HasSurrogates(s.Value)) foreach (char c in s.Value) list.Add(new JinjaString(c.ToString()));
                else foreach (var c in Py.Chars(s.Value)) list.Add(new JinjaString(c));
                return list;
            }
            case JinjaUndefined: return new List<JinjaValue>();
            default: throw Err.Type($"'{v.TypeName}' object is not iterable");
        }
    }

    public static long Length(JinjaValue v) => v switch
    {
        JinjaString s => Py.Len(s.Value),
        JinjaList l => l.Items.Count,
        JinjaDict d => d.Map.Count,
        JinjaUndefined => 0,
        JinjaNamespace ns => throw Err.Type("object of type 'Namespace' has no len()"),
        _ => throw Err.Type($"object of type '{v.TypeName}' has no len()"),
    };

    public static bool In(JinjaValue item, JinjaValue container)
    {
        switch (container)
        {
            case JinjaString s:
                if (item is JinjaString sub) return s.Value.Contains(sub.Value, StringComparison.Ordinal);
                if (item is JinjaUndefined u) throw Err.Undefined(u);
                throw Err.Type($"'in <string>' requires string as left operand, not {item.TypeName}");
            case JinjaList l:
                foreach (var x in l.Items) if (ReferenceEquals(x, item) || Py.Equal(x, item)) return true;
                return false;
            case JinjaDict d:
                if (item is JinjaDict || item is JinjaList { IsTuple: false })
                    throw Err.Type($"unhashable type: '{item.TypeName}'");
                return d.Map.ContainsKey(item);
            case JinjaUndefined: return false;
            default: throw Err.Type($"argument of type '{container.TypeName}' is not iterable");
        }
    }

    // ------------------------------------------------------------------ operators

    public static bool Compare(RenderState st, string op, JinjaValue a, JinjaValue b) => op switch
    {
        "==" => Py.Equal(a, b),
        "!=" => !Py.Equal(a, b),
        "in" => In(a, b),
        "notin" => !In(a, b),
        _ => Py.CompareOp(op, a, b),
    };

    public static JinjaValue Unary(JinjaValue v, bool negate)
    {
        switch (v)
        {
            case JinjaInt i: return negate ? JinjaInt.Of(-i.BigValue) : i;
            case JinjaBool b: return JinjaInt.Of(negate ? -(b.Value ? 1 : 0) : (b.Value ? 1 : 0));
            case JinjaFloat f: return negate ? new JinjaFloat(-f.Value) : f;
            case JinjaUndefined u: throw Err.Undefined(u);
            default: throw Err.Type($"bad operand type for unary {(negate ? "-" : "+")}: '{v.TypeName}'");
        }
    }

    private static TemplateException Unsupported(string op, JinjaValue a, JinjaValue b) =>
        Err.Type($"unsupported operand type(s) for {op}: '{a.TypeName}' and '{b.TypeName}'");

    public static JinjaValue Binary(RenderState st, string op, JinjaValue a, JinjaValue b)
    {
        if (op == "~")
        {
            string sa = Py.Str(a), sb = Py.Str(b);
            st.CheckLength((long)sa.Length + sb.Length);
            return new JinjaString(sa + sb);
        }
        if (op == "+" && st.Options.ConcatNoneAsEmpty && (a is JinjaString && b is JinjaUndefined or JinjaNone || b is JinjaString && a is JinjaUndefined or JinjaNone))
            return a is JinjaString ? a : b;
        if (a is JinjaUndefined ua) throw Err.Undefined(ua);
        if (b is JinjaUndefined ub) throw Err.Undefined(ub);
        switch (op)
        {
            case "+":
                if (a is JinjaString s1 && b is JinjaString s2)
                {
                    st.CheckLength((long)s1.Value.Length + s2.Value.Length);
                    return new JinjaString(s1.Value + s2.Value);
                }
                if (a is JinjaList l1 && b is JinjaList l2 && l1.IsTuple == l2.IsTuple)
                {
                    st.CheckLength((long)l1.Items.Count + l2.Items.Count);
                    st.Charge(l1.Items.Count + l2.Items.Count);
                    var items = new List<JinjaValue>(l1.Items.Count + l2.Items.Count);
                    items.AddRange(l1.Items);
                    items.AddRange(l2.Items);
                    return new JinjaList(items, l1.IsTuple);
                }
                if (Py.IsNumber(a) && Py.IsNumber(b)) return Arith(op, a, b);
                if (a is JinjaString) throw Err.Type($"can only concatenate str (not \"{b.TypeName}\") to str");
                if (a is JinjaList al) throw Err.Type($"can only concatenate {al.TypeName} (not \"{b.TypeName}\") to {al.TypeName}");
                throw Unsupported("+", a, b);
            case "*":
                if (a is JinjaString or JinjaList && Py.IsIntLike(b, out long n1)) return Repeat(st, a, n1);
                if (b is JinjaString or JinjaList && Py.IsIntLike(a, out long n2)) return Repeat(st, b, n2);
                if (Py.IsNumber(a) && Py.IsNumber(b)) return Arith(op, a, b);
                if (a is JinjaString or JinjaList || b is JinjaString or JinjaList)
                    throw Err.Type($"can't multiply sequence by non-int of type '{(a is JinjaString or JinjaList ? b : a).TypeName}'");
                throw Unsupported("*", a, b);
            case "%":
                if (a is JinjaString fmt)
                {
                    var r = PyFormat.Printf(fmt.Value, b);
                    st.CheckLength(r.Length);
                    return new JinjaString(r);
                }
                if (Py.IsNumber(a) && Py.IsNumber(b)) return Arith(op, a, b);
                throw Unsupported("%", a, b);
            default:
                if (Py.IsNumber(a) && Py.IsNumber(b)) return Arith(op, a, b);
                throw Unsupported(op, a, b);
        }
    }

    private static JinjaValue Repeat(RenderState st, JinjaValue seq, long n)
    {
        if (n <= 0) return seq is JinjaString ? JinjaString.Empty : new JinjaList(new List<JinjaValue>(), ((JinjaList)seq).IsTuple);
        if (seq is JinjaString s)
        {
            st.CheckLength(s.Value.Length * Math.Min(n, long.MaxValue / Math.Max(1, s.Value.Length)));
            if (s.Value.Length == 0) return s;
            var sb = new StringBuilder(checked((int)(s.Value.Length * n)));
            for (long i = 0; i < n; i++) sb.Append(s.Value);
            return new JinjaString(sb.ToString());
        }
        var l = (JinjaList)seq;
        st.CheckLength(l.Items.Count * Math.Min(n, long.MaxValue / Math.Max(1, l.Items.Count)));
        st.Charge(l.Items.Count * n);
        var items = new List<JinjaValue>((int)(l.Items.Count * n));
        for (long i = 0; i < n; i++) items.AddRange(l.Items);
        return new JinjaList(items, l.IsTuple);
    }

    public static JinjaValue Arith(string op, JinjaValue a, JinjaValue b)
    {
        if (Py.IsInteger(a, out var bx) && Py.IsInteger(b, out var by))
        {
            if (Py.IsIntLike(a, out long x) && Py.IsIntLike(b, out long y))
            {
                try
                {
                    return IntArith(op, x, y);
                }
                catch (OverflowException)
                {
                    // promote to arbitrary precision below
                }
            }
            return BigArith(op, bx, by);
        }
        return FloatArith(op, a, b);
    }

    private const int MaxIntBits = 65536;

    private static JinjaValue BigArith(string op, System.Numerics.BigInteger x, System.Numerics.BigInteger y)
    {
        System.Numerics.BigInteger r;
        switch (op)
        {
            case "+": r = x + y; break;
            case "-": r = x - y; break;
            case "*":
                if (x.GetBitLength() + y.GetBitLength() > MaxIntBits) throw Err.Runtime("integer result too large");
                r = x * y;
                break;
            case "/":
                if (y.IsZero) throw Err.Runtime("division by zero");
                return new JinjaFloat((double)x / (double)y);
            case "//":
            case "%":
            {
                if (y.IsZero) throw Err.Runtime("integer division or modulo by zero");
                var q = System.Numerics.BigInteger.DivRem(x, y, out var rem);
                if (!rem.IsZero && (rem.Sign < 0) != (y.Sign < 0)) { q -= 1; rem += y; }
                r = op == "//" ? q : rem;
                break;
            }
            case "**":
                if (y.Sign < 0) return new JinjaFloat(Math.Pow((double)x, (double)y));
                if (x.GetBitLength() > 1 && (double)x.GetBitLength() * (double)y > MaxIntBits) throw Err.Runtime("integer result too large");
                r = System.Numerics.BigInteger.Pow(x, (int)y);
                break;
            default: throw Err.Runtime($"unknown operator {op}");
        }
        return JinjaInt.Of(r);
    }

    private static JinjaValue IntArith(string op, long x, long y)
    {
        {
            checked
            {
                switch (op)
                {
                    case "+": return JinjaInt.Of(x + y);
                    case "-": return JinjaInt.Of(x - y);
                    case "*": return JinjaInt.Of(x * y);
                    case "/":
                        if (y == 0) throw Err.Runtime("division by zero");
                        return new JinjaFloat((double)x / y);
                    case "//":
                    {
                        if (y == 0) throw Err.Runtime("integer division or modulo by zero");
                        long q = x / y;
                        if (x % y != 0 && (x < 0) != (y < 0)) q--;
                        return JinjaInt.Of(q);
                    }
                    case "%":
                    {
                        if (y == 0) throw Err.Runtime("integer division or modulo by zero");
                        long r = x % y;
                        if (r != 0 && (r < 0) != (y < 0)) r += y;
                        return JinjaInt.Of(r);
                    }
                    case "**":
                        if (y < 0)
                        {
                            if (x == 0) throw Err.Runtime("0.0 cannot be raised to a negative power");
                            return new JinjaFloat(Math.Pow(x, y));
                        }
                        long result = 1, bas = x, e = y;
                        while (e > 0)
                        {
                            if ((e & 1) != 0) result *= bas;
                            e >>= 1;
                            if (e > 0) bas *= bas;
                        }
                        return JinjaInt.Of(result);
                }
            }
        }
        throw Err.Runtime($"unknown operator {op}");
    }

    private static JinjaValue FloatArith(string op, JinjaValue a, JinjaValue b)
    {
        double dx = Py.ToDouble(a), dy = Py.ToDouble(b);
        switch (op)
        {
            case "+": return new JinjaFloat(dx + dy);
            case "-": return new JinjaFloat(dx - dy);
            case "*": return new JinjaFloat(dx * dy);
            case "/":
                if (dy == 0) throw Err.Runtime("float division by zero");
                return new JinjaFloat(dx / dy);
            case "//":
                if (dy == 0) throw Err.Runtime("float floor division by zero");
                return new JinjaFloat(Math.Floor(dx / dy));
            case "%":
            {
                if (dy == 0) throw Err.Runtime("float modulo");
                double r = dx % dy;
                if (r != 0 && (r < 0) != (dy < 0)) r += dy;
                return new JinjaFloat(r);
            }
            case "**":
                if (dx == 0 && dy < 0) throw Err.Runtime("0.0 cannot be raised to a negative power");
                return new JinjaFloat(Math.Pow(dx, dy));
        }
        throw Err.Runtime($"unknown operator {op}");
    }
}
