using SharpInfer.Runtime;

namespace SharpInfer.Tests.Runtime;

public class ComputePoolTests
{
    private sealed class CountingWork : IParallelWork
    {
        public int[] Hits = [];
        public int SlowTask = -1;
        public void Execute(int task, int thread)
        {
            if (task == SlowTask) Thread.Sleep(30);   // longer than the barrier's spin phase: forces the blocking path
            Interlocked.Increment(ref Hits[task]);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void EveryTaskRunsExactlyOnceBeforeRunReturns(int threads)
    {
        using var pool = new ComputePool(threads);
        var work = new CountingWork();
        var rng = new Random(threads);
        for (int run = 0; run < 400; run++)
        {
            int n = 1 + rng.Next(40);
            work.Hits = new int[n];
            work.SlowTask = run % 25 == 0 ? rng.Next(n) : -1;
            pool.Run(work, n);
            for (int t = 0; t < n; t++) Assert.Equal(1, work.Hits[t]);
        }
    }

    private sealed class FailingWork : IParallelWork
    {
        public void Execute(int task, int thread)
        {
            if (task == 3) throw new InvalidOperationException("boom");
        }
    }

    [Fact]
    public void ExceptionsReachTheCallerAndThePoolKeepsWorking()
    {
        using var pool = new ComputePool(2);
        var e = Assert.Throws<AggregateException>(() => pool.Run(new FailingWork(), 8));
        Assert.IsType<InvalidOperationException>(e.InnerException);
        var work = new CountingWork { Hits = new int[10] };
        pool.Run(work, 10);
        Assert.All(work.Hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void WorkSplitCoversTheRangeWithoutOverlap()
    {
        foreach (var (n, tasks) in new[] { (10, 3), (100, 7), (5, 5), (1, 1), (64, 16) })
        {
            int next = 0;
            for (int t = 0; t < tasks; t++)
            {
                var (s, e) = WorkSplit.Range(n, tasks, t);
                Assert.Equal(next, s);
                Assert.True(e >= s);
                next = e;
            }
            Assert.Equal(n, next);
        }
    }
}
