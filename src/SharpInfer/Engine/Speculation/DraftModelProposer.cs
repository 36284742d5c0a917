using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Sampling;
using SharpInfer.Scheduling;

namespace SharpInfer.Engine.Speculation;

/// <summary>
/// Proposals from a smaller model with the same vocabulary (a draft model), run inside the engine on the target's
/// compute pool with its own paged KV cache. Each step, for all speculating sequences at once: one forward pass
/// catches the draft up with the tokens the target accepted since the last step (the whole sequence the first
/// time), then k − 1 single-token passes extend each sequence. For a greedy request the draft proposes its argmax; for
/// a sampled one it draws from its own distribution q under the request's sampling rules and hands q on, and the
/// engine verifies with the full rule (accept with min(1, p/q), else draw from norm(max(0, p − q))), so the output is
/// exactly the target's either way.
/// The draft's keys and values of rejected proposals are dropped by position: what the draft computed stays valid
/// exactly as far as it agrees with the tokens the sequence now has. Engine-loop thread only.
/// </summary>
internal sealed class DraftModelProposer : IProposer
{
    private sealed class State
    {
        public readonly BlockTable Table = new();
        /// <summary>Positions whose draft keys and values are computed.</summary>
        public int Computed;
        /// <summary>The tokens the draft computed at positions [<see cref="Matched"/>, <see cref="Computed"/>): its own
        /// proposals, which the sequence may or may not have accepted.</summary>
        public int[] Fed = [];
        /// <summary>Leading positions known to hold the sequence's own tokens.</summary>
        public int Matched;
        public int Last;   // step stamp, for the least-recently-used eviction of states
    }

    private readonly Model _model;
    private readonly ModelRunner _runner;
    private readonly Dictionary<long, State> _states = [];
    private readonly ForwardBatch _batch;
    private readonly float[] _logits;
    private readonly int[] _entries;     // batch entry of each logits row of the pass
    private readonly SamplerScratch _scratch;
    private readonly int _vocab;
    private int _stamp;

    /// <summary>Loads nothing: <paramref name="draft"/> is a loaded model whose vocabulary must equal the target's
    /// (checked here: a clear error otherwise). <paramref name="capacityTokens"/> sizes the draft's KV cache.</summary>
    public DraftModelProposer(Model draft, Model target, ComputePool pool, int maxSequences, int maxTokensPerProposal, long capacityTokens,
                              KvDataType kvType, int blockSize = 16)
    {
        CheckSameVocabulary(draft, target);
        _model = draft;
        _vocab = draft.Config.VocabSize;
        int blocks = (int)Math.Max(1, Math.Min(int.MaxValue, (capacityTokens + blockSize - 1) / blockSize));
        _runner = new ModelRunner(draft, pool.Threads, 512, blockSize, blocks, kvType, sharedPool: pool);
        _batch = new ForwardBatch(512, maxSequences);
        _logits = new float[(long)maxSequences * _vocab];
        _entries = new int[maxSequences];
        _scratch = new SamplerScratch(_vocab);
        MaxTokensPerProposal = maxTokensPerProposal;
    }

    public int MaxTokensPerProposal { get; }

    /// <summary>Throws <see cref="InvalidRequestException"/> unless both models have the same tokens with the same ids.</summary>
    public static void CheckSameVocabulary(Model draft, Model target)
    {
        var a = draft.Vocabulary;
        var b = target.Vocabulary;
        string which = $"the draft model {Path.GetFileName(draft.Path)} and the target {Path.GetFileName(target.Path)}";
        if (draft.Config.VocabSize != target.Config.VocabSize || a.Count != b.Count)
            throw new InvalidRequestException($"{which} have different vocabularies ({a.Count} and {b.Count} tokens)", "speculative_config");
        for (int i = 0; i < a.Count; i++)
            if (!string.Equals(a.Texts[i], b.Texts[i], StringComparison.Ordinal))
                throw new InvalidRequestException($"{which} have different vocabularies (token {i} differs)", "speculative_config");
        if (a.EosId != b.EosId || a.BosId != b.BosId)
            throw new InvalidRequestException($"{which} have different special tokens", "speculative_config");
    }

