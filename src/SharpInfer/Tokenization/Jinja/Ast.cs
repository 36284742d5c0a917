using System.Runtime.CompilerServices;
using System.Text;

namespace SharpInfer.Tokenization.Jinja;

internal enum Flow { Normal, Break, Continue }

internal abstract class Node
{
    public int Pos;
}

internal abstract class Expr : Node
{
    public abstract JinjaValue Eval(RenderState st, Scope sc);
}

internal abstract class Stmt : Node
{
    public abstract Flow Exec(RenderState st, Scope sc, Output o);

    public static Flow ExecBody(List<Stmt> body, RenderState st, Scope sc, Output o)
    {
        for (int i = 0; i < body.Count; i++)
        {
            var s = body[i];
            st.Step();
            Flow f;
            try
            {
                f = s.Exec(st, sc, o);
            }
            catch (TemplateException ex) when (ex.Line is null)
            {
                throw st.Locate(ex, s.Pos);
            }
            if (f != Flow.Normal) return f;
        }
        return Flow.Normal;
    }
}

// ====================================================================== expressions

internal sealed class ConstExpr(JinjaValue value) : Expr
{
    public readonly JinjaValue Value = value;
    public override JinjaValue Eval(RenderState st, Scope sc) => Value;
}

internal sealed class NameExpr(string name) : Expr
{
    public readonly string Name = name;
    public override JinjaValue Eval(RenderState st, Scope sc) =>
        sc.Lookup(Name) ?? new JinjaUndefined($"'{Name}' is undefined");
}

internal sealed class ListExpr(List<Expr> items, bool isTuple) : Expr
{
    public readonly List<Expr> Items = items;
    public readonly bool IsTuple = isTuple;
    public override JinjaValue Eval(RenderState st, Scope sc)
    {
        var list = new List<JinjaValue>(Items.Count);
        foreach (var e in Items) list.Add(e.Eval(st, sc));
        return new JinjaList(list, IsTuple);
    }
}

internal sealed class DictExpr(List<(Expr Key, Expr Value)> pairs) : Expr
{
    public readonly List<(Expr Key, Expr Value)> Pairs = pairs;
    public override JinjaValue Eval(RenderState st, Scope sc)
    {
        var d = new JinjaDict();
        foreach (var (k, v) in Pairs) d.Set(k.Eval(st, sc), v.Eval(st, sc));
        return d;
    }
}

internal sealed class GetAttrExpr(Expr obj, string name) : Expr
{
    public readonly Expr Obj = obj;
    public readonly string Name = name;
    public override JinjaValue Eval(RenderState st, Scope sc) => Ops.GetAttr(Obj.Eval(st, sc), Name);
}

internal sealed class GetItemExpr(Expr obj, Expr key) : Expr
{
    public readonly Expr Obj = obj;
    public readonly Expr Key = key;
    public override JinjaValue Eval(RenderState st, Scope sc)
    {
        var o = Obj.Eval(st, sc);
        return Ops.GetItem(st, o, Key.Eval(st, sc));
    }
}

internal sealed class SliceExpr(Expr obj, Expr? start, Expr? stop, Expr? step) : Expr
{
    public readonly Expr Obj = obj;
    public readonly Expr? Start = start, Stop = stop, StepExpr = step;
    public override JinjaValue Eval(RenderState st, Scope sc)
    {
        var o = Obj.Eval(st, sc);
        var a = Start?.Eval(st, sc);
        var b = Stop?.Eval(st, sc);
        var c = StepExpr?.Eval(st, sc);
        return Ops.Slice(st, o, a, b, c);
    }
}

/// <summary>Argument expressions of a call, filter or test.</summary>
internal sealed class ArgList
{
    public static readonly ArgList None = new();
    public readonly List<Expr> Positional = new();
    public readonly List<(string Name, Expr Value)> Named = new();
    public Expr? DynArgs, DynKwargs;

    public bool IsEmpty => Positional.Count == 0 && Named.Count == 0 && DynArgs is null && DynKwargs is null;

