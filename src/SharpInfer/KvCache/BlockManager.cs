using SharpInfer.Scheduling;

namespace SharpInfer.KvCache;

/// <summary>
/// Owns the KV-cache memory and decides which blocks each sequence uses: grows a sequence's block table to cover its
/// tokens, frees it when the sequence finishes, is aborted or preempted, and measures usage and internal waste
/// (1 − tokens stored ÷ token slots in allocated blocks).
/// <para>Automatic prefix caching (vLLM's design): every full block a sequence has computed is registered under its
/// chain hash (<see cref="BlockHash"/>); when its users let go it stays cached, evictable in LRU order, and a new or
/// preempted sequence starts with the longest run of cached blocks that matches its tokens
/// (<see cref="ClaimCachedPrefix"/>). An optional second tier (<see cref="IKvBlockStore"/>, e.g. on disk) receives
/// blocks as they are evicted and is asked for the blocks memory no longer has.</para>
/// Engine-loop thread only.
/// </summary>
internal sealed class BlockManager : IDisposable
{
    private readonly BlockAllocator _allocator;
    private readonly Dictionary<UInt128, int> _cachedBlocks = [];
    private readonly UInt128[] _blockHash;

    public PagedKvCache Cache { get; }
    public bool PrefixCaching { get; }
    public IKvBlockStore? Store { get; }
    public int BlockSize => Cache.BlockSize;
    public int TotalBlocks => _allocator.BlockCount;
    public int FreeBlocks => _allocator.FreeCount;
    public int UsedBlocks => _allocator.UsedCount;
    /// <summary>Cached blocks nobody uses (counted as free).</summary>
    public int EvictableBlocks => _allocator.EvictableCount;
    /// <summary>Blocks registered in the prefix cache (in use or evictable).</summary>
    public int CachedBlocks => _cachedBlocks.Count;
    /// <summary>Fraction of blocks in use (0..1).</summary>
    public double Usage => TotalBlocks == 0 ? 0 : (double)UsedBlocks / TotalBlocks;
    /// <summary>Token slots the whole cache holds.</summary>
    public long CapacityTokens => (long)TotalBlocks * BlockSize;
    /// <summary>Prefix-cache counters (tokens): looked up at admission, found cached (memory or store), and blocks evicted.</summary>
    public long PrefixQueries { get; private set; }
    public long PrefixHits { get; private set; }
    public long StoreHits { get; private set; }
    public long Evictions { get; private set; }

