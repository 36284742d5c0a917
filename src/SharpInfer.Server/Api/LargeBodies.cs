namespace SharpInfer.Server.Api;

/// <summary>
/// Request bodies of a megabyte or more: at most <see cref="MaxConcurrent"/> of them are read and parsed at a time
/// (the others wait, their bytes held back by TCP flow control rather than in memory), and after the last of a burst
/// is answered the heap is compacted once and its free memory handed back to the OS. Without this, four 15 MiB
/// prompts at once peaked at 2.6 GB and the process kept that memory long after answering them.
/// Process-wide: memory is a property of the process, not of one server instance.
/// </summary>
internal static class LargeBodies
{
    /// <summary>A body at least this large is "large".</summary>
    public const long Threshold = 1L << 20;
    /// <summary>Large bodies decoded at once.</summary>
    public const int MaxConcurrent = 2;
    /// <summary>How long the process must have seen no large body in flight before it compacts the heap: a burst is
    /// collected once, at its end, not once per request.</summary>
    public static readonly TimeSpan QuietPeriod = TimeSpan.FromSeconds(1);

    private static readonly SemaphoreSlim Slots = new(MaxConcurrent, MaxConcurrent);
    private static long _lastActivity;
    private static int _collectScheduled;
    private static long _collections;

    /// <summary>Compactions done so far (for tests and diagnostics).</summary>
    public static long Collections => Interlocked.Read(ref _collections);

    /// <summary>Waits for a decoding slot; dispose the result to free it.</summary>
    public static async Task<IDisposable> EnterAsync(CancellationToken ct)
    {
        await Slots.WaitAsync(ct).ConfigureAwait(false);
        Touch();
        return new Slot();
    }

    /// <summary>Slots free right now (tests).</summary>
    internal static int FreeSlots => Slots.CurrentCount;

    /// <summary>A large body was taken in or answered: once none has been for <see cref="QuietPeriod"/>, the heap is
    /// compacted (large-object heap included) and the freed memory returned to the OS. A debounce, not a count of
    /// requests in flight, so a request whose completion is never reported cannot block the collection forever.</summary>
    public static void Touch()
    {
        Volatile.Write(ref _lastActivity, Environment.TickCount64);
        if (Interlocked.Exchange(ref _collectScheduled, 1) == 1) return;
        _ = Task.Run(CollectWhenQuietAsync);
    }

    private static async Task CollectWhenQuietAsync()
    {
        // a production-side delay, not a test wait: it only decides when the collection runs
        long quietMs = (long)QuietPeriod.TotalMilliseconds;
        long idle;
        while ((idle = Environment.TickCount64 - Volatile.Read(ref _lastActivity)) < quietMs)
            await Task.Delay(TimeSpan.FromMilliseconds(quietMs - idle)).ConfigureAwait(false);
        Volatile.Write(ref _collectScheduled, 0);
        long seen = Volatile.Read(ref _lastActivity);
        Collect();
        // The JSON parser's index of a large body is a buffer rented from the shared array pool, which keeps it after
        // use and releases it only in a full collection at least a minute after an earlier one noted it idle: so
        // collect once more after that minute, unless a new large body came (it schedules its own collections).
        await Task.Delay(PoolTrimDelay).ConfigureAwait(false);
        if (Volatile.Read(ref _lastActivity) == seen) Collect();
    }

    /// <summary>The shared array pool trims buffers idle for 60 s (at low memory pressure); a little more than that.</summary>
    private static readonly TimeSpan PoolTrimDelay = TimeSpan.FromSeconds(65);

    private static void Collect()
    {
        // Aggressive: compacts every generation and the LOH, and decommits the freed memory
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        Interlocked.Increment(ref _collections);
    }

    private sealed class Slot : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) Slots.Release();
        }
    }
}