    public void Propose(ProposalBatch batch)
    {
        _stamp++;
        // 1. catch up: feed every token the draft has not computed (its rejected proposals are recomputed), and
        //    propose the first token from the last one's logits
        _batch.Clear();
        int rows = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            var s = batch.Sequence(i);
            int k = batch.Limit(i);
            var st = StateOf(s);
            st.Last = _stamp;
            var tokens = s.Tokens;
            int valid = st.Matched;
            for (int j = 0; j < st.Fed.Length && valid < st.Computed && valid < tokens.Length && tokens[valid] == st.Fed[j]; j++) valid++;
            valid = Math.Min(valid, Math.Min(st.Computed, tokens.Length - 1));   // the last token is always fed (its logits are needed)
            // room for the catch-up and the k − 1 proposals fed after it
            if (!Grow(st, tokens.Length + k - 1))
            {
                batch.SetProposed(i, 0);
                continue;
            }
            int seq = _batch.AddSequence(st.Table);
            for (int p = valid; p < tokens.Length; p++) _batch.AddToken(seq, tokens[p], p, wantLogits: p == tokens.Length - 1);
            st.Computed = tokens.Length;
            st.Matched = tokens.Length;
            if (st.Fed.Length != batch.MaxTokens) st.Fed = new int[batch.MaxTokens];
            _entries[rows++] = i;
            batch.SetProposed(i, 0);
        }
        if (rows == 0) return;
        _runner.Forward(_batch, _logits);
        for (int r = 0; r < rows; r++) Append(batch, _entries[r], r);

        // 2. extend: one token per pass for every sequence that wants more
        for (int step = 1; step < batch.MaxTokens; step++)
        {
            _batch.Clear();
            int n = 0;
            for (int i = 0; i < batch.Count; i++)
            {
                int done = batch.Proposed(i);
                if (done != step || done >= batch.Limit(i)) continue;
                var s = batch.Sequence(i);
                var st = _states[s.Id];
                int seq = _batch.AddSequence(st.Table);
                int token = batch.Tokens(i)[done - 1];
                _batch.AddToken(seq, token, st.Computed, wantLogits: true);
                st.Fed[st.Computed - st.Matched] = token;
                st.Computed++;
                _entries[n++] = i;
            }
            if (n == 0) break;
            _runner.Forward(_batch, _logits);
            for (int r = 0; r < n; r++) Append(batch, _entries[r], r);
        }
    }

    /// <summary>Adds the draft's next proposal from logits row <paramref name="row"/> to entry <paramref name="i"/>'s: its
    /// argmax for a greedy request, a draw from its processed distribution q (kept for verification) for a sampled one.</summary>
    private void Append(ProposalBatch batch, int i, int row)
    {
        int count = batch.Proposed(i);
        var logits = _logits.AsSpan(row * _vocab, _vocab);
        var sampler = batch.SamplerOf(i);
        batch.Tokens(i)[count] = sampler == null
            ? Sampler.ArgMax(logits)
            : sampler.Propose(logits, _scratch, batch.Distribution(i, count, _vocab));
        batch.SetProposed(i, count + 1);
    }

    private State StateOf(Sequence s)
    {
        if (!_states.TryGetValue(s.Id, out var st)) _states[s.Id] = st = new State();
        return st;
    }

    /// <summary>Blocks for <paramref name="tokens"/> positions; when the draft cache is full, the states of the least
    /// recently speculating sequences are dropped first (they will catch up again when they speculate).</summary>
    private bool Grow(State st, int tokens)
    {
        var blocks = _runner.Blocks;
        while (!blocks.TryGrow(st.Table, tokens))
        {
            State? victim = null;
            long victimId = 0;
            foreach (var (id, other) in _states)
                if (other != st && other.Table.Count > 0 && (victim == null || other.Last < victim.Last)) (victim, victimId) = (other, id);
            if (victim == null) return false;
            blocks.Free(victim.Table);
            _states.Remove(victimId);
        }
        return true;
    }

    public void Forget(Sequence sequence)
    {
        if (_states.Remove(sequence.Id, out var st)) _runner.Blocks.Free(st.Table);
    }

    public void Dispose()
    {
        _runner.Dispose();
        _model.Dispose();
    }
}
