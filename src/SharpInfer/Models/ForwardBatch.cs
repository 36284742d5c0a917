using SharpInfer.KvCache;

namespace SharpInfer.Models;

/// <summary>
/// One model pass: a flat list of tokens from one or more sequences, each with its position and the sequence it
/// belongs to; for each sequence its KV block table; and which tokens need logits. A prompt, a decode step and a
/// continuous batch of many sequences are all the same call. Pooling requests (embeddings) ask instead for the hidden
/// states of some tokens. Reused across steps (no allocation per step).
/// </summary>
internal sealed class ForwardBatch
{
    public int TokenCount { get; private set; }
    public int SequenceCount { get; private set; }
    public int LogitCount { get; private set; }
    public int HiddenCount { get; private set; }

    private int[] _tokens;
    private int[] _positions;
    private int[] _seqIndex;
    private BlockTable[] _tables;
    private BlockTable[]?[] _groupTables;
    private int[] _logitTokens;
    private int[] _hiddenTokens;

    public ForwardBatch(int tokenCapacity = 512, int sequenceCapacity = 16)
    {
        _tokens = new int[tokenCapacity];
        _positions = new int[tokenCapacity];
        _seqIndex = new int[tokenCapacity];
        _logitTokens = new int[Math.Max(1, sequenceCapacity)];
        _hiddenTokens = new int[Math.Max(1, sequenceCapacity)];
        _tables = new BlockTable[sequenceCapacity];
        _groupTables = new BlockTable[sequenceCapacity][];
    }

    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, TokenCount);
    public ReadOnlySpan<int> Positions => _positions.AsSpan(0, TokenCount);
    public ReadOnlySpan<int> SequenceOf => _seqIndex.AsSpan(0, TokenCount);
    /// <summary>Indices (into the token list) of the tokens whose logits are wanted, in output order.</summary>
    public ReadOnlySpan<int> LogitTokens => _logitTokens.AsSpan(0, LogitCount);
    /// <summary>Indices of the tokens whose final hidden states (after the output norm) are wanted, in output order.</summary>
    public ReadOnlySpan<int> HiddenTokens => _hiddenTokens.AsSpan(0, HiddenCount);
    public BlockTable Table(int sequence) => _tables[sequence];

    /// <summary>The sequence's table of KV-cache group <paramref name="group"/> (<see cref="KvCacheGroups"/>).</summary>
    public BlockTable Table(int sequence, int group)
    {
        if (group == 0) return _tables[sequence];
        var tables = _groupTables[sequence];
        if (tables == null || group >= tables.Length)
            throw new InvalidOperationException($"the KV cache has several block groups: sequence {sequence} needs a table for group {group}");
        return tables[group];
    }
    public void Clear()
    {
        TokenCount = 0;
        SequenceCount = 0;
        LogitCount = 0;
        HiddenCount = 0;
        Array.Clear(_tables, 0, _tables.Length);
        Array.Clear(_groupTables, 0, _groupTables.Length);
    }

    /// <summary>Starts a sequence in this batch; returns its index.</summary>
    public int AddSequence(BlockTable table)
    {
        if (SequenceCount == _tables.Length)
        {
            Array.Resize(ref _tables, _tables.Length * 2);
            Array.Resize(ref _groupTables, _tables.Length);
        }
        _tables[SequenceCount] = table;
        _groupTables[SequenceCount] = null;
        return SequenceCount++;
    }

    /// <summary>Starts a sequence with one block table per KV-cache group (<see cref="KvCacheGroups"/>); returns its index.</summary>
    public int AddSequence(BlockTable[] tables)
    {
        int s = AddSequence(tables[0]);
        _groupTables[s] = tables;
        return s;
    }

    public void AddToken(int sequence, int token, int position, bool wantLogits, bool wantHidden = false)
    {
        if (TokenCount == _tokens.Length)
        {
            Array.Resize(ref _tokens, _tokens.Length * 2);
            Array.Resize(ref _positions, _positions.Length * 2);
            Array.Resize(ref _seqIndex, _seqIndex.Length * 2);
        }
        _tokens[TokenCount] = token;
        _positions[TokenCount] = position;
        _seqIndex[TokenCount] = sequence;
        if (wantLogits)
        {
            if (LogitCount == _logitTokens.Length) Array.Resize(ref _logitTokens, _logitTokens.Length * 2);
            _logitTokens[LogitCount++] = TokenCount;
        }
        if (wantHidden)
        {
            if (HiddenCount == _hiddenTokens.Length) Array.Resize(ref _hiddenTokens, _hiddenTokens.Length * 2);
            _hiddenTokens[HiddenCount++] = TokenCount;
        }
        TokenCount++;
    }
}
