using SharpInfer.Runtime;
using SharpInfer.Tensors.Kernels;

namespace SharpInfer.Tensors;

/// <summary>
/// Load-time repacking (what llama.cpp's CPU "repack" buffers do), into layouts the kernels read without per-call
/// unpacking. The mapped rows stay in place for embedding lookups and for kernels at another instruction level.
/// <list type="bullet">
/// <item>Q8_0: copied once into the interleaved layout that <see cref="LegacyQuantKernel{TF}"/>'s tiles read (groups of
/// 16 rows on AVX-512, 8 on AVX2; per 32-column block, 4-byte groups of the rows side by side and the scales as
/// floats), so a batched step multiplies straight from it instead of repacking every matrix on every call, and decode
/// streams one contiguous buffer instead of 8–16 separate rows. The copy is 6% larger than the Q8_0 rows (float
/// scales).</item>
/// <item>Q4_K: on the AVX2 and AVX-512 levels, groups of 8 rows with their code dwords interleaved and the scales, mins and
/// halves of the 8 rows side by side (<see cref="Q4_KInterleaved"/>): decode computes a row per vector lane, prefill
/// unpacks a group per call into the rows below. On the portable and scalar levels each super-block is rewritten as
/// <see cref="Q4_KPackedFormat"/> (scales and mins pre-expanded to bytes, nibbles ordered for one-mask unpacking of
/// 64 elements), rows kept in order (<see cref="WeightMatrix.PackRows"/> = 1). Both 148 instead of 144 bytes per 256
/// weights.</item>
/// <item>Q6_K (AVX2 and AVX-512 levels): groups of 8 rows with all their block bytes transposed by dwords
/// (<see cref="Q6_KInterleaved"/>), exactly the rows' size. Q5_K (the same levels): Q4_K's interleaved layout plus
/// the fifth bits (<see cref="Q5_KInterleaved"/>), 180 instead of 176 bytes per row-super-block.</item>
/// <item>Q4_0, Q4_1, IQ4_NL, MXFP4: groups of 8 rows with their nibble bytes interleaved in dwords and the block heads
/// side by side, still 4 bits a weight and exactly as many bytes as the rows (LegacyQuantKernel.NibblePacked.cs): decode
/// reads one contiguous stream with a row per vector lane, prefill unpacks it with two operations a vector.</item>
/// </list>
/// <c>SHARPINFER_NO_REPACK=1</c> turns packing off (like llama.cpp's <c>--no-repack</c>).
/// </summary>
internal sealed unsafe class WeightPacking : IDisposable
{
    private readonly List<WeightMatrix> _packed = [];
    private readonly List<nint> _arenas = [];
    private readonly object _lock = new();

    /// <summary>Bytes of packed copies held (each matrix's copy starts on a 4 KiB boundary).</summary>
    public long Bytes { get; private set; }

    public static bool Disabled => Environment.GetEnvironmentVariable("SHARPINFER_NO_REPACK") == "1";

    public static bool Supports(WeightMatrix w) =>
        (w.Type == GgmlType.Q8_0 && w.Cols % 32 == 0) || (w.Type is GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K && w.Cols % 256 == 0) || (IsNibbleFormat(w.Type) && w.Cols % 32 == 0);

    /// <summary>The 4-bit formats packed as nibbles (see LegacyQuantKernel.NibblePacked.cs).</summary>
    private static bool IsNibbleFormat(GgmlType t) => t is GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.IQ4_NL or GgmlType.MXFP4;

    /// <summary>Rows per packed group of <paramref name="w"/> at <paramref name="level"/> (0: no packed layout there).
    /// The nibble and grouped K-quant layouts serve every level with vector tiles (the K-quant groups' 256-bit decode
    /// kernel beat the 512-bit tiles on the older layouts on Zen 5 too: Q4_K_M tg128 1.24–1.28×, docs/benchmarks.md);
    /// the scalar and portable paths read the mapped rows (Q4_K: its packed rows).</summary>
    public static int PackRowsFor(WeightMatrix w, IsaLevel level) =>
        !Supports(w) ? 0
        : w.Type == GgmlType.Q4_K ? (HasVectorTiles(level) ? KQuantGroups.GroupRows : 1)
        : w.Type is GgmlType.Q5_K or GgmlType.Q6_K ? (HasVectorTiles(level) ? KQuantGroups.GroupRows : 0)
        : IsNibbleFormat(w.Type) ? (HasVectorTiles(level) ? LegacyQuantKernel<Q4_0Format>.NibbleGroupRows : 0)
        : LegacyQuantKernel<Q8_0Format>.PackRowsFor(level);

