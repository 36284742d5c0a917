using SharpInfer.KvCache;
using SharpInfer.Scheduling;

namespace SharpInfer.Tests.KvCache;

/// <summary>The prefix cache's bookkeeping without a model: chained block hashes, salts, the LRU queue of evictable
/// blocks, and reference counts under random traffic (the keys and values themselves are checked end to end in
/// <c>PrefixCachingExactnessTests</c>).</summary>
public class PrefixCacheTests
{
    private const int BlockSize = 4;

    private static Sequence Seq(long id, int[] tokens, string? salt = null, int extra = 8) =>
        new(id, tokens, tokens.Length + extra, 0, id) { HashRoot = BlockHash.Root(salt) };

    private static int[] Tokens(int n, int offset = 0) => Enumerable.Range(offset, n).ToArray();

    /// <summary>Computes a sequence's whole prompt through the scheduler, as the engine would.</summary>
    private static void Prefill(Scheduler sched, Sequence s)
    {
        sched.Add(s);
        while (s.PendingTokens > 0)
        {
            var plan = sched.Schedule();
            Assert.NotEmpty(plan);
            sched.Complete(plan);
            if (plan.Any(c => c.Sequence == s && c.SamplesNext)) break;
        }
    }

    [Fact]
    public void BlockHashesChainThroughTheParent()
    {
        var a = BlockHash.Of(UInt128.Zero, [1, 2, 3, 4]);
        Assert.Equal(a, BlockHash.Of(UInt128.Zero, [1, 2, 3, 4]));                  // deterministic (the disk tier relies on it)
        Assert.NotEqual(a, BlockHash.Of(UInt128.Zero, [1, 2, 3, 5]));               // any token changes it
        Assert.NotEqual(a, BlockHash.Of(UInt128.Zero, [4, 3, 2, 1]));               // order matters
        var b = BlockHash.Of(a, [5, 6, 7, 8]);
        Assert.NotEqual(b, BlockHash.Of(BlockHash.Of(UInt128.Zero, [9, 2, 3, 4]), [5, 6, 7, 8]));   // same block, other parent
        Assert.NotEqual(UInt128.Zero, a);

        // a sequence's block hashes are exactly this chain
        var s = Seq(1, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        Assert.Equal(a, s.BlockHashAt(0, BlockSize));
        Assert.Equal(b, s.BlockHashAt(1, BlockSize));
    }

    [Fact]
    public void SaltsSeparateCachesAndEqualSaltsShare()
    {
        Assert.Equal(UInt128.Zero, BlockHash.Root(null));
        Assert.Equal(UInt128.Zero, BlockHash.Root(""));
        Assert.NotEqual(BlockHash.Root("tenant-a"), BlockHash.Root("tenant-b"));
        Assert.NotEqual(UInt128.Zero, BlockHash.Root("tenant-a"));
        var tokens = Tokens(4 * BlockSize + 1);
        Assert.NotEqual(Seq(1, tokens, "tenant-a").BlockHashAt(0, BlockSize), Seq(2, tokens).BlockHashAt(0, BlockSize));

        using var cache = new PagedKvCache(1, 1, 4, BlockSize, 32, KvDataType.F32);
        var bm = new BlockManager(cache, prefixCaching: true);
        var sched = new Scheduler(bm, 4, 64, SchedulingMode.Continuous);
        var first = Seq(1, tokens, "tenant-a");
        Prefill(sched, first);
        sched.Remove(first);

        var otherTenant = Seq(2, tokens, "tenant-b");
        var noSalt = Seq(3, tokens);
        var sameTenant = Seq(4, tokens, "tenant-a");
        Assert.Equal(0, bm.ClaimCachedPrefix(otherTenant));
        Assert.Equal(0, bm.ClaimCachedPrefix(noSalt));
        Assert.Equal(4 * BlockSize, bm.ClaimCachedPrefix(sameTenant));
        bm.Free(sameTenant);
    }

    [Fact]
    public void TheLastPromptTokenIsAlwaysComputed()
    {
        using var cache = new PagedKvCache(1, 1, 4, BlockSize, 32, KvDataType.F32);
        var bm = new BlockManager(cache, prefixCaching: true);
        var sched = new Scheduler(bm, 4, 64, SchedulingMode.Continuous);
        var first = Seq(1, Tokens(3 * BlockSize));
        Prefill(sched, first);
        sched.Remove(first);
        // the same prompt, exactly 3 full blocks: only 2 can be reused, the third holds the token whose logits are needed
        var again = Seq(2, Tokens(3 * BlockSize));
        Assert.Equal(2 * BlockSize, bm.ClaimCachedPrefix(again));
        bm.Free(again);
        // one token longer: all 3 blocks
        var longer = Seq(3, Tokens(3 * BlockSize + 1));
        Assert.Equal(3 * BlockSize, bm.ClaimCachedPrefix(longer));
        bm.Free(longer);
    }

    [Fact]
    public void EvictionTakesTheLeastRecentlyReleasedFirstAndATailBeforeItsHead()
    {
        using var cache = new PagedKvCache(1, 1, 4, BlockSize, 16, KvDataType.F32);
        var bm = new BlockManager(cache, prefixCaching: true);
        var sched = new Scheduler(bm, 4, 64, SchedulingMode.Continuous);
        var a = Seq(1, Tokens(3 * BlockSize + 1, 0), extra: 0);
        var b = Seq(2, Tokens(2 * BlockSize + 1, 100), extra: 0);
        Prefill(sched, a);
        Prefill(sched, b);
        var aBlocks = a.Blocks.Blocks.ToArray()[..3];
        var bBlocks = b.Blocks.Blocks.ToArray()[..2];
        int aPartial = a.Blocks[3], bPartial = b.Blocks[2];   // each holds its prompt's last token
        sched.Remove(a);   // released first: evicted first
        sched.Remove(b);
        Assert.Equal(7, bm.EvictableBlocks);
        Assert.Equal(2, bm.TailBlocks);
        // within one request the tail goes before the head (a later request is likelier to share the head); the kept
        // partial block is the very last
        int[] expected = [aPartial, aBlocks[2], aBlocks[1], aBlocks[0], bPartial, bBlocks[1], bBlocks[0]];
        Assert.Equal(expected, bm.EvictionOrder().ToArray());

        // a hit on a's head revives exactly that block: it leaves the queue, the rest keep their order
        var c = Seq(3, Tokens(BlockSize + 1, 0));
        Assert.Equal(BlockSize, bm.ClaimCachedPrefix(c));
        Assert.Equal(aBlocks[0], c.Blocks[0]);
        Assert.Equal([aPartial, aBlocks[2], aBlocks[1], bPartial, bBlocks[1], bBlocks[0]], bm.EvictionOrder().ToArray());

        // allocations drain the never-used blocks first, then evict in that order
        long evictionsBefore = bm.Evictions;
        var table = new BlockTable();
        int neverUsed = bm.FreeBlocks - bm.EvictableBlocks;
        Assert.True(bm.TryGrow(table, (neverUsed + 3) * BlockSize));
        Assert.Equal(3, bm.Evictions - evictionsBefore);
        Assert.Equal([bPartial, bBlocks[1], bBlocks[0]], bm.EvictionOrder().ToArray());
        Assert.Contains(aPartial, table.Blocks.ToArray());
        Assert.Contains(aBlocks[2], table.Blocks.ToArray());
        Assert.Contains(aBlocks[1], table.Blocks.ToArray());
        Assert.Equal(1, bm.TailBlocks);   // a's partial block went with its eviction
        // the evicted blocks are no longer hits: a's second block is gone, so a hit stops after its first
        var d = Seq(4, Tokens(3 * BlockSize + 1, 0));
        Assert.Equal(BlockSize, bm.ClaimCachedPrefix(d));
        bm.Free(d);
        bm.Free(c);
        bm.Free(table);
    }

    /// <summary>Writes a distinct byte pattern into every key and value slot of <paramref name="block"/>.</summary>
    private static unsafe void Fill(PagedKvCache cache, int block, byte seed)
    {
        int k = (int)(cache.BlockSize * cache.KeyFormat.RowBytes(cache.HeadDim)), v = (int)(cache.BlockSize * cache.ValueFormat.RowBytes(cache.HeadDim));
        for (int l = 0; l < cache.LayerCount; l++)
            for (int h = 0; h < cache.KvHeadCount; h++)
            {
                for (int i = 0; i < k; i++) cache.KeyBlock(l, block, h)[i] = (byte)(seed + i + 7 * l + 13 * h);
                for (int i = 0; i < v; i++) cache.ValueBlock(l, block, h)[i] = (byte)(seed + 3 * i + 7 * l + 13 * h);
            }
    }

    /// <summary>Whether the first <paramref name="slots"/> token slots of two blocks hold the same keys and values.</summary>
    private static unsafe bool SameSlots(PagedKvCache cache, int a, int b, int slots)
    {
        int k = (int)(slots * cache.KeyFormat.RowBytes(cache.HeadDim)), v = (int)(slots * cache.ValueFormat.RowBytes(cache.HeadDim));
        for (int l = 0; l < cache.LayerCount; l++)
            for (int h = 0; h < cache.KvHeadCount; h++)
                if (!new ReadOnlySpan<byte>(cache.KeyBlock(l, a, h), k).SequenceEqual(new ReadOnlySpan<byte>(cache.KeyBlock(l, b, h), k))
                    || !new ReadOnlySpan<byte>(cache.ValueBlock(l, a, h), v).SequenceEqual(new ReadOnlySpan<byte>(cache.ValueBlock(l, b, h), v)))
                    return false;
        return true;
    }

    [Fact]
    public void AFinishedSequencesPartialBlockIsReusedTokenByToken()
    {
        using var cache = new PagedKvCache(2, 2, 4, BlockSize, 32, KvDataType.F32);
        var bm = new BlockManager(cache, prefixCaching: true);
        var sched = new Scheduler(bm, 4, 64, SchedulingMode.Continuous);
        var prompt = Tokens(2 * BlockSize + 3);
        var first = Seq(1, prompt);
        Prefill(sched, first);
        int partial = first.Blocks[2];
        Fill(cache, partial, 42);   // stands for the keys and values the step wrote
        sched.Remove(first);
        Assert.Equal(1, bm.TailBlocks);
        Assert.Equal(0, bm.UsedBlocks);

        // the next turn continues the same tokens: 2 full blocks and the 3 tokens of the partial one, copied
        var next = Seq(2, [.. prompt, 500, 501]);
        Assert.Equal(2 * BlockSize + 3, bm.ClaimCachedPrefix(next));
        Assert.Equal(3, next.Blocks.Count);
        Assert.NotEqual(partial, next.Blocks[2]);               // a copy: the kept block stays for others
        Assert.True(SameSlots(cache, partial, next.Blocks[2], 3));
        Assert.Equal(1, bm.RefCount(next.Blocks[2]));
        Assert.Equal(0, bm.RefCount(partial));
        bm.Free(next);

        // diverging after one token of the partial block: only that one
        var diverging = Seq(3, [.. prompt[..(2 * BlockSize + 1)], 777, 778]);
        Assert.Equal(2 * BlockSize + 1, bm.ClaimCachedPrefix(diverging));
        bm.Free(diverging);
        // the same prompt again: its last token is computed, so 2 of the 3
        var same = Seq(4, prompt);
        Assert.Equal(2 * BlockSize + 2, bm.ClaimCachedPrefix(same));
        bm.Free(same);
        // another tenant never sees it, not even the partial block
        Assert.Equal(0, bm.ClaimCachedPrefix(Seq(5, [.. prompt, 500], "tenant-b")));
        // a prompt shorter than the full blocks plus one token keeps to full blocks
        var short1 = Seq(6, prompt[..(2 * BlockSize + 1)]);
        Assert.Equal(2 * BlockSize, bm.ClaimCachedPrefix(short1));
        bm.Free(short1);

        // a preempted sequence keeps no partial block (its tokens may be about to change): only finished ones do
        var other = Seq(7, Tokens(BlockSize + 2, 1000));
        Assert.Equal(0, bm.ClaimCachedPrefix(other));
        Assert.True(bm.TryGrow(other, other.Length));
        other.ComputedTokens = other.Length;
        bm.CacheFullBlocks(other);
        bm.Free(other);
        Assert.Equal(1, bm.TailBlocks);

        // evicted like any cached block, after which the next turn gets the full blocks only
        var table = new BlockTable();
        Assert.True(bm.TryGrow(table, bm.FreeBlocks * BlockSize));
        Assert.Equal(0, bm.TailBlocks);
        bm.Free(table);
        Assert.Equal(0, bm.ClaimCachedPrefix(Seq(8, [.. prompt, 500])));   // everything was evicted
        Assert.Equal(0, bm.UsedBlocks);
    }

    [Theory]
    [InlineData(1, 24, 6)]
    [InlineData(2, 12, 4)]     // tiny cache: constant eviction and preemption
    [InlineData(3, 48, 8)]
    public void ReferenceCountsStayExactUnderRandomTraffic(int seed, int blocks, int maxSeqs)
    {
        var rng = new Random(seed);
        using var cache = new PagedKvCache(1, 1, 4, BlockSize, blocks, KvDataType.F32);
        var bm = new BlockManager(cache, prefixCaching: true);
        var sched = new Scheduler(bm, maxSeqs, maxNumBatchedTokens: 16, SchedulingMode.Continuous);
        // prompts share a few prefixes so that hits, sharing and eviction all happen
        int[][] prefixes = [Tokens(2 * BlockSize, 0), Tokens(3 * BlockSize, 500), Tokens(BlockSize + 2, 900)];
        string?[] salts = [null, null, "tenant"];
        var live = new List<Sequence>();
        var maxOut = new Dictionary<Sequence, int>();
        long id = 0;
        int capacity = blocks * BlockSize;
        int finished = 0, aborted = 0, hits = 0;
        for (int op = 0; op < 1500; op++)
        {
            int kind = rng.Next(10);
            if (kind < 3)
            {
                var prefix = prefixes[rng.Next(prefixes.Length)];
                int tail = rng.Next(2 * BlockSize);
                var prompt = prefix.Concat(Enumerable.Range(0, tail).Select(_ => 2000 + rng.Next(3))).ToArray();
                if (prompt.Length >= capacity - 1) continue;
                int max = Math.Min(capacity, prompt.Length + 1 + rng.Next(3 * BlockSize));
                var s = new Sequence(++id, prompt, max, rng.Next(2), id) { HashRoot = BlockHash.Root(salts[rng.Next(salts.Length)]) };
                sched.Add(s);
                live.Add(s);
                maxOut[s] = max;
            }
            else if (kind < 4 && live.Count > 0)
            {
                var s = live[rng.Next(live.Count)];
                sched.Remove(s);     // abort
                live.Remove(s);
                aborted++;
            }
            else
            {
                var plan = sched.Schedule();
                if (live.Count > 0) Assert.NotEmpty(plan);
                foreach (var c in plan)
                {
                    Assert.Equal(c.Sequence.ComputedTokens, c.Start);
                    Assert.True(c.Sequence.Blocks.Count * BlockSize >= c.Start + c.Count, "a scheduled token has no KV slot");
                }
                sched.Complete(plan);
                foreach (var c in plan.Where(c => c.SamplesNext))
                {
                    var s = c.Sequence;
                    if (s.CachedPromptTokens > 0 && s.OutputLength == 0) hits++;
                    if (s.Length >= maxOut[s]) { sched.Remove(s); live.Remove(s); finished++; }
                    else s.Append(3000 + rng.Next(2));
                }
            }
            AssertAccounted(bm, live, blocks);
        }
        for (int guard = 0; live.Count > 0; guard++)
        {
            Assert.True(guard < 100_000, "the scheduler made no progress");
            var plan = sched.Schedule();
            sched.Complete(plan);
            foreach (var c in plan.Where(c => c.SamplesNext))
            {
                if (c.Sequence.Length >= maxOut[c.Sequence]) { sched.Remove(c.Sequence); live.Remove(c.Sequence); }
                else c.Sequence.Append(1);
            }
            AssertAccounted(bm, live, blocks);
        }
        // every block is accounted for: none in use, every cached one evictable, all free for allocation
        Assert.Equal(0, bm.UsedBlocks);
        Assert.Equal(blocks, bm.FreeBlocks);
        Assert.Equal(bm.CachedBlocks + bm.TailBlocks, bm.EvictableBlocks);
        Assert.Equal(bm.EvictableBlocks, bm.EvictionOrder().Distinct().Count());
        Assert.True(finished > 0 && aborted > 0 && hits > 0, $"finished {finished}, aborted {aborted}, hits {hits}");
        Assert.True(bm.PrefixHits > 0 && bm.PrefixHits <= bm.PrefixQueries);
        if (blocks <= 12) Assert.True(sched.Preemptions > 0 && bm.Evictions > 0, "the tiny cache should force preemption and eviction");
    }

    /// <summary>Each block's reference count is exactly the number of live sequences holding it; blocks in the LRU
    /// queue are held by nobody; used + free = all.</summary>
    private static void AssertAccounted(BlockManager bm, List<Sequence> live, int blocks)
    {
        var holders = new int[blocks];
        foreach (var s in live)
        {
            var held = s.Blocks.Blocks.ToArray();
            Assert.Equal(held.Length, held.Distinct().Count());   // a sequence never holds a block twice
            foreach (var b in held) holders[b]++;
        }
        for (int b = 0; b < blocks; b++) Assert.Equal(holders[b], bm.RefCount(b));
        Assert.All(bm.EvictionOrder(), b => Assert.Equal(0, holders[b]));
        Assert.Equal(holders.Count(h => h > 0), bm.UsedBlocks);
        Assert.Equal(blocks, bm.UsedBlocks + bm.FreeBlocks);
    }
}
