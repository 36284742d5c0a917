using System.Runtime.CompilerServices;

namespace SharpInfer.Runtime;

/// <summary>Work handed to <see cref="ComputePool.Run"/>: the pool calls <see cref="Execute"/> once per task
/// index, spread over its threads. Implementations are long-lived objects whose fields are set before each
/// run, so dispatching allocates nothing.</summary>
internal interface IParallelWork
{
    void Execute(int task, int thread);
}

/// <summary>
/// A persistent pool of compute threads (the caller's thread plus <c>threads - 1</c> workers) for the forward
/// pass. A run publishes one piece of work; threads take task indices from a shared counter until none are
/// left, then meet at a barrier that spins briefly and then blocks, so back-to-back operations (hundreds per
/// token) cost a few hundred nanoseconds each and an idle pool costs no CPU. One run at a time.
/// </summary>
internal sealed class ComputePool : IDisposable
{
    /// <summary>How long a waiting thread spins before it blocks: long enough to bridge the gaps between the
    /// operations of one forward pass (microseconds), short enough not to burn a core that another thread needs
    /// when the machine is oversubscribed.</summary>
    private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 10_000;   // 100 µs

    private readonly Thread[] _workers;
    private readonly SemaphoreSlim[] _wake;   // one per worker: each run releases each worker exactly once
    private readonly ManualResetEventSlim _done = new(false);
    private IParallelWork? _work;
    private int _taskCount;
    private int _nextTask;
    private int _pending;          // threads that have not finished the current run
    private volatile int _generation;
    private volatile bool _stopping;
    private Exception? _failure;
    private readonly long[] _workerAllocated;   // bytes each worker thread has allocated, as of its last run

    public int Threads { get; }

    public ComputePool(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), "at least one thread");
        Threads = threads;
        _workers = new Thread[threads - 1];
        _workerAllocated = new long[_workers.Length];
        _wake = new SemaphoreSlim[_workers.Length];
        for (int i = 0; i < _wake.Length; i++) _wake[i] = new SemaphoreSlim(0);
        // ManualResetEventSlim creates its lock object on the first blocking wait; force that now, so the first time
        // a run blocks (an oversubscribed machine, long after warm-up) does not allocate on the token path.
        _done.Wait(1);
        for (int i = 0; i < _workers.Length; i++)
        {
            int id = i + 1;
            _workers[i] = new Thread(() => WorkerLoop(id)) { IsBackground = true, Name = $"sharpinfer-compute-{id}" };
            _workers[i].Start();
        }
    }

    /// <summary>A sensible default: one thread per core, at most 8 unless asked (llama.cpp's habit too: more
    /// threads than physical cores slows memory-bound decode).</summary>
    public static int DefaultThreads => Math.Max(1, Math.Min(Environment.ProcessorCount, 8));

    /// <summary>Runs <paramref name="work"/> for task indices 0..taskCount-1 on all threads and returns when every
    /// task is done. Exceptions from any thread are rethrown here.</summary>
    public void Run(IParallelWork work, int taskCount)
    {
        if (taskCount <= 0) return;
        if (_workers.Length == 0 || taskCount == 1)
        {
            for (int t = 0; t < taskCount; t++) work.Execute(t, 0);
            return;
        }
        _work = work;
        _taskCount = taskCount;
        _nextTask = 0;
        _failure = null;
        _pending = _workers.Length + 1;
        _generation++;                     // publishes the fields above to spinning workers
        foreach (var w in _wake) w.Release();  // and wakes blocked ones
        Work(0);
        if (Interlocked.Decrement(ref _pending) != 0) WaitDone();
        _work = null;
        if (_failure != null) throw new AggregateException("a compute task failed", _failure);
    }

    private void Work(int thread)
    {
        var work = _work!;
        int n = _taskCount;
        try
        {
            for (int t = Interlocked.Increment(ref _nextTask) - 1; t < n; t = Interlocked.Increment(ref _nextTask) - 1)
                work.Execute(t, thread);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _failure, e, null);
            Volatile.Write(ref _nextTask, int.MaxValue / 2);
        }
    }

    private void WaitDone()
    {
        long until = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
        for (int i = 0; ; i++)
        {
            if (Volatile.Read(ref _pending) == 0) return;
            Thread.SpinWait(8);
            if ((i & 31) == 31 && System.Diagnostics.Stopwatch.GetTimestamp() > until) break;
        }
        // Block. A worker may still Set() the event late for an earlier run (it decrements _pending first, and the
        // caller can see zero and start the next run before the Set lands), so a wake-up only means "look again".
        while (true)
        {
            _done.Reset();
            if (Volatile.Read(ref _pending) == 0) return;
            _done.Wait();
        }
    }

    private void WorkerLoop(int id)
    {
        int seen = 0;
        while (true)
        {
            // Spin briefly for the next run (the common case inside a forward pass), then block.
            bool woke = false;
            long until = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
            for (int i = 0; ; i++)
            {
                if (_generation != seen) { woke = true; break; }
                Thread.SpinWait(8);
                if ((i & 31) == 31 && System.Diagnostics.Stopwatch.GetTimestamp() > until) break;
            }
            // Each run releases this worker's own semaphore once, so take that permit even when spinning already saw
            // the run (a shared semaphore would let a fast worker steal a slow one's permit and deadlock the run).
            _wake[id - 1].Wait();
            if (_stopping) return;
            if (!woke && _generation == seen) continue;
            seen = _generation;
            Work(id);
            _workerAllocated[id - 1] = GC.GetAllocatedBytesForCurrentThread();
            if (Interlocked.Decrement(ref _pending) == 0) _done.Set();
        }
    }

    /// <summary>Managed bytes allocated so far by the worker threads (as of their last run) plus the calling thread:
    /// lets tests prove that the forward pass allocates nothing per token.</summary>
    public long AllocatedBytes()
    {
        long total = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < _workerAllocated.Length; i++) total += Volatile.Read(ref _workerAllocated[i]);
        return total;
    }

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        foreach (var w in _wake) w.Release();
        foreach (var w in _workers) w.Join();
        foreach (var w in _wake) w.Dispose();
        _done.Dispose();
    }
}

/// <summary>Splits <c>n</c> items into contiguous chunks for <see cref="ComputePool"/> tasks.</summary>
internal static class WorkSplit
{
    /// <summary>Number of tasks for n items: a few per thread so uneven rows balance, never chunks smaller
    /// than <paramref name="minChunk"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int TaskCount(int n, int threads, int minChunk, int tasksPerThread = 4)
    {
        int byGrain = (n + minChunk - 1) / minChunk;
        return Math.Max(1, Math.Min(byGrain, threads * tasksPerThread));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (int Start, int End) Range(int n, int tasks, int task, int align = 1)
    {
        long start = (long)n * task / tasks;
        long end = (long)n * (task + 1) / tasks;
        if (align > 1)
        {
            start = start / align * align;
            end = task == tasks - 1 ? n : end / align * align;
        }
        return ((int)start, (int)end);
    }
}