    /// <summary>The level has the int8 vector tiles (AVX2 or AVX-512): the one condition every interleaved layout needs.</summary>
    private static bool HasVectorTiles(IsaLevel level) => LegacyQuantKernel<Q8_0Format>.PackRowsFor(level) > 0;

    /// <summary>Bytes of the packed copy of <paramref name="w"/> with <paramref name="packRows"/>-row groups.</summary>
    public static long PackedBytes(WeightMatrix w, int packRows) => w.Type switch
    {
        GgmlType.Q4_K => packRows == KQuantGroups.GroupRows ? KQuantGroups.PackedBytes<Q4_KInterleaved>(w.Rows, w.Cols) : (long)w.Rows * Q4_KPackedRowBytes(w.Cols),
        GgmlType.Q5_K => KQuantGroups.PackedBytes<Q5_KInterleaved>(w.Rows, w.Cols),
        GgmlType.Q6_K => KQuantGroups.PackedBytes<Q6_KInterleaved>(w.Rows, w.Cols),
        GgmlType.Q4_0 => LegacyQuantKernel<Q4_0Format>.NibblePackedBytes(w.Rows, w.Cols),
        GgmlType.Q4_1 => LegacyQuantKernel<Q4_1Format>.NibblePackedBytes(w.Rows, w.Cols),
        GgmlType.IQ4_NL => LegacyQuantKernel<IQ4_NLFormat>.NibblePackedBytes(w.Rows, w.Cols),
        GgmlType.MXFP4 => LegacyQuantKernel<MXFP4Format>.NibblePackedBytes(w.Rows, w.Cols),
        _ => LegacyQuantKernel<Q8_0Format>.PackedBytes(w.Rows, w.Cols, packRows),
    };

    /// <summary>Row stride of a packed Q4_K matrix.</summary>
    public static long Q4_KPackedRowBytes(int cols) => (long)(cols / 256) * Q4_KPackedFormat.Size;

    /// <summary>Copies row <paramref name="r"/> in the file's block layout from <paramref name="w"/>'s packed copy into
    /// <paramref name="dst"/> (<see cref="WeightMatrix.RowBytes"/> bytes); false where the layout has no such copy-back.</summary>
    public static bool TryCopyRow(WeightMatrix w, int r, byte* dst)
    {
        if (w.Packed == null) return false;
        if (w.Type == GgmlType.Q8_0) { LegacyQuantKernel<Q8_0Format>.CopyRowFromPacked(w, r, dst); return true; }
        if (w.Type == GgmlType.Q4_K && w.PackRows == KQuantGroups.GroupRows) { Q4_KInterleaved.CopyRow(w, r, dst); return true; }
        if (w.Type == GgmlType.Q5_K) { Q5_KInterleaved.CopyRow(w, r, dst); return true; }
        if (w.Type == GgmlType.Q6_K) { Q6_KInterleaved.CopyRow(w, r, dst); return true; }
        if (w.PackRows != LegacyQuantKernel<Q4_0Format>.NibbleGroupRows) return false;
        switch (w.Type)
        {
            case GgmlType.Q4_0: LegacyQuantKernel<Q4_0Format>.CopyRowFromNibbles(w, r, dst); return true;
            case GgmlType.Q4_1: LegacyQuantKernel<Q4_1Format>.CopyRowFromNibbles(w, r, dst); return true;
            case GgmlType.IQ4_NL: LegacyQuantKernel<IQ4_NLFormat>.CopyRowFromNibbles(w, r, dst); return true;
            case GgmlType.MXFP4: LegacyQuantKernel<MXFP4Format>.CopyRowFromNibbles(w, r, dst); return true;
            default: return false;
        }
    }