    public JinjaArgs Eval(RenderState st, Scope sc, JinjaValue? extraKwValue = null, string? extraKwName = null)
    {
        if (IsEmpty && extraKwName is null) return JinjaArgs.Empty;
        var pos = new List<JinjaValue>(Positional.Count);
        foreach (var e in Positional) pos.Add(e.Eval(st, sc));
        if (DynArgs is not null) pos.AddRange(Ops.Iterate(st, DynArgs.Eval(st, sc)));
        var named = new List<KeyValuePair<string, JinjaValue>>(Named.Count);
        foreach (var (n, e) in Named) named.Add(new(n, e.Eval(st, sc)));
        if (DynKwargs is not null)
        {
            if (DynKwargs.Eval(st, sc) is not JinjaDict d) throw Err.Type("argument after ** must be a mapping");
            foreach (var (k, v) in d.Map)
                named.Add(new(k is JinjaString s ? s.Value : throw Err.Type("keywords must be strings"), v));
        }
        if (extraKwName is not null) named.Add(new(extraKwName, extraKwValue!));
        return new JinjaArgs(pos, named);
    }
}

internal sealed class CallExpr(Expr callee, ArgList args) : Expr
{
    public readonly Expr Callee = callee;
    public readonly ArgList Args = args;

    public override JinjaValue Eval(RenderState st, Scope sc) => EvalWith(st, sc, null);

    public JinjaValue EvalWith(RenderState st, Scope sc, MacroValue? caller)
    {
        st.Step();
        try
        {
            if (Callee is GetAttrExpr ga)
            {
                var obj = ga.Obj.Eval(st, sc);
                if (Methods.IsMethod(obj, ga.Name))
                    return Methods.Call(st, obj, ga.Name, Args.Eval(st, sc));
                return Ops.Call(st, Ops.GetAttr(obj, ga.Name), Args.Eval(st, sc, caller, caller is null ? null : "caller"));
            }
            var fn = Callee.Eval(st, sc);
            return Ops.Call(st, fn, Args.Eval(st, sc, caller, caller is null ? null : "caller"));
        }
        catch (TemplateException ex) when (ex.Line is null)
        {
            throw st.Locate(ex, Pos);
        }
    }
}

internal delegate JinjaValue FilterFn(RenderState st, JinjaValue input, JinjaArgs args);
internal delegate bool TestFn(RenderState st, JinjaValue input, JinjaArgs args);

internal sealed class FilterExpr(Expr? input, string name, FilterFn fn, ArgList args) : Expr
{
    public readonly Expr? Input = input;
    public readonly string Name = name;
    public readonly FilterFn Fn = fn;
    public readonly ArgList Args = args;

    public override JinjaValue Eval(RenderState st, Scope sc) =>
        Apply(st, sc, Input is null ? JinjaUndefined.Plain : Input.Eval(st, sc));

    /// <summary>Applies this filter (and the filters under it, down to a null input) to <paramref name="seed"/>.</summary>
    public JinjaValue EvalWith(RenderState st, Scope sc, JinjaValue seed)
    {
        var v = Input switch
        {
            null => seed,
            FilterExpr inner => inner.EvalWith(st, sc, seed),
            _ => Input.Eval(st, sc),
        };
        return Apply(st, sc, v);
    }

    private JinjaValue Apply(RenderState st, Scope sc, JinjaValue v)
    {
        st.Step();
        try
        {
            return Fn(st, v, Args.Eval(st, sc));
        }
        catch (TemplateException ex) when (ex.Line is null)
        {
            throw st.Locate(ex, Pos);
        }
    }
}

internal sealed class TestExpr(Expr input, string name, TestFn fn, ArgList args) : Expr
{
    public readonly Expr Input = input;
    public readonly string Name = name;
    public readonly TestFn Fn = fn;
    public readonly ArgList Args = args;

