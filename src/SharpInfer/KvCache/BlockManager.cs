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
/// <para>KV-cache groups (<see cref="KvCacheGroups"/>, models with sliding-window layers): a sequence has one table
/// per group, all growing together; after every step a windowed group's table gives back the blocks that end before
/// the window of the next token to compute (<see cref="DropOutsideWindow"/>), so what a long sequence holds in those
/// layers is bounded by the window. Cached blocks are registered per (hash, group), and a prefix hit needs every
/// block of the prefix in the full-attention groups but only the blocks of the last window in a windowed group
/// (vLLM's hybrid prefix-cache lookup); a preempted sequence comes back through the same lookup, or from scratch.</para>
/// <para>Partly filled last blocks (one group of full attention only): vLLM caches full blocks alone, so every turn of a
/// conversation recomputes the tokens of the previous turn's last, partial block (8 on average with 16-token blocks,
/// a fifth of what a short turn computes). A finished sequence's partial block is kept too, evictable like a cached
/// block (first in its sequence's eviction order), under the hash of the full block before it with the tokens it
/// holds; a later sequence whose tokens continue the same way gets those keys and values copied into a block of its
/// own (token-granular reuse, as SGLang's radix cache and llama-server's slots do). Such blocks never go to the store.</para>
/// Engine-loop thread only.
/// </summary>
internal sealed class BlockManager : IDisposable
{
    private readonly BlockAllocator _allocator;
    private readonly Dictionary<(UInt128 Hash, int Group), int> _cachedBlocks = [];
    private readonly UInt128[] _blockHash;
    private readonly int[] _blockGroup;
    private bool[] _fromStore = [];
    // partial last blocks of finished sequences: the hash of the full block before one (or the sequence's root) →
    // the block; per block, its tokens and how many (0: not such a block)
    private readonly Dictionary<UInt128, int> _tails = [];
    private readonly int[]?[] _tailTokens;
    private readonly int[] _tailLength;

