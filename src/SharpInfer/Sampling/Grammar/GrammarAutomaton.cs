using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharpInfer.Sampling.Grammar;

/// <summary>
/// The pushdown automaton of a <see cref="CompiledGrammar"/>, determinised lazily: a state is the set of parse
/// stacks that are still alive, interned to an integer, and byte transitions are cached per state. Stacks are
/// hash-consed linked lists of grammar positions, so equal stacks share one id and a state is a sorted id array.
/// After warm-up, stepping through a byte is one array read. Not thread-safe; callers lock.
/// </summary>
internal sealed class GrammarAutomaton
{
    public const int Dead = -1;
    private const int Accept = -1;     // stack id meaning "the root rule is complete"
    internal const int Unknown = -2;   // a transition row entry not computed yet

    /// <summary>Bounds the memory a pathological grammar can take (each state holds a 1 KiB transition row).</summary>
    public const int MaxStates = 1 << 18;

    private readonly CompiledGrammar _g;
    private readonly List<int> _nodePos = [], _nodeParent = [];
    private readonly Dictionary<long, int> _nodes = [];
    private readonly List<int[]> _states = [];
    private readonly List<int[]> _next = [];
    private readonly Dictionary<int[], int> _stateIds = new(new ArrayComparer());
    private readonly HashSet<int> _build = [];
    private readonly HashSet<long> _visited = [];

    public CompiledGrammar Grammar => _g;
    public int Start { get; }
    public int StateCount => _states.Count;

    public GrammarAutomaton(CompiledGrammar g)
    {
        _g = g;
        _build.Clear();
        _visited.Clear();
        foreach (int a in g.RuleStarts[g.Root]) Expand(a, -1);
        Start = Intern();
    }

    /// <summary>Whether the input so far is a complete sentence of the grammar.</summary>
    public bool CanEnd(int state) => state >= 0 && _states[state][0] == Accept;

    /// <summary>Whether nothing more may follow (the sentence is complete and cannot be extended).</summary>
    public bool MustEnd(int state) => state >= 0 && _states[state].Length == 1 && _states[state][0] == Accept;

    /// <summary>The cached transitions of a live state: entry b is the state after byte b, <see cref="Dead"/>, or
    /// <see cref="Unknown"/> until <see cref="Step(int, byte)"/> computes it (lets the mask walk read rows directly).</summary>
    internal int[] Row(int state) => _next[state];

    /// <summary>The state after reading <paramref name="b"/>, or <see cref="Dead"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // hot in the first mask walks of a fresh process
    public int Step(int state, byte b)
    {
        if (state < 0) return Dead;
        int[] row = _next[state];
        int t = row[b];
        if (t != Unknown) return t;
        _build.Clear();
        _visited.Clear();
        foreach (int s in _states[state])
        {
            if (s == Accept) continue;
            int pos = _nodePos[s];
            if (_g.Symbols[pos].Matches(b)) Expand(pos + 1, _nodeParent[s]);
        }
        t = _build.Count == 0 ? Dead : Intern();
        row[b] = t;
        return t;
    }

    public int Step(int state, ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            state = Step(state, b);
            if (state < 0) break;
        }
        return state;
    }

    /// <summary>Whether the whole of <paramref name="bytes"/> is a sentence of the grammar.</summary>
    public bool Accepts(ReadOnlySpan<byte> bytes) => CanEnd(Step(Start, bytes));

    // Adds to _build every stack that results from continuing at pos with parent stack below it, expanding
    // rule references until each stack's top is a byte set (or the root has ended).
    private void Expand(int pos, int parent)
    {
        if (!_visited.Add(((long)pos << 32) | (uint)parent)) return;
        int kind = _g.Kind[pos];
        if (kind == CompiledGrammar.End)
        {
            if (parent < 0) _build.Add(Accept);
            else Expand(_nodePos[parent], _nodeParent[parent]);
        }
        else if (kind == CompiledGrammar.Bytes) _build.Add(Node(pos, parent));
        else
        {
            // tail call: a reference at the end of an alternative needs no return address (keeps * loops flat)
            int cont = _g.Kind[pos + 1] == CompiledGrammar.End ? parent : Node(pos + 1, parent);
            foreach (int a in _g.RuleStarts[kind]) Expand(a, cont);
        }
    }

    private int Node(int pos, int parent)
    {
        long key = ((long)pos << 32) | (uint)parent;
        ref int id = ref CollectionsMarshal.GetValueRefOrAddDefault(_nodes, key, out bool exists);
        if (!exists)
        {
            id = _nodePos.Count;
            _nodePos.Add(pos);
            _nodeParent.Add(parent);
        }
        return id;
    }

    private int Intern()
    {
        int[] key = [.. _build];
        Array.Sort(key);
        if (_stateIds.TryGetValue(key, out int id)) return id;
        if (_states.Count >= MaxStates)
            throw new InvalidRequestException($"grammar too complex: more than {MaxStates} automaton states", "grammar");
        id = _states.Count;
        _states.Add(key);
        var row = new int[256];
        Array.Fill(row, Unknown);
        _next.Add(row);
        _stateIds[key] = id;
        return id;
    }

    private sealed class ArrayComparer : IEqualityComparer<int[]>
    {
        public bool Equals(int[]? a, int[]? b) => a.AsSpan().SequenceEqual(b);
        public int GetHashCode(int[] a)
        {
            var h = new HashCode();
            h.AddBytes(MemoryMarshal.AsBytes(a.AsSpan()));
            return h.ToHashCode();
        }
    }
}
