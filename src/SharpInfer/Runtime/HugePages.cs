using System.Runtime.InteropServices;

namespace SharpInfer.Runtime;

/// <summary>
/// Large anonymous buffers (the KV cache arenas) are allocated 2 MiB-aligned and, on Linux, marked for transparent
/// huge pages (madvise MADV_HUGEPAGE; most distributions enable THP only on request). Attention reads each
/// sequence's blocks scattered over the arena, one 4 KiB-sized run per block and head: with 4 KiB pages that is a
/// TLB miss per run and the hardware prefetchers stop at every page; 2 MiB pages remove both.
/// </summary>
internal static unsafe class HugePages
{
    public const long Size = 2L << 20;
    private const int MadvHugePage = 14;

    /// <summary>Allocates <paramref name="bytes"/> (uninitialized), huge-page-aligned when it is at least one huge page.</summary>
    public static byte* Alloc(long bytes)
    {
        if (bytes < Size) return (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(1, bytes), 64);
        long rounded = (bytes + Size - 1) & ~(Size - 1);
        var p = (byte*)NativeMemory.AlignedAlloc((nuint)rounded, (nuint)Size);
        Advise(p, rounded, MadvHugePage);
        return p;
    }

    /// <summary>Frees what <see cref="Alloc"/> returned.</summary>
    public static void Free(byte* p) => NativeMemory.AlignedFree(p);

    /// <summary>madvise on Linux; a no-op elsewhere or with a libc without it (the advice is only an optimization).</summary>
    internal static void Advise(void* p, long bytes, int advice)
    {
        if (!OperatingSystem.IsLinux()) return;
        try { _ = madvise(p, (nuint)bytes, advice); }
        catch (DllNotFoundException) { }
        catch (EntryPointNotFoundException) { }
    }

    [DllImport("libc", EntryPoint = "madvise")]
    private static extern int madvise(void* addr, nuint length, int advice);
}
