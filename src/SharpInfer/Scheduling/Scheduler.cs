using SharpInfer.KvCache;

namespace SharpInfer.Scheduling;

/// <summary>Continuous: iteration-level batching (Orca/vLLM). Static: a batch of up to max-num-seqs requests runs to
/// completion before any new request is admitted (for comparison).</summary>
public enum SchedulingMode { Continuous, Static }

/// <summary>One sequence's share of a step: <see cref="Count"/> tokens starting at its first uncomputed token, the
/// last <see cref="Drafts"/> of them proposed tokens (speculative decoding) that follow the sequence's last token.</summary>
internal readonly record struct ScheduledChunk(Sequence Sequence, int Start, int Count, int Drafts = 0)
{
    /// <summary>True when the chunk reaches the sequence's last token, so the step yields its next-token logits (and
    /// one more row per proposed token).</summary>
    public bool SamplesNext => Start + Count - Drafts == Sequence.Length;
}

/// <summary>
/// Decides, every step, which sequences run and how many tokens each contributes, within a token budget: every
/// running sequence that is decoding gets its one token first, then running sequences still prefilling get prompt
/// chunks (chunked prefill, Sarathi-style), then waiting sequences are admitted (priority, then FCFS) while seats
/// (max-num-seqs), budget and KV blocks allow. When a running sequence needs a block and none is free, the
/// lowest-priority, most recently arrived running sequence is preempted: its blocks are freed and it goes back to
/// the front of the waiting queue to be recomputed later (from its cached prefix blocks, if prefix caching is on). Requests are never dropped, and a request admitted only
/// if it can fit in the whole cache alone, so some sequence always makes progress. With KV-cache groups (sliding-window
/// layers) every block of positions costs one block per group, and after each step windowed groups give back what
/// their window has passed (<see cref="BlockManager.DropOutsideWindow"/>). Never touches tensors.
/// </summary>
internal sealed class Scheduler
{
    private readonly BlockManager _blocks;
    private readonly List<Sequence> _waiting = [];   // sorted: priority, then arrival
    private readonly List<Sequence> _running = [];   // sorted: priority, then arrival
    private readonly List<ScheduledChunk> _scheduled = [];
    private readonly List<Sequence> _preemptedThisStep = [];

    public SchedulingMode Mode { get; }
    private bool _batchClosed;   // static mode: the running batch admits no one until it has finished
    public int MaxNumSeqs { get; }
    public int MaxNumBatchedTokens { get; }
    public int WaitingCount => _waiting.Count;
    public int RunningCount => _running.Count;
    public long Preemptions { get; private set; }
    public IReadOnlyList<Sequence> Running => _running;
    public IReadOnlyList<Sequence> Waiting => _waiting;
    /// <summary>Sequences preempted during the last <see cref="Schedule"/> call.</summary>
    public IReadOnlyList<Sequence> PreemptedThisStep => _preemptedThisStep;

    public Scheduler(BlockManager blocks, int maxNumSeqs, int maxNumBatchedTokens, SchedulingMode mode)
    {
        _blocks = blocks;
        MaxNumSeqs = maxNumSeqs;
        MaxNumBatchedTokens = maxNumBatchedTokens;
        Mode = mode;
    }

    private static int Compare(Sequence a, Sequence b) =>
        a.Priority != b.Priority ? a.Priority.CompareTo(b.Priority) : a.ArrivalOrder.CompareTo(b.ArrivalOrder);

    private static void InsertSorted(List<Sequence> list, Sequence s)
    {
        int i = list.Count;
        while (i > 0 && Compare(list[i - 1], s) > 0) i--;
        list.Insert(i, s);
    }

    public void Add(Sequence s)
    {
        s.Status = SequenceStatus.Waiting;
        InsertSorted(_waiting, s);
    }

    /// <summary>Removes a sequence (finished or aborted) and frees its blocks at once.</summary>
    public void Remove(Sequence s)
    {
        if (!_running.Remove(s)) _waiting.Remove(s);
        _blocks.FreeFinished(s);
        s.Status = SequenceStatus.Finished;
    }

    /// <summary>A running sequence whose tokens changed (a context shift): its blocks are freed and it goes back to the
    /// front of the waiting queue, to be computed again from its first token (the prefix cache serves what it can).</summary>
    public void Restart(Sequence s)
    {
        if (!_running.Remove(s)) return;
        s.DraftCount = 0;
        _blocks.Free(s);
        s.ComputedTokens = 0;
        Add(s);
    }

    public bool HasWork => _running.Count > 0 || _waiting.Count > 0;

