namespace SharpInfer.KvCache;

/// <summary>
/// Hands out KV-cache blocks from a free list and reference-counts them, so a block can be shared by several
/// sequences (prefix caching) and returns to the free list when its last user lets go. Not thread-safe: the
/// engine loop is its only user.
/// </summary>
public sealed class BlockAllocator
{
    private readonly int[] _refCounts;
    private readonly Stack<int> _free;

    public int BlockCount { get; }
    public int FreeCount => _free.Count;
    public int UsedCount => BlockCount - _free.Count;

    public BlockAllocator(int blockCount)
    {
        BlockCount = blockCount;
        _refCounts = new int[blockCount];
        _free = new Stack<int>(blockCount);
        for (int b = blockCount - 1; b >= 0; b--) _free.Push(b);   // hand out low block ids first
    }

    public bool TryAllocate(out int block)
    {
        if (!_free.TryPop(out block)) return false;
        _refCounts[block] = 1;
        return true;
    }

    public int RefCount(int block) => _refCounts[block];

    /// <summary>Adds a user to an allocated block (sharing).</summary>
    public void AddRef(int block)
    {
        if (_refCounts[block] <= 0) throw new InvalidOperationException($"block {block} is not allocated");
        _refCounts[block]++;
    }

    /// <summary>Drops one user; the block is free again when none remain.</summary>
    public void Release(int block)
    {
        if (_refCounts[block] <= 0) throw new InvalidOperationException($"block {block} released more often than allocated");
        if (--_refCounts[block] == 0) _free.Push(block);
    }
}
