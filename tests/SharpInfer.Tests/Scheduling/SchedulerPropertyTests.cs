using SharpInfer.KvCache;
using SharpInfer.Scheduling;

namespace SharpInfer.Tests.Scheduling;

/// <summary>Random add / abort / step / finish sequences against the scheduler and block manager (no model): the
/// invariants hold after every operation and everything is freed at the end.</summary>
public class SchedulerPropertyTests
{
    [Theory]
    [InlineData(1, 16, 64, 8, SchedulingMode.Continuous)]
    [InlineData(2, 8, 24, 4, SchedulingMode.Continuous)]     // tiny cache: constant preemption
    [InlineData(3, 32, 40, 16, SchedulingMode.Continuous)]
    [InlineData(4, 16, 64, 8, SchedulingMode.Static)]
    public void RandomOperationsKeepInvariantsAndFreeEverything(int seed, int blockSize, int blocks, int maxSeqs, SchedulingMode mode)
    {
        using var cache = new PagedKvCache(1, 1, 4, blockSize, blocks, KvDataType.F32);
        var bm = new BlockManager(cache);
        var sched = new Scheduler(bm, maxSeqs, maxNumBatchedTokens: 48, mode);
        var (finished, aborted) = new RandomSchedulerWorkload
        {
            Operations = 1000,
            CapacityTokens = blocks * blockSize,
            MaxPromptTokens = 100,
            MaxExtraTokens = 40,
            FinishOneIn = 20,
            Prompt = (length, _) => [.. Enumerable.Range(0, length).Select(i => i % 50)],
            CheckPlan = plan =>
            {
                int tokens = plan.Sum(c => c.Count);
                Assert.True(tokens <= 48);
                Assert.True(plan.Count <= maxSeqs);
                Assert.Equal(plan.Count, plan.Select(c => c.Sequence).Distinct().Count());
                foreach (var c in plan)
                {
                    Assert.Equal(SequenceStatus.Running, c.Sequence.Status);
                    Assert.Equal(c.Sequence.ComputedTokens, c.Start);
                    Assert.True(c.Sequence.Blocks.Count * blockSize >= c.Start + c.Count, "a scheduled token has no KV slot");
                }
            },
            CheckInvariants = live =>
            {
                // blocks in use are exactly the blocks the live sequences hold, none shared, none out of range
                var held = live.SelectMany(s => s.Blocks.Blocks.ToArray()).ToList();
                Assert.Equal(held.Count, held.Distinct().Count());
                Assert.Equal(bm.UsedBlocks, held.Count);
                Assert.All(held, b => Assert.InRange(b, 0, blocks - 1));
                Assert.Equal(live.Count, sched.RunningCount + sched.WaitingCount);
                Assert.True(sched.RunningCount <= maxSeqs);
            },
        }.Run(new Random(seed), sched);
        Assert.Equal(0, bm.UsedBlocks);
        Assert.Equal(blocks, bm.FreeBlocks);
        Assert.True(finished > 0 && aborted > 0);
        if (blocks * blockSize < 1000) Assert.True(sched.Preemptions > 0, "the small cache should have forced preemption");
    }

    [Fact]
    public void DecodesComeFirstThenPrefillChunksWithinBudget()
    {
        using var cache = new PagedKvCache(1, 1, 4, 16, 64, KvDataType.F32);
        var sched = new Scheduler(new BlockManager(cache), 8, maxNumBatchedTokens: 32, SchedulingMode.Continuous);
        var a = new Sequence(1, new int[10], 100, 0, 1);
        sched.Add(a);
        var p1 = sched.Schedule().ToList();
        Assert.Equal(new ScheduledChunk(a, 0, 10), Assert.Single(p1));
        sched.Complete(p1);
        a.Append(5);
        var b = new Sequence(2, new int[100], 200, 0, 2);
        sched.Add(b);
        var p2 = sched.Schedule().ToList();
        Assert.Equal(2, p2.Count);
        Assert.Equal(new ScheduledChunk(a, 10, 1), p2[0]);   // the decode first
        Assert.Equal(new ScheduledChunk(b, 0, 31), p2[1]);   // then a prompt chunk filling the budget
        Assert.False(p2[1].SamplesNext);
    }

