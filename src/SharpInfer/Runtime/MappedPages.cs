namespace SharpInfer.Runtime;

/// <summary>Drops this process's pages of a read-only file mapping (madvise MADV_DONTNEED on Linux): the bytes stay
/// valid (a later read faults them back in from the page cache) but stop counting in the process's resident memory.
/// Used after a matrix was packed at load, when its mapped rows are no longer read by the matmuls.</summary>
internal static unsafe class MappedPages
{
    private const int MadvDontNeed = 4;
    private const long PageSize = 4096;

    /// <summary>Releases the whole pages inside [p, p + bytes); a no-op elsewhere than Linux.</summary>
    public static void Release(byte* p, long bytes)
    {
        long start = ((long)p + PageSize - 1) & ~(PageSize - 1), end = ((long)p + bytes) & ~(PageSize - 1);
        if (end > start) HugePages.Advise((void*)start, end - start, MadvDontNeed);
    }
}