    public PagedKvCache Cache { get; }
    public bool PrefixCaching { get; }
    public IKvBlockStore? Store { get; }
    public int BlockSize => Cache.BlockSize;
    public KvCacheGroups Groups => Cache.Groups;
    public int TotalBlocks => _allocator.BlockCount;
    public int FreeBlocks => _allocator.FreeCount;
    public int UsedBlocks => _allocator.UsedCount;
    /// <summary>Cached blocks nobody uses (counted as free).</summary>
    public int EvictableBlocks => _allocator.EvictableCount;
    /// <summary>Blocks registered in the prefix cache (in use or evictable).</summary>
    public int CachedBlocks => _cachedBlocks.Count;
    /// <summary>Partly filled blocks kept from finished sequences (evictable, like cached blocks nobody uses).</summary>
    public int TailBlocks => _tails.Count;
    /// <summary>Fraction of blocks in use (0..1).</summary>
    public double Usage => TotalBlocks == 0 ? 0 : (double)UsedBlocks / TotalBlocks;
    /// <summary>Longest sequence the whole cache holds on its own: every token slot without groups; with windowed
    /// groups, what is left beside their windows, shared by the full-attention groups.</summary>
    public long CapacityTokens => Groups.MaxTokens(TotalBlocks, BlockSize);
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
        _blockGroup = new int[cache.BlockCount];
        _tailTokens = new int[]?[cache.BlockCount];
        _tailLength = new int[cache.BlockCount];
        _allocator.Evicting = OnEvicting;
    }

    /// <summary>New blocks a table needs to hold <paramref name="tokens"/> tokens.</summary>
    public int BlocksNeeded(BlockTable table, int tokens) => Math.Max(0, BlockTable.BlocksFor(tokens, BlockSize) - table.Count);

    public bool CanGrow(BlockTable table, int tokens) => BlocksNeeded(table, tokens) <= _allocator.FreeCount;

    /// <summary>Grows <paramref name="table"/> to hold <paramref name="tokens"/> tokens; false (and no change) when
    /// there are not enough free blocks. For callers that manage their own tables: a cache with one group only.</summary>
    public bool TryGrow(BlockTable table, int tokens)
    {
        RequireSingleGroup();
        return TryGrowTable(table, tokens);
    }

    private bool TryGrowTable(BlockTable table, int tokens)
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

    private void RequireSingleGroup()
    {
        if (Groups.GroupCount > 1)
            throw new InvalidOperationException($"the KV cache has {Groups.GroupCount} block groups: grow sequences, not single tables");
    }

    /// <summary>Grows every table of <paramref name="s"/> to hold <paramref name="tokens"/> tokens; false (and no
    /// change) when there are not enough free blocks.</summary>
    public bool TryGrow(Sequence s, int tokens)
    {
        s.UseGroups(Groups.GroupCount);
        var tables = s.Tables;
        if ((long)BlocksNeeded(tables[0], tokens) * tables.Length > _allocator.FreeCount) return false;
        foreach (var t in tables) TryGrowTable(t, tokens);
        return true;
    }

    /// <summary>How many of the next tokens of <paramref name="s"/> its blocks and the free blocks can hold (each
    /// block of token positions takes one block in every group).</summary>
    public int TokensThatFit(Sequence s) =>
        s.Blocks.Count * BlockSize - s.ComputedTokens + _allocator.FreeCount / Groups.GroupCount * BlockSize;

    /// <summary>Releases the blocks of <paramref name="table"/> beyond those <paramref name="tokens"/> tokens need (the
    /// rollback of rejected speculative tokens). Never touches registered (cached) blocks: those are full of
    /// computed tokens, which a rollback does not reach.</summary>
    public void Trim(BlockTable table, int tokens)
    {
        int keep = BlockTable.BlocksFor(tokens, BlockSize);
        while (table.Count > keep && table.LiveCount > 0) _allocator.Release(table.RemoveLast());
    }

    /// <summary><see cref="Trim(BlockTable, int)"/> for every table of <paramref name="s"/>.</summary>
    public void Trim(Sequence s, int tokens)
    {
        foreach (var t in s.Tables) Trim(t, tokens);
    }

    /// <summary>Releases every block of <paramref name="table"/>, last first (so that, among one sequence's cached
    /// blocks, the tail is evicted before the shared head), and empties it.</summary>
    public void Free(BlockTable table)
    {
        for (int i = table.Count - 1; i >= table.FirstLive; i--) _allocator.Release(table[i]);
        table.Clear();
    }

    /// <summary>Releases a sequence's blocks; its registered blocks stay in the prefix cache. With several groups,
    /// position by position from the last, every group's block of a position together, so that eviction takes a
    /// position's blocks in all groups before it reaches an earlier one (a prefix hit needs them all).</summary>
    public void Free(Sequence s)
    {
        var tables = s.Tables;
        if (tables.Length == 1) Free(tables[0]);
        else
        {
            for (int i = tables[0].Count - 1; i >= 0; i--)
                foreach (var t in tables)
                    if (i >= t.FirstLive && i < t.Count) _allocator.Release(t[i]);
            foreach (var t in tables) t.Clear();
        }
        s.HashedBlocks = 0;
    }

    /// <summary><see cref="Free(Sequence)"/> for a sequence that finished or was aborted: its partly filled last block
    /// (computed keys and values of tokens that no full block holds) stays for a later sequence that continues the
    /// same tokens, the next turn of a conversation above all (see the class remarks). Not for a preempted sequence
    /// or one whose tokens changed: only here are its tokens and its computed keys and values known to agree.</summary>
    public void FreeFinished(Sequence s)
    {
        KeepTail(s);
        Free(s);
    }

    private void KeepTail(Sequence s)
    {
        if (!PrefixCaching || s.SkipsPrefixCache || !IsSingleFullGroup) return;
        int computed = Math.Min(s.ComputedTokens, s.Length);
        int full = computed / BlockSize, count = computed - full * BlockSize;
        if (count == 0 || s.Blocks.Count <= full) return;
        int b = s.Blocks[full];
        if (_allocator.RefCount(b) != 1 || _allocator.IsCached(b)) return;   // only a block this sequence alone holds
        var parent = full == 0 ? s.HashRoot : s.BlockHashAt(full - 1, BlockSize);
        if (!_tails.TryAdd(parent, b)) return;   // one per parent: the one kept first stays
        var tokens = _tailTokens[b] ??= new int[BlockSize];
        s.Tokens.Slice(full * BlockSize, count).CopyTo(tokens);
        _tailLength[b] = count;
        _blockHash[b] = parent;
        _allocator.SetCached(b, true);   // released by Free: to the back of the LRU queue, before the sequence's full blocks
    }

    private bool IsSingleFullGroup => Groups.GroupCount == 1 && Groups.Window(0) == 0;

    /// <summary>
    /// Gives back, in each sliding-window group, the blocks that end before the window of the next token of
    /// <paramref name="s"/> (position <see cref="Sequence.ComputedTokens"/>, which sees from ComputedTokens − window + 1):
    /// no query to come reads them. Registered blocks stay in the prefix cache (evictable). Call after the step's
    /// blocks were registered (<see cref="CacheFullBlocks"/>).
    /// </summary>
    public void DropOutsideWindow(Sequence s)
    {
        var tables = s.Tables;
        for (int g = 0; g < tables.Length; g++)
        {
            int w = Groups.Window(g);
            if (w == 0) continue;
            var t = tables[g];
            int dead = Math.Min(Math.Max(0, s.ComputedTokens - w + 1) / BlockSize, t.Count);
            while (t.FirstLive < dead) _allocator.Release(t.DropFirst());
        }
    }

    /// <summary>
    /// For a sequence with no blocks: takes the longest run of cached full blocks that matches its tokens (memory
    /// first, then the store), so that only the rest is computed, and returns the number of tokens it covers. The
    /// last token is never covered (its logits are needed). The blocks belong to the sequence from now on: release
    /// them with <see cref="Free(Sequence)"/> if it is not admitted after all (they stay cached). With windowed
    /// groups a prefix of n blocks is a hit when the full-attention groups have all n and every windowed group has
    /// those its window still sees from position n × block size; the entries before are taken as dropped.
    /// </summary>
    public int ClaimCachedPrefix(Sequence s)
    {
        if (!PrefixCaching || s.SkipsPrefixCache || s.Blocks.Count != 0 || s.ComputedTokens != 0) return 0;
        s.UseGroups(Groups.GroupCount);
        int maxBlocks = (s.Length - 1) / BlockSize;
        bool single = IsSingleFullGroup;
        int n = single ? ClaimFullRun(s, maxBlocks) : ClaimGrouped(s, maxBlocks);
        s.HashedBlocks = n;
        s.ComputedTokens = n * BlockSize + (single ? ClaimTail(s, n) : 0);
        return s.ComputedTokens;
    }

    /// <summary>After <paramref name="n"/> full blocks: copies what a kept partial block (<see cref="FreeFinished"/>) under
    /// the same parent has in common with the sequence's next tokens into a new block of the sequence, the last token
    /// excepted; returns the tokens copied.</summary>
    private int ClaimTail(Sequence s, int n)
    {
        int room = s.Length - 1 - n * BlockSize;
        if (room <= 0 || _tails.Count == 0) return 0;
        var parent = n == 0 ? s.HashRoot : s.BlockHashAt(n - 1, BlockSize);
        if (!_tails.TryGetValue(parent, out int src)) return 0;
        var kept = _tailTokens[src]!;
        var next = s.Tokens.Slice(n * BlockSize, Math.Min(room, _tailLength[src]));
        int m = 0;
        while (m < next.Length && next[m] == kept[m]) m++;
        if (m == 0) return 0;
        _allocator.AddRef(src);   // held meanwhile, so that the allocation cannot evict the source
        bool ok = _allocator.TryAllocate(out int dst);
        if (ok) Cache.CopyTokens(src, dst, m);
        _allocator.Release(src);
        if (!ok) return 0;
        s.Blocks.Add(dst);
        return m;
    }

    /// <summary>One group of full attention: the longest run, stopping at the first block neither tier can give.</summary>
    private int ClaimFullRun(Sequence s, int maxBlocks)
    {
        int n = 0;
        while (n < maxBlocks)
        {
            var h = s.BlockHashAt(n, BlockSize);
            if (_cachedBlocks.TryGetValue((h, 0), out int b)) _allocator.AddRef(b);
            else if (TryLoadFromStore(h, 0, out b)) StoreHits += BlockSize;
            else break;
            s.Blocks.Add(b);
            n++;
        }
        return n;
    }

    private int ClaimGrouped(Sequence s, int maxBlocks)
    {
        int G = Groups.GroupCount;
        // the longest run every full-attention group has
        int n = 0;
        while (n < maxBlocks)
        {
            var h = s.BlockHashAt(n, BlockSize);
            bool all = true;
            for (int g = 0; g < G && all; g++) all = Groups.Window(g) != 0 || IsAvailable(h, g);
            if (!all) break;
            n++;
        }
        // shortened until every windowed group has the blocks its window sees from position n·bs
        while (n > 0 && !WindowsAvailable(s, n)) n--;
        if (n == 0) return 0;
        // positions whose block came from the store in some group (counted once for the disk-hit counter)
        if (_fromStore.Length < n) _fromStore = new bool[Math.Max(n, 2 * _fromStore.Length)];
        Array.Clear(_fromStore, 0, n);
        for (int g = 0; g < G; g++)
        {
            var t = s.Tables[g];
            int first = FirstLiveBlock(g, n);
            for (int i = 0; i < n; i++)
            {
                if (i < first) { t.AddDropped(); continue; }
                var h = s.BlockHashAt(i, BlockSize);
                if (_cachedBlocks.TryGetValue((h, g), out int b)) _allocator.AddRef(b);
                else if (TryLoadFromStore(h, g, out b)) _fromStore[i] = true;
                else
                {
                    // a damaged file, or no block free to load it into: no hit this time
                    Free(s);
                    return 0;
                }
                t.Add(b);
            }
        }
        for (int i = 0; i < n; i++) if (_fromStore[i]) StoreHits += BlockSize;
        return n;
    }

    /// <summary>The first block a windowed group still needs when the next token is at position n·bs (0 for full attention).</summary>
    private int FirstLiveBlock(int group, int n)
    {
        int w = Groups.Window(group);
        return w == 0 ? 0 : Math.Max(0, n * BlockSize - w + 1) / BlockSize;
    }

    private bool WindowsAvailable(Sequence s, int n)
    {
        for (int g = 0; g < Groups.GroupCount; g++)
        {
            if (Groups.Window(g) == 0) continue;
            for (int i = FirstLiveBlock(g, n); i < n; i++)
                if (!IsAvailable(s.BlockHashAt(i, BlockSize), g)) return false;
        }
        return true;
    }

    private bool IsAvailable(UInt128 h, int group) => _cachedBlocks.ContainsKey((h, group)) || (Store?.Contains(StoreKey(h, group)) ?? false);

    /// <summary>The store's key of a group's block: the chain hash itself for group 0 (so a single-group layout keeps its
    /// files), else a hash of it and the group (a negative "token", which no real block has).</summary>
    private static UInt128 StoreKey(UInt128 h, int group) => group == 0 ? h : BlockHash.Of(h, [-1 - group]);

    /// <summary>Counts one admission's lookup for the hit-rate counters.</summary>
    public void RecordPrefixQuery(int queriedTokens, int hitTokens)
    {
        PrefixQueries += queriedTokens;
        PrefixHits += hitTokens;
    }

    private bool TryLoadFromStore(UInt128 h, int group, out int block)
    {
        block = -1;
        var key = StoreKey(h, group);
        if (Store == null || !Store.Contains(key) || !_allocator.TryAllocate(out block)) return false;
        if (!Store.TryLoad(key, Cache, block))
        {
            _allocator.Release(block);
            block = -1;
            return false;
        }
        Register(block, h, group);
        return true;
    }

    /// <summary>Registers the full blocks <paramref name="s"/> has computed since the last call (prompt and generated
    /// tokens alike), so that later sequences can reuse them.</summary>
    public void CacheFullBlocks(Sequence s)
    {
        if (!PrefixCaching || s.SkipsPrefixCache) return;
        int full = Math.Min(s.ComputedTokens / BlockSize, s.Blocks.Count);
        var tables = s.Tables;
        for (int i = s.HashedBlocks; i < full; i++)
        {
            var h = s.BlockHashAt(i, BlockSize);
            for (int g = 0; g < tables.Length; g++)
                // else: a twin computed at the same time stays uncached; a dropped entry has nothing to register
                if (i >= tables[g].FirstLive && !_cachedBlocks.ContainsKey((h, g))) Register(tables[g][i], h, g);
        }
        if (full > s.HashedBlocks) s.HashedBlocks = full;
    }

    private void Register(int block, UInt128 h, int group)
    {
        _cachedBlocks[(h, group)] = block;
        _blockHash[block] = h;
        _blockGroup[block] = group;
        _allocator.SetCached(block, true);
    }

    private void OnEvicting(int block)
    {
        if (_tailLength[block] > 0)
        {
            // a kept partial block: only memory has it
            _tails.Remove(_blockHash[block]);
            _tailLength[block] = 0;
            Evictions++;
            return;
        }
        var h = _blockHash[block];
        int g = _blockGroup[block];
        _cachedBlocks.Remove((h, g));
        Evictions++;
        Store?.Spill(StoreKey(h, g), Cache, block);
    }

    /// <summary>Whether the prefix cache holds a block with hash <paramref name="h"/> of group <paramref name="group"/> in memory.</summary>
    public bool IsCached(UInt128 h, int group = 0) => _cachedBlocks.ContainsKey((h, group));
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
            if (_tailLength[b] == 0) Store.Spill(StoreKey(_blockHash[b], _blockGroup[b]), Cache, b, waitForRoom: true);
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