    public override JinjaValue Eval(RenderState st, Scope sc)
    {
        var v = Input.Eval(st, sc);
        st.Step();
        try
        {
            return Py.Bool(Fn(st, v, Args.Eval(st, sc)));
        }
        catch (TemplateException ex) when (ex.Line is null)
        {
            throw st.Locate(ex, Pos);
        }
    }
}

internal sealed class NotExpr(Expr operand) : Expr
{
    public readonly Expr Operand = operand;
    public override JinjaValue Eval(RenderState st, Scope sc) => Py.Bool(!Operand.Eval(st, sc).IsTruthy);
}

internal sealed class NegExpr(Expr operand, bool negate) : Expr
{
    public readonly Expr Operand = operand;
    public readonly bool Negate = negate;
    public override JinjaValue Eval(RenderState st, Scope sc) => Ops.Unary(Operand.Eval(st, sc), Negate);
}

internal sealed class BinExpr(string op, Expr left, Expr right) : Expr
{
    public readonly string Op = op;
    public readonly Expr Left = left, Right = right;
    public override JinjaValue Eval(RenderState st, Scope sc)
    {
        var a = Left.Eval(st, sc);
        var b = Right.Eval(st, sc);
        return Ops.Binary(st, Op, a, b);
    }
}

internal sealed class AndExpr(Expr left, Expr right) : Expr
{
    public readonly Expr Left = left, Right = right;
    public override JinjaValue Eval(RenderState st, Scope sc)
    {
        var a = Left.Eval(st, sc);
        return a.IsTruthy ? Right.Eval(st, sc) : a;
    }
}

internal sealed class OrExpr(Expr left, Expr right) : Expr
{
    public readonly Expr Left = left, Right = right;
    public override JinjaValue Eval(RenderState st, Scope sc)
    {
        var a = Left.Eval(st, sc);
        return a.IsTruthy ? a : Right.Eval(st, sc);
    }
}

internal sealed class CompareExpr(Expr first, List<(string Op, Expr Right)> rest) : Expr
{
    public readonly Expr First = first;
    public readonly List<(string Op, Expr Right)> Rest = rest;
    public override JinjaValue Eval(RenderState st, Scope sc)
    {
        var left = First.Eval(st, sc);
        foreach (var (op, re) in Rest)
        {
            var right = re.Eval(st, sc);
            if (!Ops.Compare(st, op, left, right)) return JinjaBool.FalseValue;
            left = right;
        }
        return JinjaBool.TrueValue;
    }
}

internal sealed class CondExpr(Expr test, Expr then, Expr? otherwise) : Expr
{
    public readonly Expr Test = test, Then = then;
    public readonly Expr? Otherwise = otherwise;
    public override JinjaValue Eval(RenderState st, Scope sc)
    {
        if (Test.Eval(st, sc).IsTruthy) return Then.Eval(st, sc);
        return Otherwise is null
            ? new JinjaUndefined("the inline if-expression evaluated to false and no else section was defined.")
            : Otherwise.Eval(st, sc);
    }
}

// ====================================================================== assignment targets

internal abstract class Target : Node
{
    public abstract void Assign(RenderState st, Scope sc, JinjaValue value);
}

internal sealed class NameTarget(string name) : Target
{
    public readonly string Name = name;
    public override void Assign(RenderState st, Scope sc, JinjaValue value) => sc.Set(Name, value);
}

internal sealed class TupleTarget(List<Target> items) : Target
{
    public readonly List<Target> Items = items;
    public override void Assign(RenderState st, Scope sc, JinjaValue value)
    {
        var values = Ops.Iterate(st, value);
        if (values.Count > Items.Count) throw Err.Type($"too many values to unpack (expected {Items.Count})");
        if (values.Count < Items.Count) throw Err.Type($"not enough values to unpack (expected {Items.Count}, got {values.Count})");
        for (int i = 0; i < Items.Count; i++) Items[i].Assign(st, sc, values[i]);
    }
}

internal sealed class NamespaceTarget(string name, string attr) : Target
{
    public readonly string Name = name, Attr = attr;
    public override void Assign(RenderState st, Scope sc, JinjaValue value)
    {
        var ns = sc.Lookup(Name);
        if (ns is not JinjaNamespace n) throw Err.Runtime("cannot assign attribute on non-namespace object");
        n.Set(Attr, value);
    }
}