    public BlockManager(PagedKvCache cache, bool prefixCaching = false, IKvBlockStore? store = null)
    {
        Cache = cache;
        PrefixCaching = prefixCaching;
        Store = prefixCaching ? store : null;
        _allocator = new BlockAllocator(cache.BlockCount);
        _blockHash = new UInt128[cache.BlockCount];
        _allocator.Evicting = OnEvicting;
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

    /// <summary>Releases the blocks of <paramref name="table"/> beyond those <paramref name="tokens"/> tokens need (the
    /// rollback of rejected speculative tokens). Never touches registered (cached) blocks: those are full of
    /// computed tokens, which a rollback does not reach.</summary>
    public void Trim(BlockTable table, int tokens)
    {
        int keep = BlockTable.BlocksFor(tokens, BlockSize);
        while (table.Count > keep) _allocator.Release(table.RemoveLast());
    }

    /// <summary>Releases every block of <paramref name="table"/>, last first (so that, among one sequence's cached
    /// blocks, the tail is evicted before the shared head), and empties it.</summary>
    public void Free(BlockTable table)
    {
        for (int i = table.Count - 1; i >= 0; i--) _allocator.Release(table[i]);
        table.Clear();
    }

    /// <summary>Releases a sequence's blocks; its registered blocks stay in the prefix cache.</summary>
    public void Free(Sequence s)
    {
        Free(s.Blocks);
        s.HashedBlocks = 0;
    }

    /// <summary>
    /// For a sequence with no blocks: takes the longest run of cached full blocks that matches its tokens (memory
    /// first, then the store), so that only the rest is computed, and returns the number of tokens it covers. The
    /// last token is never covered (its logits are needed). The blocks belong to the sequence from now on: release
    /// them with <see cref="Free(Sequence)"/> if it is not admitted after all (they stay cached).
    /// </summary>
    public int ClaimCachedPrefix(Sequence s)
    {
        if (!PrefixCaching || s.SkipsPrefixCache || s.Blocks.Count != 0 || s.ComputedTokens != 0) return 0;
        int maxBlocks = (s.Length - 1) / BlockSize;
        int n = 0;
        while (n < maxBlocks)
        {
            var h = s.BlockHashAt(n, BlockSize);
            if (_cachedBlocks.TryGetValue(h, out int b)) _allocator.AddRef(b);
            else if (!TryLoadFromStore(h, out b)) break;
            s.Blocks.Add(b);
            n++;
        }
        s.HashedBlocks = n;
        s.ComputedTokens = n * BlockSize;
        return s.ComputedTokens;
    }

    /// <summary>Counts one admission's lookup for the hit-rate counters.</summary>
    public void RecordPrefixQuery(int queriedTokens, int hitTokens)
    {
        PrefixQueries += queriedTokens;
        PrefixHits += hitTokens;
    }

    private bool TryLoadFromStore(UInt128 h, out int block)
    {
        block = -1;
        if (Store == null || !Store.Contains(h) || !_allocator.TryAllocate(out block)) return false;
        if (!Store.TryLoad(h, Cache, block))
        {
            _allocator.Release(block);
            block = -1;
            return false;
        }
        Register(block, h);
        StoreHits += BlockSize;
        return true;
    }

    /// <summary>Registers the full blocks <paramref name="s"/> has computed since the last call (prompt and generated
    /// tokens alike), so that later sequences can reuse them.</summary>
    public void CacheFullBlocks(Sequence s)
    {
        if (!PrefixCaching || s.SkipsPrefixCache) return;
        int full = Math.Min(s.ComputedTokens / BlockSize, s.Blocks.Count);
        for (int i = s.HashedBlocks; i < full; i++)
        {
            var h = s.BlockHashAt(i, BlockSize);
            if (!_cachedBlocks.ContainsKey(h)) Register(s.Blocks[i], h);   // else: a twin computed at the same time stays uncached
        }
        if (full > s.HashedBlocks) s.HashedBlocks = full;
    }

    private void Register(int block, UInt128 h)
    {
        _cachedBlocks[h] = block;
        _blockHash[block] = h;
        _allocator.SetCached(block, true);
    }

    private void OnEvicting(int block)
    {
        var h = _blockHash[block];
        _cachedBlocks.Remove(h);
        Evictions++;
        Store?.Spill(h, Cache, block);
    }

    /// <summary>Whether the prefix cache holds a block with hash <paramref name="h"/> in memory.</summary>
    public bool IsCached(UInt128 h) => _cachedBlocks.ContainsKey(h);
    public int RefCount(int block) => _allocator.RefCount(block);
    /// <summary>Evictable blocks in the order allocations will take them.</summary>
    public IEnumerable<int> EvictionOrder() => _allocator.EvictionOrder();

    /// <summary>Internal waste for sequences holding <paramref name="storedTokens"/> tokens in total.</summary>
    public double Waste(long storedTokens)
    {
        long slots = (long)UsedBlocks * BlockSize;
        return slots == 0 ? 0 : 1.0 - (double)storedTokens / slots;
    }

    /// <summary>Hands every cached block memory still holds to the store (least recently used first, so the newest
    /// files are the last the store's size limit deletes): at shutdown, so that a restart starts warm. Engine stopped.</summary>
    public void SpillAllToStore()
    {
        if (Store == null) return;
        foreach (int b in _allocator.EvictionOrder().ToList())
            Store.Spill(_blockHash[b], Cache, b, waitForRoom: true);
    }

    public void Dispose()
    {
        SpillAllToStore();
        Store?.Dispose();
        Cache.Dispose();
    }
}

/// <summary>A second tier for evicted prefix-cache blocks (see <see cref="DiskBlockStore"/>): content-addressed by
/// the block's chain hash. Engine-loop thread, except what an implementation does in the background.</summary>
internal interface IKvBlockStore : IDisposable
{
    bool Contains(UInt128 hash);
    /// <summary>Copies a stored block into <paramref name="block"/> of <paramref name="cache"/>; false (and nothing
    /// used) when the stored copy is missing, damaged or foreign.</summary>
    bool TryLoad(UInt128 hash, PagedKvCache cache, int block);
    /// <summary>Receives a block that memory is about to lose (or, at shutdown, everything memory holds); must copy what
    /// it keeps before returning. <paramref name="waitForRoom"/>: wait for a full write queue instead of dropping the block.</summary>
    void Spill(UInt128 hash, PagedKvCache cache, int block, bool waitForRoom = false);
}
