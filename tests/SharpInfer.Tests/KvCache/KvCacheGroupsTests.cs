using SharpInfer.KvCache;
using SharpInfer.Scheduling;
using SharpInfer.Tests.Scheduling;

namespace SharpInfer.Tests.KvCache;

/// <summary>
/// KV-cache groups without a model: how layers are grouped, and the scheduler and block manager driving grouped
/// tables with sliding-window freeing. Every scheduled token has a live slot in every group and sees its whole window;
/// a windowed table never holds more than its window's blocks between steps; blocks are accounted exactly (none
/// shared, none lost) under random adds, aborts, finishes and preemption; and a long sequence holds what the
/// arithmetic says (full groups: every block; windowed groups: the window's), not what full attention would.
/// </summary>
public class KvCacheGroupsTests
{
    /// <summary>Gemma 3's pattern: every 6th layer global, the others windowed.</summary>
    private static int[] Gemma3(int layers, int window) => [.. Enumerable.Range(0, layers).Select(l => l % 6 < 5 ? window : 0)];

    /// <summary>gpt-oss' pattern: even layers windowed, odd ones full.</summary>
    private static int[] GptOss(int layers, int window) => [.. Enumerable.Range(0, layers).Select(l => l % 2 == 0 ? window : 0)];

    [Fact]
    public void LayersAreCutIntoEqualGroupsOfOneKind()
    {
        foreach (var (windows, perGroup, full, windowed) in new[]
                 {
                     (Gemma3(26, 512), 2, 2, 11),    // gemma3-1b: 4 global, 22 windowed → groups of gcd(4, 22) = 2
                     (Gemma3(6, 16), 1, 1, 5),       // gemma3-tiny
                     (GptOss(24, 128), 12, 1, 1),    // gpt-oss-20b
                     (GptOss(2, 16), 1, 1, 1),       // gpt-oss-tiny
                 })
        {
            var g = KvCacheGroups.For(windows);
            Assert.Equal(perGroup, g.LayersPerGroup);
            Assert.Equal(full, g.FullGroupCount);
            Assert.Equal(windowed, g.WindowGroupCount);
            // each (group, slot) holds exactly one layer, of the group's kind
            var pairs = Enumerable.Range(0, windows.Length).Select(l => (g.GroupOf(l), g.SlotOf(l))).ToList();
            Assert.Equal(pairs.Count, pairs.Distinct().Count());
            Assert.All(pairs, p => Assert.InRange(p.Item2, 0, perGroup - 1));
            for (int l = 0; l < windows.Length; l++) Assert.Equal(windows[l], g.Window(g.GroupOf(l)));
            // full-attention groups come first
            for (int i = 0; i < g.GroupCount; i++) Assert.Equal(i >= full, g.Window(i) > 0);
        }
        var single = KvCacheGroups.For(new int[22]);   // a model without windows: the single-table layout
        Assert.Equal(1, single.GroupCount);
        Assert.Equal(22, single.LayersPerGroup);
        Assert.All(Enumerable.Range(0, 22), l => Assert.Equal(l, single.SlotOf(l)));
    }

    [Fact]
    public void CapacityIsWhatIsLeftBesideTheWindows()
    {
        var g = KvCacheGroups.For(Gemma3(6, 16));   // 1 full group, 5 windowed groups of 1 layer; window 16 = 2 blocks of 16
        Assert.Equal(2, KvCacheGroups.WindowBlocks(16, 16));
        Assert.Equal(6 * 2, g.BlocksFor(17, 16));            // within the window: 2 blocks in every group
        Assert.Equal(63 + 5 * 2, g.BlocksFor(1000, 16));     // past it: the full group 63, each windowed group 2
        // 100 blocks: the windows take 5 × 2, the full group the other 90 → 90 blocks of 16 tokens
        Assert.Equal(90 * 16, g.MaxTokens(100, 16));
        Assert.True(g.BlocksFor(90 * 16, 16) <= 100 && g.BlocksFor(90 * 16 + 1, 16) > 100);
        // below the window every group grows alike
        Assert.Equal(16, g.MaxTokens(6, 16));
        Assert.Equal(100 * 16, KvCacheGroups.Single(6).MaxTokens(100, 16));
    }