// ====================================================================== statements

internal sealed class TextStmt(string text) : Stmt
{
    public readonly string Text = text;
    public override Flow Exec(RenderState st, Scope sc, Output o)
    {
        o.Write(Text);
        return Flow.Normal;
    }
}

internal sealed class PrintStmt(Expr expr) : Stmt
{
    public readonly Expr Expr = expr;
    public override Flow Exec(RenderState st, Scope sc, Output o)
    {
        o.Write(Py.Str(Expr.Eval(st, sc)));
        return Flow.Normal;
    }
}

internal sealed class IfStmt(List<(Expr Test, List<Stmt> Body)> branches, List<Stmt>? otherwise) : Stmt
{
    public readonly List<(Expr Test, List<Stmt> Body)> Branches = branches;
    public readonly List<Stmt>? Otherwise = otherwise;
    public override Flow Exec(RenderState st, Scope sc, Output o)
    {
        foreach (var (test, body) in Branches)
        {
            if (test.Eval(st, sc).IsTruthy) return ExecBody(body, st, sc, o);
        }
        return Otherwise is null ? Flow.Normal : ExecBody(Otherwise, st, sc, o);
    }
}

internal sealed class ForStmt(Target target, Expr iter, Expr? filter, List<Stmt> body, List<Stmt>? otherwise, bool recursive) : Stmt
{
    public readonly Target Target = target;
    public readonly Expr Iter = iter;
    public readonly Expr? Filter = filter;
    public readonly List<Stmt> Body = body;
    public readonly List<Stmt>? Otherwise = otherwise;
    public readonly bool Recursive = recursive;

    public override Flow Exec(RenderState st, Scope sc, Output o)
    {
        Run(st, sc, o, Iter.Eval(st, sc), 0);
        return Flow.Normal;
    }

    public void Run(RenderState st, Scope sc, Output o, JinjaValue iterable, int depth0)
    {
        var items = Ops.Iterate(st, iterable);
        if (Filter is not null)
        {
            var kept = new List<JinjaValue>(items.Count);
            foreach (var item in items)
            {
                st.Step();
                var fs = new Scope(sc);
                Target.Assign(st, fs, item);
                if (Filter.Eval(st, fs).IsTruthy) kept.Add(item);
            }
            items = kept;
        }
        if (items.Count == 0)
        {
            if (Otherwise is not null) ExecBody(Otherwise, st, new Scope(sc), o);
            return;
        }
        var loop = new LoopObject(items, depth0, Recursive ? this : null, sc);
        for (int i = 0; i < items.Count; i++)
        {
            st.Step();
            loop.Index0 = i;
            var iterScope = new Scope(sc);
            Target.Assign(st, iterScope, items[i]);
            iterScope.Set("loop", loop);
            var f = ExecBody(Body, st, iterScope, o);
            if (f == Flow.Break) break;
        }
    }
}

internal sealed class SetStmt(Target target, Expr value) : Stmt
{
    public readonly Target Target = target;
    public readonly Expr Value = value;
    public override Flow Exec(RenderState st, Scope sc, Output o)
    {
        Target.Assign(st, sc, Value.Eval(st, sc));
        return Flow.Normal;
    }
}

internal sealed class SetBlockStmt(Target target, FilterExpr? filter, List<Stmt> body) : Stmt
{
    public readonly Target Target = target;
    public readonly FilterExpr? Filter = filter;
    public readonly List<Stmt> Body = body;
    public override Flow Exec(RenderState st, Scope sc, Output o)
    {
        var inner = new Output(st);
        ExecBody(Body, st, sc, inner);
        JinjaValue v = new JinjaString(inner.ToString());
        if (Filter is not null) v = Filter.EvalWith(st, sc, v);
        Target.Assign(st, sc, v);
        return Flow.Normal;
    }
}