    /// <summary>Plans one step. The returned list is reused by the next call.</summary>
    public IReadOnlyList<ScheduledChunk> Schedule()
    {
        _scheduled.Clear();
        _preemptedThisStep.Clear();
        int budget = MaxNumBatchedTokens;

        // 1. decodes of running sequences, in priority order. Proposed tokens ride along when the budget and free
        //    blocks allow (never at the price of a preemption: they are dropped instead).
        int decodes = 0;
        for (int i = 0; i < _running.Count; i++) if (!_running[i].IsPrefilling) decodes++;
        for (int i = 0; i < _running.Count && budget > 0; i++)
        {
            var s = _running[i];
            if (s.IsPrefilling) continue;
            int drafts = Math.Min(s.DraftCount, Math.Max(0, budget - decodes));
            if (drafts > 0 && !_blocks.TryGrow(s, s.ComputedTokens + 1 + drafts)) drafts = 0;
            s.DraftCount = drafts;
            decodes--;
            if (!EnsureBlocks(s, s.ComputedTokens + 1, ref i)) continue;   // s itself was preempted
            _scheduled.Add(new ScheduledChunk(s, s.ComputedTokens, 1 + drafts, drafts));
            budget -= 1 + drafts;
        }
        // 2. chunks of running sequences that are still prefilling (preempting from the back if none fits: a running
        //    prefill with no free block would otherwise wait forever when nothing else frees memory)
        for (int i = 0; i < _running.Count && budget > 0; i++)
        {
            var s = _running[i];
            if (!s.IsPrefilling) continue;
            int want = Math.Min(s.PendingTokens, budget);
            int n = Fit(s, want);
            bool gone = false;
            while (n == 0)
            {
                var victim = _running[^1];
                budget += Preempt(victim);
                if (victim == s) { i--; gone = true; break; }
                n = Fit(s, want);
            }
            if (gone) continue;
            _blocks.TryGrow(s, s.ComputedTokens + n);
            _scheduled.Add(new ScheduledChunk(s, s.ComputedTokens, n));
            budget -= n;
        }
        // 3. admit waiting sequences
        // Static mode: a batch keeps admitting (its prompts may need several steps of the token budget) until it has
        // max-num-seqs sequences or nobody is waiting; then it is closed until every member has finished.
        if (_running.Count == 0) _batchClosed = false;
        bool mayAdmit = Mode == SchedulingMode.Continuous || !_batchClosed;
        while (mayAdmit && _waiting.Count > 0 && _running.Count < MaxNumSeqs && budget > 0)
        {
            var s = _waiting[0];
            if (_preemptedThisStep.Contains(s)) break;   // just lost its blocks: not again in the same step
            // prefix caching: start from the longest cached run of full blocks; budget and blocks count only the rest
            int hit = _blocks.ClaimCachedPrefix(s);
            int n = Fit(s, Math.Min(s.PendingTokens, budget));
            if (n == 0)
            {
                if (hit > 0) { _blocks.Free(s); s.ComputedTokens = 0; }   // the blocks stay cached for the next try
                break;   // FCFS: no skipping ahead of the head of the queue
            }
            _blocks.RecordPrefixQuery(s.Length, hit);
            if (!s.WasAdmitted)
            {
                s.WasAdmitted = true;
                s.CachedPromptTokens = Math.Min(hit, s.PromptLength);
            }
            _waiting.RemoveAt(0);
            s.Status = SequenceStatus.Running;
            InsertSorted(_running, s);
            _blocks.TryGrow(s, s.ComputedTokens + n);
            _scheduled.Add(new ScheduledChunk(s, s.ComputedTokens, n));
            budget -= n;
        }
        if (Mode == SchedulingMode.Static && _running.Count > 0 && (_running.Count >= MaxNumSeqs || _waiting.Count == 0))
            _batchClosed = true;
        return _scheduled;
    }

    /// <summary>How many of <paramref name="want"/> next tokens of <paramref name="s"/> the free blocks can hold.</summary>
    private int Fit(Sequence s, int want)
    {
        return Math.Max(0, Math.Min(want, _blocks.TokensThatFit(s)));
    }

    /// <summary>Makes room for <paramref name="tokens"/> tokens of running sequence <paramref name="s"/> (at index
    /// <paramref name="index"/>), preempting from the back of the running list. Returns false when <paramref name="s"/>
    /// itself had to be preempted; <paramref name="index"/> is adjusted for removed entries.</summary>
    private bool EnsureBlocks(Sequence s, int tokens, ref int index)
    {
        while (!_blocks.TryGrow(s, tokens))
        {
            var victim = _running[^1];
            Preempt(victim);   // a victim at the back was not scheduled yet in this pass
            if (victim == s)
            {
                index--;
                return false;
            }
        }
        return true;
    }

    /// <summary>Preempts <paramref name="victim"/>; returns the budget its already scheduled tokens gave back.</summary>
    private int Preempt(Sequence victim)
    {
        int returned = 0;
        _running.Remove(victim);
        victim.DraftCount = 0;
        for (int j = _scheduled.Count - 1; j >= 0; j--)
            if (_scheduled[j].Sequence == victim) { returned += _scheduled[j].Count; _scheduled.RemoveAt(j); }
        _blocks.Free(victim);
        victim.ComputedTokens = 0;
        victim.Preemptions++;
        Preemptions++;
        _preemptedThisStep.Add(victim);
        Add(victim);
        return returned;
    }

    /// <summary>After a step ran: the chunks' tokens now have keys and values in the cache (proposed tokens only once
    /// verified, see <see cref="CommitDrafts"/>); sliding-window groups give back what no later query sees.</summary>
    public void Complete(IReadOnlyList<ScheduledChunk> chunks)
    {
        foreach (var c in chunks)
        {
            c.Sequence.ComputedTokens = c.Start + c.Count - c.Drafts;
            _blocks.CacheFullBlocks(c.Sequence);
            _blocks.DropOutsideWindow(c.Sequence);
        }
    }

    /// <summary>After verification appended <paramref name="accepted"/> proposed tokens (and one token of the target's
    /// own) to a running sequence: their keys and values, written in the step, are now the sequence's; the slots of
    /// rejected proposals are given back (whole blocks freed, the rest overwritten later).</summary>
    public void CommitDrafts(Sequence s, int accepted)
    {
        s.ComputedTokens += accepted;
        s.DraftCount = 0;
        _blocks.Trim(s, s.ComputedTokens + 1);
        _blocks.CacheFullBlocks(s);
        _blocks.DropOutsideWindow(s);
    }

    /// <summary>Token slots holding keys and values of running sequences, over all their block tables (for the
    /// waste metric: a windowed group's table holds only the positions from its first live block).</summary>
    public long StoredTokens()
    {
        long n = 0;
        foreach (var s in _running)
            foreach (var t in s.Tables) n += Math.Max(0, s.ComputedTokens - t.FirstLive * _blocks.BlockSize);
        return n;
    }
}
