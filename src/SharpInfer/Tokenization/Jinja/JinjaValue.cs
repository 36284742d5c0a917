using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpInfer.Tokenization.Jinja;

/// <summary>A value seen by a template. Values are only built from JSON and primitives (strings,
/// integers, floats, booleans, None, lists, dicts) plus engine-made objects (namespaces, macros,
/// functions): templates never touch .NET objects. Semantics follow Python/Jinja2.</summary>
internal abstract class JinjaValue
{
    private protected JinjaValue() { }

    /// <summary>Python's <c>None</c>.</summary>
    public static JinjaValue None => JinjaNone.Instance;
    /// <summary>Jinja2's default undefined value (prints as an empty string).</summary>
    public static JinjaValue Undefined => JinjaUndefined.Plain;
    /// <summary>Python's <c>True</c>.</summary>
    public static JinjaValue True => JinjaBool.TrueValue;
    /// <summary>Python's <c>False</c>.</summary>
    public static JinjaValue False => JinjaBool.FalseValue;

    /// <summary>A string value.</summary>
    public static JinjaValue From(string? value) => value is null ? JinjaNone.Instance : new JinjaString(value);
    /// <summary>An integer value.</summary>
    public static JinjaValue From(long value) => JinjaInt.Of(value);
    /// <summary>A float value.</summary>
    public static JinjaValue From(double value) => new JinjaFloat(value);
    /// <summary>A boolean value.</summary>
    public static JinjaValue From(bool value) => value ? JinjaBool.TrueValue : JinjaBool.FalseValue;
    /// <summary>A list of values.</summary>
    public static JinjaValue List(IEnumerable<JinjaValue> items) => new JinjaList(items.ToList());
    /// <summary>A dict with string keys, in the given order.</summary>
    public static JinjaValue Dict(IEnumerable<KeyValuePair<string, JinjaValue>> entries)
    {
        var d = new JinjaDict();
        foreach (var (k, v) in entries) d.Set(k, v);
        return d;
    }

    /// <summary>Converts JSON to template values: objects become dicts that keep key order (like Python
    /// dicts from <c>json.loads</c>), arrays lists, numbers ints (no fraction or exponent in the JSON text)
    /// or floats, JSON null (and a null node) None.</summary>
    public static JinjaValue FromJson(JsonNode? node)
    {
        switch (node)
        {
            case null: return JinjaNone.Instance;
            case JsonObject obj:
            {
                var d = new JinjaDict();
                foreach (var (k, v) in obj) d.Set(new JinjaString(k), FromJson(v));
                return d;
            }
            case JsonArray arr:
            {
                var items = new List<JinjaValue>(arr.Count);
                foreach (var item in arr) items.Add(FromJson(item));
                return new JinjaList(items);
            }
            case JsonValue val:
                switch (val.GetValueKind())
                {
                    case JsonValueKind.String:
                        return new JinjaString(val.TryGetValue<string>(out var str) ? str : val.ToString());
                    case JsonValueKind.True: return JinjaBool.TrueValue;
                    case JsonValueKind.False: return JinjaBool.FalseValue;
                    case JsonValueKind.Null: return JinjaNone.Instance;
                    case JsonValueKind.Number:
                        if (val.TryGetValue<JsonElement>(out var el)) return FromJson(el);
                        if (val.TryGetValue<long>(out var l)) return JinjaInt.Of(l);
                        if (val.TryGetValue<int>(out var i)) return JinjaInt.Of(i);
                        if (val.TryGetValue<double>(out var dbl)) return new JinjaFloat(dbl);
                        if (val.TryGetValue<float>(out var fl)) return new JinjaFloat(fl);
                        if (val.TryGetValue<decimal>(out var dec)) return new JinjaFloat((double)dec);
                        break;
                }
                using (var doc = JsonDocument.Parse(val.ToJsonString())) return FromJson(doc.RootElement);
            default:
                throw new ArgumentException("unsupported JSON node " + node.GetType().Name, nameof(node));
        }
    }

    /// <summary>Converts a JSON element (see <see cref="FromJson(JsonNode?)"/>).</summary>
    public static JinjaValue FromJson(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
            {
                var d = new JinjaDict();
                foreach (var p in element.EnumerateObject()) d.Set(new JinjaString(p.Name), FromJson(p.Value));
                return d;
            }
            case JsonValueKind.Array:
            {
                var items = new List<JinjaValue>(element.GetArrayLength());
                foreach (var item in element.EnumerateArray()) items.Add(FromJson(item));
                return new JinjaList(items);
            }
            case JsonValueKind.String: return new JinjaString(element.GetString()!);
            case JsonValueKind.Number:
            {
                string raw = element.GetRawText();
                if (raw.IndexOfAny(['.', 'e', 'E']) < 0)
                {
                    if (long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l)) return JinjaInt.Of(l);
                    if (raw.Length <= 4300 && System.Numerics.BigInteger.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var big))
                        return JinjaInt.Of(big);
                }
                return new JinjaFloat(double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture));
            }
            case JsonValueKind.True: return JinjaBool.TrueValue;
            case JsonValueKind.False: return JinjaBool.FalseValue;
            case JsonValueKind.Null: return JinjaNone.Instance;
            default: return JinjaUndefined.Plain;
        }
    }

    /// <summary>Python's type name (<c>str</c>, <c>int</c>, <c>dict</c>, ...), used in error messages.</summary>
    internal abstract string TypeName { get; }
    /// <summary>Python truthiness.</summary>
    internal virtual bool IsTruthy => true;

    /// <summary>Python's <c>str()</c> of the value (what <c>{{ value }}</c> prints).</summary>
    public override string ToString() => Py.Str(this);
}

