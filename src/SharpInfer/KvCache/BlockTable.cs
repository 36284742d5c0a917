namespace SharpInfer.KvCache;

/// <summary>The KV blocks of one sequence (of one KV-cache group), in position order: position p is in
/// <c>Blocks[p / blockSize]</c>. A sliding-window group's table lets go of its leading blocks once no query to come can
/// see them: those entries are −1, and <see cref="FirstLive"/> counts them. A growable int array so forward batches
/// can reference it without copying.</summary>
internal sealed class BlockTable
{
    private int[] _blocks = new int[16];
    public int Count { get; private set; }
    /// <summary>Leading entries already given back (−1): positions before <c>FirstLive × blockSize</c> have no keys.</summary>
    public int FirstLive { get; private set; }
    /// <summary>Entries that hold a block.</summary>
    public int LiveCount => Count - FirstLive;
    public ReadOnlySpan<int> Blocks => _blocks.AsSpan(0, Count);
    public int this[int i] => _blocks[i];
    internal int[] Array => _blocks;

    public void Add(int block)
    {
        if (Count == _blocks.Length) System.Array.Resize(ref _blocks, _blocks.Length * 2);
        _blocks[Count++] = block;
    }

    public int RemoveLast()
    {
        if (Count == FirstLive) throw new InvalidOperationException("no live block to remove");
        return _blocks[--Count];
    }

    public void Clear() => Count = FirstLive = 0;

    /// <summary>Marks the first live entry as given back and returns its block (the caller releases it).</summary>
    public int DropFirst()
    {
        if (FirstLive == Count) throw new InvalidOperationException("no live block to drop");
        int b = _blocks[FirstLive];
        _blocks[FirstLive++] = -1;
        return b;
    }

    /// <summary>Appends an entry that holds no block (a position whose keys a windowed group never needs again).</summary>
    public void AddDropped()
    {
        if (FirstLive != Count) throw new InvalidOperationException("dropped entries only lead a table");
        Add(-1);
        FirstLive++;
    }

    /// <summary>Blocks needed to hold <paramref name="tokens"/> tokens.</summary>
    public static int BlocksFor(int tokens, int blockSize) => (tokens + blockSize - 1) / blockSize;
}
