namespace SharpInfer.KvCache;

/// <summary>
/// Owns the KV-cache memory and decides which blocks each sequence uses: grows a sequence's block table to cover its
/// tokens, frees it when the sequence finishes, is aborted or preempted, and measures usage and internal waste
/// (1 − tokens stored ÷ token slots in allocated blocks). Blocks are reference-counted (BlockAllocator) so prefix
/// sharing only needs hashing and eviction on top. Engine-loop thread only.
/// </summary>
public sealed class BlockManager : IDisposable
{
    private readonly BlockAllocator _allocator;

    public PagedKvCache Cache { get; }
    public int BlockSize => Cache.BlockSize;
    public int TotalBlocks => _allocator.BlockCount;
    public int FreeBlocks => _allocator.FreeCount;
    public int UsedBlocks => _allocator.UsedCount;
    /// <summary>Fraction of blocks in use (0..1).</summary>
    public double Usage => TotalBlocks == 0 ? 0 : (double)UsedBlocks / TotalBlocks;
    /// <summary>Token slots the whole cache holds.</summary>
    public long CapacityTokens => (long)TotalBlocks * BlockSize;

    public BlockManager(PagedKvCache cache)
    {
        Cache = cache;
        _allocator = new BlockAllocator(cache.BlockCount);
    }

    /// <summary>New blocks a table needs to hold <paramref name="tokens"/> tokens.</summary>
    public int BlocksNeeded(BlockTable table, int tokens) => Math.Max(0, BlockTable.BlocksFor(tokens, BlockSize) - table.Count);

    public bool CanGrow(BlockTable table, int tokens) => BlocksNeeded(table, tokens) <= _allocator.FreeCount;

    /// <summary>Grows <paramref name="table"/> to hold <paramref name="tokens"/> tokens; false (and no change) when
    /// there are not enough free blocks.</summary>
    public bool TryGrow(BlockTable table, int tokens)
    {
        int need = BlocksNeeded(table, tokens);
        if (need > _allocator.FreeCount) return false;
        for (int i = 0; i < need; i++)
        {
            _allocator.TryAllocate(out int b);
            table.Add(b);
        }
        return true;
    }

    /// <summary>Releases every block of <paramref name="table"/> and empties it.</summary>
    public void Free(BlockTable table)
    {
        for (int i = table.Count - 1; i >= 0; i--) _allocator.Release(table[i]);
        table.Clear();
    }

    /// <summary>Internal waste for sequences holding <paramref name="storedTokens"/> tokens in total.</summary>
    public double Waste(long storedTokens)
    {
        long slots = (long)UsedBlocks * BlockSize;
        return slots == 0 ? 0 : 1.0 - (double)storedTokens / slots;
    }

    public void Dispose() => Cache.Dispose();
}
