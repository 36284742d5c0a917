namespace SharpInfer.KvCache;

/// <summary>
/// Hands out KV-cache blocks and reference-counts them, so a block can be shared by several sequences (prefix
/// caching). A block nobody uses goes either to the free stack or, when its content is cached for reuse
/// (<see cref="SetCached"/>), to the back of an LRU queue: it keeps its keys and values until an allocation finds
/// the free stack empty and takes the least recently released cached block (vLLM's free-block queue). A cached
/// block that gets a new user before that leaves the queue (<see cref="AddRef"/>). Not thread-safe: the engine
/// loop is its only user.
/// </summary>
internal sealed class BlockAllocator
{
    private readonly int[] _refCounts;
    private readonly Stack<int> _free;
    private readonly bool[] _cached;
    // LRU queue of cached blocks with no user, oldest first: a doubly linked list over block ids (O(1) removal on a hit)
    private readonly int[] _prev, _next;
    private int _head = -1, _tail = -1;

    public int BlockCount { get; }
    /// <summary>Blocks an allocation can take: never-used or released uncached blocks, and evictable cached ones.</summary>
    public int FreeCount => _free.Count + EvictableCount;
    /// <summary>Blocks with at least one user.</summary>
    public int UsedCount => BlockCount - FreeCount;
    /// <summary>Cached blocks without a user: free for allocation, reusable by a prefix hit until then.</summary>
    public int EvictableCount { get; private set; }
    /// <summary>Called with a cached block just before an allocation reuses it (its content is about to be lost).</summary>
    public Action<int>? Evicting { get; set; }

    public BlockAllocator(int blockCount)
    {
        BlockCount = blockCount;
        _refCounts = new int[blockCount];
        _cached = new bool[blockCount];
        _prev = new int[blockCount];
        _next = new int[blockCount];
        _free = new Stack<int>(blockCount);
        for (int b = blockCount - 1; b >= 0; b--) _free.Push(b);   // hand out low block ids first
    }

    public bool TryAllocate(out int block)
    {
        if (!_free.TryPop(out block))
        {
            if (_head < 0) return false;
            block = _head;
            Unlink(block);
            Evicting?.Invoke(block);
            _cached[block] = false;
        }
        _refCounts[block] = 1;
        return true;
    }

    public int RefCount(int block) => _refCounts[block];
    public bool IsCached(int block) => _cached[block];

    /// <summary>Marks a block's content as reusable (or not): when its last user lets go it waits in the LRU queue
    /// instead of the free stack.</summary>
    public void SetCached(int block, bool cached)
    {
        if (_refCounts[block] <= 0) throw new InvalidOperationException($"block {block} is not allocated");
        _cached[block] = cached;
    }

    /// <summary>Adds a user to an allocated block (sharing), or revives a cached block from the LRU queue.</summary>
    public void AddRef(int block)
    {
        if (_refCounts[block] == 0 && _cached[block]) Unlink(block);
        else if (_refCounts[block] <= 0) throw new InvalidOperationException($"block {block} is not allocated");
        _refCounts[block]++;
    }

    /// <summary>Drops one user; with none left the block becomes free (or evictable, if cached).</summary>
    public void Release(int block)
    {
        if (_refCounts[block] <= 0) throw new InvalidOperationException($"block {block} released more often than allocated");
        if (--_refCounts[block] > 0) return;
        if (_cached[block]) Append(block);
        else _free.Push(block);
    }

    /// <summary>The evictable blocks, least recently released first (the order allocations take them).</summary>
    public IEnumerable<int> EvictionOrder()
    {
        for (int b = _head; b >= 0; b = _next[b]) yield return b;
    }

    private void Append(int b)
    {
        _prev[b] = _tail;
        _next[b] = -1;
        if (_tail >= 0) _next[_tail] = b; else _head = b;
        _tail = b;
        EvictableCount++;
    }

    private void Unlink(int b)
    {
        int p = _prev[b], n = _next[b];
        if (p >= 0) _next[p] = n; else _head = n;
        if (n >= 0) _prev[n] = p; else _tail = p;
        EvictableCount--;
    }
}