/// <summary>Jinja2's default <c>Undefined</c>: prints as "", iterates as empty, is falsy; attribute access,
/// subscripts, calls and arithmetic raise a <see cref="TemplateException"/> with <see cref="Hint"/>.</summary>
internal sealed class JinjaUndefined : JinjaValue
{
    internal static readonly JinjaUndefined Plain = new(null);
    /// <summary>Why it is undefined (Jinja2's message, e.g. <c>'x' is undefined</c>), or null.</summary>
    public string? Hint { get; }
    internal JinjaUndefined(string? hint) => Hint = hint;
    internal override string TypeName => "Undefined";
    internal override bool IsTruthy => false;
    internal string Message => Hint ?? "value is undefined";
}

/// <summary>Python's <c>None</c>.</summary>
internal sealed class JinjaNone : JinjaValue
{
    internal static readonly JinjaNone Instance = new();
    private JinjaNone() { }
    internal override string TypeName => "NoneType";
    internal override bool IsTruthy => false;
}

/// <summary>Python's <c>bool</c>.</summary>
internal sealed class JinjaBool : JinjaValue
{
    internal static readonly JinjaBool TrueValue = new(true), FalseValue = new(false);
    /// <summary>The boolean.</summary>
    public bool Value { get; }
    private JinjaBool(bool v) => Value = v;
    internal override string TypeName => "bool";
    internal override bool IsTruthy => Value;
}

/// <summary>Python's <c>int</c>: 64-bit, promoted to arbitrary precision when it does not fit.</summary>
internal sealed class JinjaInt : JinjaValue
{
    private static readonly JinjaInt[] Small = Enumerable.Range(-16, 273).Select(i => new JinjaInt(i)).ToArray();
    /// <summary>The integer (meaningful when <see cref="IsBig"/> is false).</summary>
    public long Value { get; }
    internal readonly System.Numerics.BigInteger? Big;
    private JinjaInt(long v) => Value = v;
    private JinjaInt(System.Numerics.BigInteger v) { Big = v; Value = v.Sign < 0 ? long.MinValue : long.MaxValue; }
    /// <summary>True when the value does not fit in 64 bits (see <see cref="BigValue"/>).</summary>
    public bool IsBig => Big is not null;
    /// <summary>The integer at full precision.</summary>
    public System.Numerics.BigInteger BigValue => Big ?? Value;
    internal static JinjaInt Of(long v) => v >= -16 && v <= 256 ? Small[v + 16] : new JinjaInt(v);
    internal static JinjaInt Of(System.Numerics.BigInteger v) =>
        v >= long.MinValue && v <= long.MaxValue ? Of((long)v) : new JinjaInt(v);
    internal override string TypeName => "int";
    internal override bool IsTruthy => Big is null ? Value != 0 : true;
    internal string Text => Big?.ToString(CultureInfo.InvariantCulture) ?? Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Python's <c>float</c>.</summary>
internal sealed class JinjaFloat : JinjaValue
{
    /// <summary>The number.</summary>
    public double Value { get; }
    internal JinjaFloat(double v) => Value = v;
    internal override string TypeName => "float";
    internal override bool IsTruthy => Value != 0.0;
}

/// <summary>Python's <c>str</c>.</summary>
internal sealed class JinjaString : JinjaValue
{
    internal static readonly JinjaString Empty = new("");
    /// <summary>The text.</summary>
    public string Value { get; }
    internal JinjaString(string v) => Value = v;
    internal override string TypeName => "str";
    internal override bool IsTruthy => Value.Length != 0;
}

/// <summary>Python's <c>list</c> (or <c>tuple</c> when <see cref="IsTuple"/>).</summary>
internal sealed class JinjaList : JinjaValue
{
    /// <summary>The items (mutable for lists: <c>append</c>, <c>pop</c>, ...).</summary>
    public List<JinjaValue> Items { get; }
    /// <summary>A tuple prints as <c>(a, b)</c> and cannot be mutated.</summary>
    public bool IsTuple { get; }
    /// <summary>For the results of dict.items()/keys()/values(): prints as <c>dict_items([...])</c> like Python.</summary>
    internal string? ViewName { get; init; }
    internal JinjaList(List<JinjaValue> items, bool isTuple = false) { Items = items; IsTuple = isTuple; }
    internal override string TypeName => IsTuple ? "tuple" : "list";
    internal override bool IsTruthy => Items.Count != 0;
}

/// <summary>Python's <c>dict</c>, keeping insertion order.</summary>
internal sealed class JinjaDict : JinjaValue
{
    internal readonly OrderedDictionary<JinjaValue, JinjaValue> Map = new(KeyComparer.Instance);
    internal JinjaDict() { }
    internal override string TypeName => "dict";
    internal override bool IsTruthy => Map.Count != 0;
    /// <summary>Number of entries.</summary>
    public int Count => Map.Count;
    /// <summary>Entries in insertion order.</summary>
    public IEnumerable<KeyValuePair<JinjaValue, JinjaValue>> Entries => Map;
    /// <summary>Sets (or adds at the end) an entry.</summary>
    public void Set(JinjaValue key, JinjaValue value) => Map[key] = value;
    /// <summary>Sets an entry with a string key.</summary>
    public void Set(string key, JinjaValue value) => Map[new JinjaString(key)] = value;
    /// <summary>Looks up a key.</summary>
    public bool TryGet(JinjaValue key, out JinjaValue value) => Map.TryGetValue(key, out value!);
    internal bool TryGet(string key, out JinjaValue value) => Map.TryGetValue(new JinjaString(key), out value!);
}

/// <summary>Jinja2's <c>namespace()</c>: an object whose attributes can be assigned with
/// <c>{% set ns.attr = value %}</c> from any scope.</summary>
internal sealed class JinjaNamespace : JinjaValue
{
    internal readonly Dictionary<string, JinjaValue> Attributes = new(StringComparer.Ordinal);
    internal readonly List<string> Order = new();
    internal override string TypeName => "Namespace";
    internal void Set(string name, JinjaValue value)
    {
        if (!Attributes.ContainsKey(name)) Order.Add(name);
        Attributes[name] = value;
    }
}

/// <summary>Arguments of a call from a template: positional then keyword arguments.</summary>
internal sealed class JinjaArgs
{
    internal static readonly JinjaArgs Empty = new([], []);
    /// <summary>Positional arguments in order.</summary>
    public IReadOnlyList<JinjaValue> Positional { get; }
    /// <summary>Keyword arguments in order.</summary>
    public IReadOnlyList<KeyValuePair<string, JinjaValue>> Named { get; }
    /// <summary>Creates an argument list.</summary>
    public JinjaArgs(IReadOnlyList<JinjaValue> positional, IReadOnlyList<KeyValuePair<string, JinjaValue>> named)
    {
        Positional = positional;
        Named = named;
    }