    [Fact]
    public void StaticModeAdmitsNothingUntilTheBatchFinishes()
    {
        using var cache = new PagedKvCache(1, 1, 4, 16, 64, KvDataType.F32);
        var sched = new Scheduler(new BlockManager(cache), 2, 64, SchedulingMode.Static);
        var seqs = Enumerable.Range(1, 3).Select(i => new Sequence(i, new int[4], 10, 0, i)).ToArray();
        foreach (var s in seqs) sched.Add(s);
        var p = sched.Schedule().ToList();
        Assert.Equal(2, p.Count);
        sched.Complete(p);
        sched.Remove(seqs[0]);
        seqs[1].Append(1);
        var p2 = sched.Schedule().ToList();
        Assert.Equal(seqs[1], Assert.Single(p2).Sequence);   // seqs[2] waits although a seat is free
        sched.Complete(p2);
        sched.Remove(seqs[1]);
        Assert.Equal(seqs[2], Assert.Single(sched.Schedule()).Sequence);
    }

    [Fact]
    public void StaticModeFillsTheBatchAcrossPrefillSteps()
    {
        // a budget of 8 tokens holds one 6-token prompt per step: the batch of 3 still forms over three steps, and the
        // fourth request waits for the whole batch to finish
        using var cache = new PagedKvCache(1, 1, 4, 16, 64, KvDataType.F32);
        var sched = new Scheduler(new BlockManager(cache), 3, 8, SchedulingMode.Static);
        var seqs = Enumerable.Range(1, 4).Select(i => new Sequence(i, new int[6], 10, 0, i)).ToArray();
        foreach (var s in seqs) sched.Add(s);
        for (int step = 0; step < 6; step++)
        {
            var plan = sched.Schedule().ToList();
            sched.Complete(plan);
            foreach (var c in plan.Where(c => c.SamplesNext)) c.Sequence.Append(1);
        }
        Assert.All(seqs.Take(3), s => Assert.Equal(SequenceStatus.Running, s.Status));
        Assert.Equal(SequenceStatus.Waiting, seqs[3].Status);
        foreach (var s in seqs.Take(2)) sched.Remove(s);
        Assert.DoesNotContain(sched.Schedule(), c => c.Sequence == seqs[3]);   // seats free, batch not finished
        sched.Remove(seqs[2]);
        Assert.Equal(seqs[3], Assert.Single(sched.Schedule()).Sequence);
    }

    [Fact]
    public void PreemptsLowestPriorityNewestFirst()
    {
        using var cache = new PagedKvCache(1, 1, 4, 4, 4, KvDataType.F32);   // 16 token slots
        var sched = new Scheduler(new BlockManager(cache), 4, 64, SchedulingMode.Continuous);
        var hi = new Sequence(1, new int[4], 16, priority: 0, arrivalOrder: 1);
        var lo = new Sequence(2, new int[8], 16, priority: 1, arrivalOrder: 2);
        sched.Add(hi);
        sched.Add(lo);
        var p = sched.Schedule().ToList();
        Assert.Equal(2, p.Count);
        sched.Complete(p);
        hi.Append(1); lo.Append(1);
        // hi needs a 2nd block (slot 5), lo a 3rd (slot 9): 1 + 2 = 3 of 4 blocks, then both again...
        for (int step = 0; step < 4; step++)
        {
            var plan = sched.Schedule().ToList();
            sched.Complete(plan);
            foreach (var c in plan.Where(c => c.SamplesNext)) c.Sequence.Append(1);
        }
        Assert.True(sched.Preemptions > 0);
        Assert.Equal(SequenceStatus.Running, hi.Status);      // the high-priority one kept running
        Assert.True(lo.Preemptions > 0);
    }
}
