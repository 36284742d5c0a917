namespace SharpInfer.Runtime;

/// <summary>Memory figures of this machine and process (Linux /proc, with portable fallbacks).</summary>
internal static class MemoryInfo
{
    /// <summary>Memory available for new allocations without swapping (MemAvailable).</summary>
    public static long AvailableBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        var gc = GC.GetGCMemoryInfo();
        return Math.Max(0, gc.TotalAvailableMemoryBytes - gc.MemoryLoadBytes);
    }

    /// <summary>Peak resident set size of this process (VmHWM), or the current working set where /proc is missing.</summary>
    public static long PeakRssBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return Environment.WorkingSet;
    }
}