internal sealed class MacroDef
{
    public required string Name;
    public required List<(string Name, Expr? Default)> Params;
    public required List<Stmt> Body;
    public bool CatchVarargs, CatchKwargs, UsesCaller;
}

internal sealed class MacroStmt(MacroDef def) : Stmt
{
    public readonly MacroDef Def = def;
    public override Flow Exec(RenderState st, Scope sc, Output o)
    {
        sc.Set(Def.Name, new MacroValue(Def, sc));
        return Flow.Normal;
    }
}

internal sealed class CallBlockStmt(CallExpr call, MacroDef caller) : Stmt
{
    public readonly CallExpr Call = call;
    public readonly MacroDef Caller = caller;
    public override Flow Exec(RenderState st, Scope sc, Output o)
    {
        var v = Call.EvalWith(st, sc, new MacroValue(Caller, sc));
        o.Write(Py.Str(v));
        return Flow.Normal;
    }
}

internal sealed class FilterBlockStmt(FilterExpr filter, List<Stmt> body) : Stmt
{
    public readonly FilterExpr Filter = filter;
    public readonly List<Stmt> Body = body;
    public override Flow Exec(RenderState st, Scope sc, Output o)
    {
        var inner = new Output(st);
        ExecBody(Body, st, new Scope(sc), inner);
        o.Write(Py.Str(Filter.EvalWith(st, sc, new JinjaString(inner.ToString()))));
        return Flow.Normal;
    }
}

internal sealed class LoopControlStmt(Flow flow) : Stmt
{
    public readonly Flow Flow = flow;
    public override Flow Exec(RenderState st, Scope sc, Output o) => Flow;
}

internal sealed class WithStmt(List<(Target Target, Expr Value)> assignments, List<Stmt> body) : Stmt
{
    public readonly List<(Target Target, Expr Value)> Assignments = assignments;
    public readonly List<Stmt> Body = body;
    public override Flow Exec(RenderState st, Scope sc, Output o)
    {
        var inner = new Scope(sc);
        // values are evaluated in the outer scope, like Jinja2
        var values = Assignments.Select(a => a.Value.Eval(st, sc)).ToList();
        for (int i = 0; i < values.Count; i++) Assignments[i].Target.Assign(st, inner, values[i]);
        return ExecBody(Body, st, inner, o);
    }
}

/// <summary>A block that just renders its body (Hugging Face's <c>{% generation %}</c>).</summary>
internal sealed class BodyStmt(List<Stmt> body) : Stmt
{
    public readonly List<Stmt> Body = body;
    public override Flow Exec(RenderState st, Scope sc, Output o) => ExecBody(Body, st, sc, o);
}

// ====================================================================== runtime objects

/// <summary>A macro bound to the scope it was defined in (a closure, like Jinja2's compiled macros).</summary>
internal sealed class MacroValue(MacroDef def, Scope closure) : JinjaCallable
{
    public readonly MacroDef Def = def;
    public readonly Scope Closure = closure;
    public string Name => Def.Name;
    internal override string TypeName => "Macro";

