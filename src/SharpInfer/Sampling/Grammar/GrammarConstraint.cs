using System.Runtime.CompilerServices;
using SharpInfer.Tokenization;

namespace SharpInfer.Sampling.Grammar;

/// <summary>
/// A grammar bound to a vocabulary: the <see cref="ILogitsProcessorFactory"/> that goes into
/// <see cref="SamplingParams.LogitsProcessor"/>. Holds the lazily built automaton and one token mask per automaton
/// state, shared by every request that uses this instance (cache hits read without a lock; the automaton and mask
/// computation lock, since masks are also prefetched on the thread pool). End-of-generation tokens are allowed exactly
/// where the grammar may end.
/// </summary>
internal sealed class GrammarConstraint : ILogitsProcessorFactory
{
    /// <summary>Masks kept per constraint (each vocab/8 bytes); beyond this, masks are recomputed on demand.</summary>
    public const int MaxCachedMasks = 4096;

    private readonly GrammarAutomaton _automaton;
    private readonly TokenTrie _trie;
    private readonly int _words;
    private ulong[]?[] _masks = new ulong[]?[64];   // by state; replaced (never shrunk) when it grows
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

    /// <param name="preserved">Control tokens the request renders as text (<see cref="TokenTrie.For(Tokenizer, int[])"/>),
    /// which the grammar then matches by that text.</param>
    public static GrammarConstraint FromGbnf(string gbnf, Tokenizer tokenizer, int logitsSize, string field = "grammar", int[]? preserved = null) =>
        new(CompiledGrammar.FromGbnf(gbnf, field), TokenTrie.For(tokenizer, preserved), logitsSize);

    /// <summary>Whether each request computes its next mask on the thread pool while the model runs (see
    /// <see cref="GrammarLogitsProcessor"/>); off, masks are computed when the logits arrive.</summary>
    public bool PrefetchMasks { get; init; } = true;

    public ILogitsProcessor Create() => new GrammarLogitsProcessor(this);

    internal int Step(int state, int token)
    {
        lock (_lock) return _automaton.Step(state, _trie.TokenBytes[token]);
    }

    internal bool IsEndOfGeneration(int token) => Array.IndexOf(_trie.EndOfGeneration, token) >= 0;

    /// <summary>The allowed-token bitmap of <paramref name="state"/>; <paramref name="scratch"/> is filled when
    /// the cache is full. A cached mask is read without the lock, so a hit never waits for another request's walk.</summary>
    internal ulong[] Mask(int state, ref ulong[]? scratch)
    {
        if (Cached(state) is { } hit) return hit;
        lock (_lock)
        {
            if (Cached(state) is { } cached) return cached;   // a prefetch finished it while we waited
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
                var masks = _masks;
                if (state >= masks.Length)
                {
                    Array.Resize(ref masks, Math.Max(state + 1, masks.Length * 2));
                    Volatile.Write(ref _masks, masks);
                }
                Volatile.Write(ref masks[state], mask);   // published only once complete
                _cachedMasks++;
            }
            return mask;
        }
    }

    private ulong[]? Cached(int state)
    {
        var masks = Volatile.Read(ref _masks);
        return (uint)state < (uint)masks.Length ? Volatile.Read(ref masks[state]) : null;
    }

    // One depth-first walk of the vocabulary trie from a state, reading the automaton's transition rows directly (a
    // row entry is computed once per state and byte; after warm-up an edge costs one array read). Compiled fully
    // optimized from the first call: a fresh process walks most of the vocabulary for each new state, and tier-0 code
    // made those first walks (the cold requests) about twice as slow.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Walk(int node, int state, ulong[] mask)
    {
        var t = _trie;
        int[] row = _automaton.Row(state);
        int end = t.ChildStart[node] + t.ChildCount[node];
        for (int c = t.ChildStart[node]; c < end; c++)
        {
            byte b = t.EdgeByte[c];
            int next = row[b];
            if (next == GrammarAutomaton.Unknown) next = _automaton.Step(state, b);
            if (next < 0) continue;
            for (int k = t.TokStart[c], e = k + t.TokCount[c]; k < e; k++)
            {
                int id = t.Sorted[k];
                mask[id >> 6] |= 1UL << (id & 63);
            }
            if (t.ChildCount[c] > 0) Walk(c, next, mask);
        }
    }

    /// <summary>Computes and caches the mask of <paramref name="state"/> ahead of its use (a no-op when it is cached,
    /// dead, or the cache is full): the background half of <see cref="GrammarLogitsProcessor"/>'s prefetch.</summary>
    internal void Precompute(int state)
    {
        if (state < 0 || Volatile.Read(ref _cachedMasks) >= MaxCachedMasks) return;
        ulong[]? none = null;
        Mask(state, ref none);
    }

    internal bool IsCached(int state) => Cached(state) != null;
}

/// <summary>
/// The per-request side of a <see cref="GrammarConstraint"/>: the current automaton state. After each accepted
/// token the next state's mask, when not cached yet, is computed on the thread pool, so it overlaps the forward pass
/// that produces the next logits (the mask depends only on the state, which the token fixes); <see cref="Process"/>
/// finds it cached, or waits on the constraint's lock while it completes. At most one prefetch per request runs at a
/// time and the processor itself is the work item, so prefetching allocates nothing.
/// </summary>
internal sealed class GrammarLogitsProcessor(GrammarConstraint constraint) : ILogitsProcessor, IThreadPoolWorkItem
{
    private int _state = constraint.Automaton.Start;
    private ulong[]? _scratch;
    private int _prefetchState = GrammarAutomaton.Dead;
    private int _prefetching;   // 1 while a prefetch is queued or running

    public int State => _state;

    public void Process(Span<float> logits) => GrammarMask.Apply(constraint.Mask(_state, ref _scratch), logits);

    public void Accept(int token)
    {
        if (_state < 0) return;
        _state = constraint.IsEndOfGeneration(token) || token >= constraint.Trie.VocabSize
            ? GrammarAutomaton.Dead : constraint.Step(_state, token);
        if (constraint.PrefetchMasks && _state >= 0 && Interlocked.CompareExchange(ref _prefetching, 1, 0) == 0)
        {
            _prefetchState = _state;
            if (constraint.IsCached(_state)) Volatile.Write(ref _prefetching, 0);
            else ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    void IThreadPoolWorkItem.Execute()
    {
        try { constraint.Precompute(_prefetchState); }
        catch (Exception) { }   // e.g. "grammar too complex": Process meets the same error on the engine thread and reports it
        finally { Volatile.Write(ref _prefetching, 0); }
    }
}
