using System.Runtime.CompilerServices;
using System.Text;

namespace SharpInfer.Tokenization.Jinja;

/// <summary>Per-render state: limits, counters, the clock. Internal to the engine.</summary>
internal sealed class RenderState
{
    internal readonly JinjaOptions Options;
    internal readonly SourceMap? Map;
    private long _steps;
    private int _depth;

    internal RenderState(JinjaOptions options, SourceMap? map)
    {
        Options = options;
        Map = map;
    }

    internal long Steps => _steps;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Step()
    {
        if (++_steps > Options.MaxSteps) StepsExceeded();
    }

    internal void Charge(long n)
    {
        _steps += n;
        if (_steps > Options.MaxSteps) StepsExceeded();
    }

    private void StepsExceeded() =>
        throw Err.Limit(TemplateLimit.Steps, $"evaluation steps exceeded MaxSteps ({Options.MaxSteps})");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CheckLength(long length)
    {
        if (length > Options.MaxOutputLength)
            throw Err.Limit(TemplateLimit.OutputSize, $"output or value size exceeded MaxOutputLength ({Options.MaxOutputLength})");
    }

    internal void EnterCall()
    {
        if (++_depth > Options.MaxDepth)
        {
            _depth--;
            throw Err.Limit(TemplateLimit.Depth, $"call depth exceeded MaxDepth ({Options.MaxDepth})");
        }
        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            _depth--;
            throw Err.Limit(TemplateLimit.Depth, "call depth exceeded the available stack");
        }
    }

    internal void ExitCall() => _depth--;

    internal DateTimeOffset Now() => Options.Clock?.Invoke() ?? DateTimeOffset.Now;

    internal TemplateException Locate(TemplateException ex, int pos)
    {
        if (ex.Line is not null || Map is null || pos < 0) return ex;
        var (l, c) = Map.Locate(pos);
        return ex.WithPosition(l, c);
    }
}

/// <summary>Where rendered text goes; enforces the output size limit.</summary>
internal sealed class Output
{
    public readonly StringBuilder Sb;
    private readonly RenderState _st;

    public Output(RenderState st, int capacity = 256)
    {
        _st = st;
        Sb = new StringBuilder(capacity);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write(string s)
    {
        Sb.Append(s);
        _st.CheckLength(Sb.Length);
    }

    public override string ToString() => Sb.ToString();
}

/// <summary>A variable scope. Jinja2 gives each for-loop iteration, macro call and with-block its own
/// scope; if-blocks share the enclosing one.</summary>
internal sealed class Scope
{
    public readonly Scope? Parent;
    private Dictionary<string, JinjaValue>? _vars;
    private readonly IReadOnlyDictionary<string, JinjaValue>? _readOnly;

    public Scope(Scope? parent) => Parent = parent;

    public Scope(Scope? parent, IReadOnlyDictionary<string, JinjaValue> readOnly)
    {
        Parent = parent;
        _readOnly = readOnly;
    }

    public JinjaValue? Lookup(string name)
    {
        for (var s = this; s is not null; s = s.Parent)
        {
            if (s._vars is not null && s._vars.TryGetValue(name, out var v)) return v;
            if (s._readOnly is not null && s._readOnly.TryGetValue(name, out var r)) return r;
        }
        return null;
    }

    public void Set(string name, JinjaValue value)
    {
        _vars ??= new Dictionary<string, JinjaValue>(StringComparer.Ordinal);
        _vars[name] = value;
    }
}
