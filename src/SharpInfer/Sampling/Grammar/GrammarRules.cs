namespace SharpInfer.Sampling.Grammar;

/// <summary>One symbol of a grammar alternative: a set of bytes (as four 64-bit words) or a reference to a rule.</summary>
internal readonly record struct Symbol(int Rule, ulong W0, ulong W1, ulong W2, ulong W3)
{
    public bool IsRef => Rule >= 0;
    public static Symbol Ref(int rule) => new(rule, 0, 0, 0, 0);
    public static Symbol Byte(byte b) => Bytes(b, b);
    public static Symbol Bytes(byte lo, byte hi)
    {
        Span<ulong> w = stackalloc ulong[4];
        for (int c = lo; c <= hi; c++) w[c >> 6] |= 1UL << (c & 63);
        return new(-1, w[0], w[1], w[2], w[3]);
    }
    public Symbol Union(Symbol o) => new(-1, W0 | o.W0, W1 | o.W1, W2 | o.W2, W3 | o.W3);
    public bool Matches(byte b) => ((b >> 6) switch { 0 => W0, 1 => W1, 2 => W2, _ => W3 } & (1UL << (b & 63))) != 0;
}

/// <summary>A context-free grammar over bytes: rules, each a list of alternatives, each a sequence of symbols.
/// Built by <see cref="GbnfParser"/>; checked and flattened by <see cref="CompiledGrammar"/>.</summary>
internal sealed class GrammarRules
{
    public readonly List<List<List<Symbol>>> Rules = [];
    public readonly List<string> Names = [];
    public readonly Dictionary<string, int> ByName = [];
    public readonly HashSet<string> Defined = [];

    public int Named(string name)
    {
        if (ByName.TryGetValue(name, out int id)) return id;
        id = New(name);
        ByName[name] = id;
        return id;
    }

    public int New(string name)
    {
        Rules.Add([]);
        Names.Add(name);
        return Rules.Count - 1;
    }
}