    /// <summary>The argument at <paramref name="index"/> or named <paramref name="name"/>, or null if not given.</summary>
    public JinjaValue? Get(int index, string name)
    {
        if (index >= 0 && index < Positional.Count) return Positional[index];
        foreach (var kv in Named) if (kv.Key == name) return kv.Value;
        return null;
    }
}

/// <summary>A callable value: a built-in function, a macro, a bound method.</summary>
internal abstract class JinjaCallable : JinjaValue
{
    private protected JinjaCallable() { }
    internal override string TypeName => "function";
    internal abstract JinjaValue Call(RenderState state, JinjaArgs args);
}

/// <summary>A function implemented in C# that templates can call (e.g. a custom global).</summary>
internal sealed class JinjaFunction : JinjaCallable
{
    /// <summary>The function's name (for error messages).</summary>
    public string Name { get; }
    private readonly Func<RenderState, JinjaArgs, JinjaValue> _body;
    /// <summary>Creates a function from a delegate over the call's arguments.</summary>
    public JinjaFunction(string name, Func<JinjaArgs, JinjaValue> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        Name = name;
        _body = (_, a) => body(a);
    }
    internal JinjaFunction(string name, Func<RenderState, JinjaArgs, JinjaValue> body) { Name = name; _body = body; }
    internal override string TypeName => "builtin_function_or_method";
    internal override JinjaValue Call(RenderState state, JinjaArgs args) => _body(state, args);
}

/// <summary>Equality and hashing of dict keys with Python semantics (1 == 1.0 == True).</summary>
internal sealed class KeyComparer : IEqualityComparer<JinjaValue>
{
    public static readonly KeyComparer Instance = new();
    public bool Equals(JinjaValue? x, JinjaValue? y) => Py.Equal(x!, y!);
    public int GetHashCode(JinjaValue v)
    {
        switch (v)
        {
            case JinjaString s: return string.GetHashCode(s.Value, StringComparison.Ordinal);
            case JinjaInt i: return i.Big?.GetHashCode() ?? i.Value.GetHashCode();
            case JinjaBool b: return (b.Value ? 1L : 0L).GetHashCode();
            case JinjaFloat f:
                if (Math.Floor(f.Value) == f.Value && Math.Abs(f.Value) < 9.2e18) return ((long)f.Value).GetHashCode();
                return f.Value.GetHashCode();
            case JinjaNone: return 0x5f3759df;
            case JinjaUndefined: return 0x1badb002;
            case JinjaList { IsTuple: true } t:
            {
                System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
                var h = new HashCode();
                foreach (var item in t.Items) h.Add(GetHashCode(item));
                return h.ToHashCode();
            }
            case JinjaList or JinjaDict:
                throw Err.Runtime($"unhashable type: '{v.TypeName}'");
            default: return System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(v);
        }
    }
}
