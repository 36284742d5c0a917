using SharpInfer.KvCache;

namespace SharpInfer.Scheduling;

internal enum SequenceStatus { Waiting, Running, Finished }

/// <summary>
/// The scheduler's view of one request: its tokens (prompt, then generated ones), how many of them have keys and
/// values in the cache, its blocks, priority and arrival order. A preempted sequence loses its blocks and
/// recomputes all its tokens (prompt and output so far) when it is admitted again.
/// </summary>
internal class Sequence
{
    private int[] _tokens;

    public long Id { get; }
    public int Priority { get; }
    /// <summary>Monotonic arrival number (FCFS tie-break; kept across preemptions).</summary>
    public long ArrivalOrder { get; }
    public int PromptLength { get; }
    public int Length { get; private set; }
    /// <summary>Tokens whose keys and values are in the cache.</summary>
    public int ComputedTokens { get; set; }
    /// <summary>The sequence's block table of KV-cache group 0 (the only one unless the cache has groups).</summary>
    public BlockTable Blocks => Tables[0];
    /// <summary>One block table per KV-cache group (<see cref="KvCacheGroups"/>), set by the block manager.</summary>
    public BlockTable[] Tables { get; private set; } = [new()];
    public SequenceStatus Status { get; set; } = SequenceStatus.Waiting;
    public int Preemptions { get; set; }
    /// <summary>Largest length this sequence may reach (prompt + max output, capped by the model length).</summary>
    public int MaxLength { get; }

    /// <summary>Parent hash of the first block (<see cref="BlockHash.Root"/> of the request's cache salt).</summary>
    public UInt128 HashRoot { get; init; }
    /// <summary>Leading blocks of <see cref="Blocks"/> known to the prefix cache (registered or hit).</summary>
    public int HashedBlocks { get; set; }
    /// <summary>Prompt tokens whose keys and values came from the prefix cache when the sequence was first admitted.</summary>
    public int CachedPromptTokens { get; set; }
    /// <summary>Neither reuses nor registers prefix-cache blocks: a pooling request needs the hidden state of every
    /// prompt token (a cache hit would skip computing them), and its blocks are freed at once, so registering them
    /// would only push useful prefixes (system prompts) out of the cache.</summary>
    public bool SkipsPrefixCache { get; init; }
    /// <summary>Whether the scheduler admitted the sequence at least once.</summary>
    public bool WasAdmitted { get; set; }

    // ---- speculative decoding: tokens proposed to follow this step's last token, verified in the same forward pass
    /// <summary>Proposal buffer (null when the sequence does not speculate); the first <see cref="DraftCount"/> are live.</summary>
    public int[]? Draft { get; set; }
    /// <summary>Proposed tokens to verify in the next step (the scheduler may drop them for lack of budget or blocks).</summary>
    public int DraftCount { get; set; }
    /// <summary>Current proposal length limit, adapted to this sequence's acceptance.</summary>
    public int DraftLimit { get; set; }
    /// <summary>Tokens proposed (and verified) and accepted over the sequence's life.</summary>
    public int DraftProposed { get; set; }
    public int DraftAccepted { get; set; }
    private readonly List<UInt128> _blockHashes = [];

    public Sequence(long id, ReadOnlySpan<int> prompt, int maxLength, int priority, long arrivalOrder)
    {
        Id = id;
        Priority = priority;
        ArrivalOrder = arrivalOrder;
        PromptLength = prompt.Length;
        MaxLength = maxLength;
        _tokens = new int[Math.Max(maxLength, prompt.Length)];
        prompt.CopyTo(_tokens);
        Length = prompt.Length;
    }

    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, Length);
    /// <summary>Tokens dropped from the sequence by context shifts (<see cref="Discard"/>).</summary>
    public int Discarded { get; private set; }
    /// <summary>Tokens generated so far (those a context shift dropped included).</summary>
    public int OutputLength => Length + Discarded - PromptLength;
    /// <summary>Tokens still to run through the model before the next one can be sampled.</summary>
    public int PendingTokens => Length - ComputedTokens;
    public bool IsPrefilling => PendingTokens > 1;

    /// <summary>Content hash of full block <paramref name="index"/> of the token sequence (computed once, then kept:
    /// tokens before <see cref="Length"/> never change).</summary>
    public UInt128 BlockHashAt(int index, int blockSize)
    {
        if ((index + 1) * blockSize > Length) throw new ArgumentOutOfRangeException(nameof(index), "the block is not full");
        while (_blockHashes.Count <= index)
        {
            int i = _blockHashes.Count;
            var parent = i == 0 ? HashRoot : _blockHashes[i - 1];
            _blockHashes.Add(BlockHash.Of(parent, _tokens.AsSpan(i * blockSize, blockSize)));
        }
        return _blockHashes[index];
    }

    /// <summary>Context shift (llama.cpp's): drops <paramref name="count"/> tokens after the first <paramref name="keep"/>,
    /// moving the rest down. The keys and values of the moved tokens no longer match their positions, so the caller
    /// frees the sequence's blocks and it is computed again; the hashes of its blocks are recomputed for the new content.</summary>
    public void Discard(int keep, int count)
    {
        if (keep < 0 || count < 0 || keep + count > Length) throw new ArgumentOutOfRangeException(nameof(count));
        Array.Copy(_tokens, keep + count, _tokens, keep, Length - keep - count);
        Length -= count;
        Discarded += count;
        _blockHashes.Clear();
    }

    /// <summary>Gives the sequence one table per KV-cache group; only while it holds no block.</summary>
    internal void UseGroups(int groups)
    {
        if (Tables.Length == groups) return;
        if (Tables.Any(t => t.Count > 0)) throw new InvalidOperationException("a sequence's KV groups change only while it holds no block");
        Tables = [.. Enumerable.Range(0, groups).Select(_ => new BlockTable())];
    }

    public void Append(int token)
    {
        if (Length == _tokens.Length) Array.Resize(ref _tokens, _tokens.Length * 2);
        _tokens[Length++] = token;
    }
}