    [Theory]
    [InlineData(1, 16, 200, 8, 16, false)]
    [InlineData(2, 8, 90, 4, 20, false)]     // tiny cache: constant preemption; window not a multiple of the block size
    [InlineData(3, 16, 200, 8, 16, true)]    // prefix caching: shared blocks, hits that need the window's blocks
    [InlineData(4, 8, 120, 6, 9, true)]
    public void RandomOperationsKeepWindowsLiveAndAccountEveryBlock(int seed, int blockSize, int blocks, int maxSeqs, int window, bool caching)
    {
        var groups = KvCacheGroups.For(Gemma3(6, window));
        using var cache = new PagedKvCache(6, 1, 4, blockSize, blocks, KvFormat.Of(KvDataType.F32), KvFormat.Of(KvDataType.F32), groups);
        var bm = new BlockManager(cache, prefixCaching: caching);
        var sched = new Scheduler(bm, maxSeqs, maxNumBatchedTokens: 40, SchedulingMode.Continuous);
        int capacity = (int)Math.Min(bm.CapacityTokens, 400);
        Assert.True(capacity > 60);
        int hits = 0;
        var (finished, _) = new RandomSchedulerWorkload
        {
            Operations = 1500,
            CapacityTokens = capacity,
            MaxPromptTokens = 120,
            MaxExtraTokens = 60,
            FinishOneIn = 25,
            // few distinct prompt heads, so that prefix caching has something to find
            Prompt = (length, rng) =>
            {
                int head = rng.Next(3);
                return [.. Enumerable.Range(0, length).Select(i => i < 40 ? head * 7 + i % 5 : rng.Next(50))];
            },
            CheckPlan = plan =>
            {
                foreach (var c in plan)
                {
                    var s = c.Sequence;
                    Assert.Equal(groups.GroupCount, s.Tables.Length);
                    if (c.Start > 0 && s.CachedPromptTokens > 0) hits++;
                    for (int g = 0; g < groups.GroupCount; g++)
                    {
                        var t = s.Tables[g];
                        Assert.True(t.Count * blockSize >= c.Start + c.Count, "a scheduled token has no KV slot");
                        // the chunk's first token sees from Start − window + 1: that block must still be live
                        int firstSeen = groups.Window(g) == 0 ? 0 : Math.Max(0, c.Start - groups.Window(g) + 1);
                        Assert.True(t.FirstLive * blockSize <= firstSeen, $"group {g}: blocks before {t.FirstLive} were dropped, token {c.Start} sees from {firstSeen}");
                    }
                }
            },
            CheckInvariants = live => AssertAccounted(bm, groups, live, blocks, caching),
        }.Run(new Random(seed), sched);
        Assert.Equal(0, bm.UsedBlocks);
        Assert.Equal(blocks, bm.FreeBlocks);
        Assert.True(finished > 0);
        if (caching) Assert.True(hits > 0, "no prefix-cache hit in the whole run");
    }

    /// <summary>Blocks in use are exactly those the live sequences' tables hold (shared only through the prefix cache,
    /// with matching reference counts); a windowed table holds at most its window's blocks between steps, and a
    /// full-attention table never drops anything.</summary>
    private static void AssertAccounted(BlockManager bm, KvCacheGroups groups, List<Sequence> live, int blocks, bool caching)
    {
        var held = new List<int>();
        foreach (var s in live)
            for (int g = 0; g < s.Tables.Length; g++)
            {
                var t = s.Tables[g];
                for (int i = 0; i < t.FirstLive; i++) Assert.Equal(-1, t[i]);
                for (int i = t.FirstLive; i < t.Count; i++) held.Add(t[i]);
                if (groups.Window(g) == 0) Assert.Equal(0, t.FirstLive);
                else Assert.True(t.LiveCount <= KvCacheGroups.WindowBlocks(groups.Window(g), bm.BlockSize),
                    $"group {g} holds {t.LiveCount} blocks for {s.ComputedTokens} computed tokens");
            }
        Assert.All(held, b => Assert.InRange(b, 0, blocks - 1));
        if (!caching) Assert.Equal(held.Count, held.Distinct().Count());
        Assert.Equal(bm.UsedBlocks, held.Distinct().Count());
        foreach (var grp in held.GroupBy(b => b)) Assert.Equal(grp.Count(), bm.RefCount(grp.Key));
    }

    [Theory]
    [InlineData(16, 16)]
    [InlineData(16, 512)]
    [InlineData(8, 20)]
    public void ALongSequenceHoldsOnlyItsWindowInWindowedLayers(int blockSize, int window)
    {
        const int Length = 4096;
        var groups = KvCacheGroups.For(Gemma3(6, window));
        int blocks = (int)groups.BlocksFor(Length, blockSize) + groups.WindowGroupCount * BlockTable.BlocksFor(64, blockSize);
        using var cache = new PagedKvCache(6, 1, 4, blockSize, blocks, KvFormat.Of(KvDataType.F32), KvFormat.Of(KvDataType.F32), groups);
        var bm = new BlockManager(cache);
        var sched = new Scheduler(bm, 1, maxNumBatchedTokens: 64, SchedulingMode.Continuous);
        var s = new Sequence(1, new int[1000], Length, 0, 1);   // 1000-token prompt in chunks of 64, then decode
        sched.Add(s);
        int wb = KvCacheGroups.WindowBlocks(window, blockSize);
        while (s.Length < Length)
        {
            var plan = sched.Schedule();
            Assert.Single(plan);
            sched.Complete(plan);
            if (plan[0].SamplesNext) s.Append(1);
            // between steps: the full group holds every computed position, each windowed group the window's blocks
            int full = BlockTable.BlocksFor(s.ComputedTokens, blockSize);
            long bound = groups.FullGroupCount * (long)(full + 1) + groups.WindowGroupCount * (long)wb;
            Assert.True(bm.UsedBlocks <= bound, $"{bm.UsedBlocks} blocks held at {s.ComputedTokens} tokens, bound {bound}");
            Assert.True(bm.UsedBlocks >= groups.FullGroupCount * full, "the full-attention group lost a block");
        }
        Assert.Equal(0, sched.Preemptions);
        // what full attention would hold for the same sequence: every layer, every position
        long fullBytes = (long)BlockTable.BlocksFor(Length, blockSize) * KvCacheGroups.Single(6).LayerCount;
        long heldLayerBlocks = (long)bm.UsedBlocks * groups.LayersPerGroup;
        if (window < Length / 4) Assert.True(heldLayerBlocks * 3 < fullBytes, $"{heldLayerBlocks} layer-blocks held vs {fullBytes} without freeing");
        sched.Remove(s);
        Assert.Equal(0, bm.UsedBlocks);
    }
}