    /// <summary>Packs groups g0..g1 of <paramref name="m"/> into its copy at <paramref name="dst"/>.</summary>
    private static void PackGroups(WeightMatrix m, int packRows, int g0, int g1, byte* dst)
    {
        switch (m.Type)
        {
            case GgmlType.Q8_0: LegacyQuantKernel<Q8_0Format>.Pack(m, packRows, g0, g1, dst); return;
            case GgmlType.Q4_0: LegacyQuantKernel<Q4_0Format>.PackNibbles(m, g0, g1, dst); return;
            case GgmlType.Q4_1: LegacyQuantKernel<Q4_1Format>.PackNibbles(m, g0, g1, dst); return;
            case GgmlType.IQ4_NL: LegacyQuantKernel<IQ4_NLFormat>.PackNibbles(m, g0, g1, dst); return;
            case GgmlType.MXFP4: LegacyQuantKernel<MXFP4Format>.PackNibbles(m, g0, g1, dst); return;
            case GgmlType.Q4_K when packRows == KQuantGroups.GroupRows: Q4_KInterleaved.Pack(m, g0, g1, dst); return;
            case GgmlType.Q5_K: Q5_KInterleaved.Pack(m, g0, g1, dst); return;
            case GgmlType.Q6_K: Q6_KInterleaved.Pack(m, g0, g1, dst); return;
        }
        int nb = m.Cols / 256;
        long rowBytes = Q4_KPackedRowBytes(m.Cols);
        for (int r = g0; r < g1; r++)
            for (int b = 0; b < nb; b++)
                Q4_KPackedFormat.PackBlock(m.Row(r) + (long)b * BlockQ4_K.Size, dst + r * rowBytes + (long)b * Q4_KPackedFormat.Size);
    }

    /// <summary>Packs every supported matrix not packed yet, for the tiles of <paramref name="level"/>. Safe to call
    /// again (a no-op for packed matrices) and from several threads. <paramref name="rowsAreFileMapped"/>: the rows
    /// live in a read-only file mapping, whose pages can be dropped from resident memory once packed.
    /// <paramref name="chunkDone"/> (done, total) is called from the packing threads as each chunk of rows is copied.</summary>
    public void Pack(IEnumerable<WeightMatrix> matrices, IsaLevel level, bool rowsAreFileMapped = false, Action<int, int>? chunkDone = null)
    {
        if (Disabled) return;
        lock (_lock)
        {
            var todo = matrices.Distinct().Where(m => m.Packed == null && PackRowsFor(m, level) > 0).ToArray();
            if (todo.Length == 0) return;
            var rowsOf = todo.Select(m => PackRowsFor(m, level)).ToArray();
            // one arena for all of them (2 MiB pages for the whole stream; a buffer per matrix would round each up)
            var offsets = new long[todo.Length + 1];
            for (int i = 0; i < todo.Length; i++)
                offsets[i + 1] = offsets[i] + ((PackedBytes(todo[i], rowsOf[i]) + 4095) & ~4095L);
            byte* arena = HugePages.Alloc(offsets[^1]);
            _arenas.Add((nint)arena);
            Bytes += offsets[^1];
            var buffers = new nint[todo.Length];
            var chunks = new List<(int Matrix, int G0, int G1)>();
            for (int i = 0; i < todo.Length; i++)
            {
                buffers[i] = (nint)(arena + offsets[i]);
                _packed.Add(todo[i]);
                int groups = (todo[i].Rows + rowsOf[i] - 1) / rowsOf[i];
                int per = rowsOf[i] == 1 ? 1024 : 64;   // chunks of 1024 rows (Q8_0: 64 groups, as before)
                for (int g = 0; g < groups; g += per) chunks.Add((i, g, Math.Min(groups, g + per)));
            }
            // load time, once: the cores share the copying (the step loop's pool is not involved)
            // The matmuls will read the copies, so each chunk's mapped rows leave resident memory as soon as they are
            // packed (peak memory stays near one copy; embedding lookups fault pages back in). Only for file
            // mappings: on anonymous memory MADV_DONTNEED would zero the pages.
            int done = 0;
            Parallel.ForEach(chunks, c =>
            {
                var m = todo[c.Matrix];
                int rows = rowsOf[c.Matrix];
                PackGroups(m, rows, c.G0, c.G1, (byte*)buffers[c.Matrix]);
                if (rowsAreFileMapped)
                {
                    int r0 = c.G0 * rows, r1 = Math.Min(m.Rows, c.G1 * rows);
                    MappedPages.Release(m.Row(r0), (r1 - r0) * m.RowBytes);
                }
                chunkDone?.Invoke(Interlocked.Increment(ref done), chunks.Count);
            });
            for (int i = 0; i < todo.Length; i++) todo[i].SetPacked((byte*)buffers[i], rowsOf[i]);
            if (rowsAreFileMapped)   // pages shared by two chunks
                foreach (var m in todo) MappedPages.Release(m.Data, m.ByteSize);
        }
    }

    /// <summary>Detaches and frees the packed copies (the matrices fall back to their mapped rows).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var m in _packed) m.SetPacked(null, 0);
            foreach (var a in _arenas) HugePages.Free((byte*)a);
            _arenas.Clear();
            _packed.Clear();
            Bytes = 0;
        }
    }
}