    internal override JinjaValue Call(RenderState st, JinjaArgs args)
    {
        st.EnterCall();
        try
        {
            var sc = new Scope(Closure);
            var ps = Def.Params;
            var pos = args.Positional;
            var kwargs = new List<KeyValuePair<string, JinjaValue>>(args.Named);
            bool foundCaller = false;
            for (int i = 0; i < ps.Count; i++)
            {
                var (name, def) = ps[i];
                JinjaValue? v = null;
                if (i < pos.Count) v = pos[i];
                else
                {
                    int k = kwargs.FindIndex(kv => kv.Key == name);
                    if (k >= 0)
                    {
                        v = kwargs[k].Value;
                        kwargs.RemoveAt(k);
                    }
                    if (name == "caller") foundCaller = true;
                }
                if (v is null)
                    v = def is not null ? def.Eval(st, sc) : new JinjaUndefined($"parameter '{name}' was not provided");
                sc.Set(name, v);
            }
            if (Def.UsesCaller && !foundCaller)
            {
                int k = kwargs.FindIndex(kv => kv.Key == "caller");
                JinjaValue caller = new JinjaUndefined("No caller defined");
                if (k >= 0)
                {
                    caller = kwargs[k].Value;
                    kwargs.RemoveAt(k);
                }
                sc.Set("caller", caller);
            }
            if (Def.CatchKwargs)
            {
                var d = new JinjaDict();
                foreach (var (k, v) in kwargs) d.Set(k, v);
                sc.Set("kwargs", d);
            }
            else if (kwargs.Count > 0)
                throw Err.Type($"macro '{Name}' takes no keyword argument '{kwargs[0].Key}'");
            if (Def.CatchVarargs)
                sc.Set("varargs", new JinjaList(pos.Skip(ps.Count).ToList(), isTuple: true));
            else if (pos.Count > ps.Count)
                throw Err.Type($"macro '{Name}' takes not more than {ps.Count} argument(s)");
            var o = new Output(st);
            Stmt.ExecBody(Def.Body, st, sc, o);
            return new JinjaString(o.ToString());
        }
        finally
        {
            st.ExitCall();
        }
    }
}

/// <summary>The <c>loop</c> variable of a for-loop.</summary>
internal sealed class LoopObject(List<JinjaValue> items, int depth0, ForStmt? recursive, Scope scope) : JinjaCallable
{
    public readonly List<JinjaValue> Items = items;
    public int Index0;
    public readonly int Depth0 = depth0;
    private readonly ForStmt? _recursive = recursive;
    private readonly Scope _scope = scope;
    private JinjaValue? _lastChanged;

    internal override string TypeName => "LoopContext";

    public JinjaValue Attr(string name)
    {
        int n = Items.Count;
        return name switch
        {
            "index" => JinjaInt.Of(Index0 + 1),
            "index0" => JinjaInt.Of(Index0),
            "revindex" => JinjaInt.Of(n - Index0),
            "revindex0" => JinjaInt.Of(n - Index0 - 1),
            "first" => Py.Bool(Index0 == 0),
            "last" => Py.Bool(Index0 == n - 1),
            "length" => JinjaInt.Of(n),
            "depth" => JinjaInt.Of(Depth0 + 1),
            "depth0" => JinjaInt.Of(Depth0),
            "previtem" => Index0 > 0 ? Items[Index0 - 1] : new JinjaUndefined("there is no previous item"),
            "nextitem" => Index0 < n - 1 ? Items[Index0 + 1] : new JinjaUndefined("there is no next item"),
            "cycle" => new JinjaFunction("cycle", (st, a) =>
            {
                if (a.Positional.Count == 0) throw Err.Type("no items for cycling given");
                return a.Positional[Index0 % a.Positional.Count];
            }),
            "changed" => new JinjaFunction("changed", (st, a) =>
            {
                var v = new JinjaList(a.Positional.ToList(), isTuple: true);
                if (_lastChanged is not null && Py.Equal(_lastChanged, v)) return JinjaBool.FalseValue;
                _lastChanged = v;
                return JinjaBool.TrueValue;
            }),
            _ => new JinjaUndefined($"'LoopContext object' has no attribute '{name}'"),
        };
    }

    internal override JinjaValue Call(RenderState st, JinjaArgs args)
    {
        if (_recursive is null)
            throw Err.Type("The loop must have the 'recursive' marker to be called recursively.");
        if (args.Positional.Count != 1) throw Err.Type("loop() takes exactly one argument");
        st.EnterCall();
        try
        {
            var o = new Output(st);
            _recursive.Run(st, _scope, o, args.Positional[0], Depth0 + 1);
            return new JinjaString(o.ToString());
        }
        finally
        {
            st.ExitCall();
        }
    }

    public override string ToString() => $"<LoopContext {Index0 + 1}/{Items.Count}>";
}

internal static class NodeExtensions
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T At<T>(this T node, int pos) where T : Node
    {
        node.Pos = pos;
        return node;
    }
}
