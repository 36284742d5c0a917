using SharpInfer.Tokenization;

namespace SharpInfer.Sampling.Grammar;

/// <summary>
/// A grammar bound to a vocabulary: the <see cref="ILogitsProcessorFactory"/> that goes into
/// <see cref="SamplingParams.LogitsProcessor"/>. Holds the lazily built automaton and one token mask per automaton
/// state, shared by every request that uses this instance (lookups lock; the engine samples on one thread, so the
/// lock is uncontended). End-of-generation tokens are allowed exactly where the grammar may end.
/// </summary>
public sealed class GrammarConstraint : ILogitsProcessorFactory
{
    /// <summary>Masks kept per constraint (each vocab/8 bytes); beyond this, masks are recomputed on demand.</summary>
    public const int MaxCachedMasks = 4096;

    private readonly GrammarAutomaton _automaton;
    private readonly TokenTrie _trie;
    private readonly int _words;
    private readonly List<ulong[]?> _masks = [];
    private int _cachedMasks;
    private readonly object _lock = new();

    public GrammarAutomaton Automaton => _automaton;
    public TokenTrie Trie => _trie;

    public GrammarConstraint(CompiledGrammar grammar, TokenTrie trie, int logitsSize)
    {
        _automaton = new GrammarAutomaton(grammar);
        _trie = trie;
        _words = (Math.Max(logitsSize, trie.VocabSize) + 63) / 64;
    }

    public static GrammarConstraint FromGbnf(string gbnf, Tokenizer tokenizer, int logitsSize, string field = "grammar") =>
        new(CompiledGrammar.FromGbnf(gbnf, field), TokenTrie.For(tokenizer), logitsSize);

    public ILogitsProcessor Create() => new GrammarLogitsProcessor(this);

    internal int Step(int state, int token)
    {
        lock (_lock) return _automaton.Step(state, _trie.TokenBytes[token]);
    }

    internal bool IsEndOfGeneration(int token) => Array.IndexOf(_trie.EndOfGeneration, token) >= 0;

    /// <summary>The allowed-token bitmap of <paramref name="state"/>; <paramref name="scratch"/> is filled when
    /// the cache is full.</summary>
    internal ulong[] Mask(int state, ref ulong[]? scratch)
    {
        lock (_lock)
        {
            if (state >= 0 && state < _masks.Count && _masks[state] is { } cached) return cached;
            bool keep = state >= 0 && _cachedMasks < MaxCachedMasks;
            ulong[] mask = keep ? new ulong[_words] : (scratch ??= new ulong[_words]);
            if (!keep) Array.Clear(mask);
            if (state >= 0 && !_automaton.MustEnd(state)) Walk(0, state, mask);
            bool any = false;
            foreach (ulong w in mask) if (w != 0) { any = true; break; }
            // where the grammar may end, or (defensively) where no token fits, only end-of-generation remains
            if (_automaton.CanEnd(state) || !any || state < 0)
                foreach (int t in _trie.EndOfGeneration) mask[t >> 6] |= 1UL << (t & 63);
            if (keep)
            {
                while (_masks.Count <= state) _masks.Add(null);
                _masks[state] = mask;
                _cachedMasks++;
            }
            return mask;
        }
    }

    private void Walk(int node, int state, ulong[] mask)
    {
        var t = _trie;
        int end = t.ChildStart[node] + t.ChildCount[node];
        for (int c = t.ChildStart[node]; c < end; c++)
        {
            int next = _automaton.Step(state, t.EdgeByte[c]);
            if (next < 0) continue;
            for (int k = t.TokStart[c], e = k + t.TokCount[c]; k < e; k++)
            {
                int id = t.Sorted[k];
                mask[id >> 6] |= 1UL << (id & 63);
            }
            if (t.ChildCount[c] > 0) Walk(c, next, mask);
        }
    }
}

/// <summary>The per-request side of a <see cref="GrammarConstraint"/>: the current automaton state.</summary>
internal sealed class GrammarLogitsProcessor(GrammarConstraint constraint) : ILogitsProcessor
{
    private int _state = constraint.Automaton.Start;
    private ulong[]? _scratch;

    public int State => _state;

    public void Process(Span<float> logits)
    {
        ulong[] mask = constraint.Mask(_state, ref _scratch);
        for (int w = 0, i = 0; i < logits.Length; w++, i += 64)
        {
            ulong bits = mask[w];
            if (bits == ulong.MaxValue) continue;
            int n = Math.Min(64, logits.Length - i);
            for (int b = 0; b < n; b++)
                if ((bits & (1UL << b)) == 0) logits[i + b] = float.NegativeInfinity;
        }
    }

    public void Accept(int token)
    {
        if (_state < 0) return;
        _state = constraint.IsEndOfGeneration(token) || token >= constraint.Trie.VocabSize
            ? GrammarAutomaton.Dead : constraint.Step(_state, token);
    }
}
