using SharpInfer.Runtime;
using SharpInfer.Tensors.Kernels;

namespace SharpInfer.Tensors;

/// <summary>
/// Load-time repacking (what llama.cpp's CPU "repack" buffers do): each Q8_0 matrix is copied once into the
/// interleaved layout that <see cref="LegacyQuantKernel{TF}"/>'s tiles read (groups of 16 rows on AVX-512, 8 on
/// AVX2; per 32-column block, 4-byte groups of the rows side by side and the scales as floats), so a batched step
/// multiplies straight from it instead of repacking every matrix on every call, and decode streams one
/// contiguous buffer instead of 8–16 separate rows. The copy is 6% larger than the Q8_0 rows (float scales); the
/// mapped rows stay in place for embedding lookups and for kernels at another instruction level. Q4_0-style
/// formats are not packed: their tiles take one byte per weight, twice the nibble-packed size, which would cost
/// decode more bandwidth than the batched steps gain. <c>SHARPINFER_NO_REPACK=1</c> turns packing off (like
/// llama.cpp's <c>--no-repack</c>).
/// </summary>
public sealed unsafe class WeightPacking : IDisposable
{
    private readonly List<(WeightMatrix Matrix, nint Buffer)> _packed = [];
    private readonly object _lock = new();

    /// <summary>Bytes of packed copies held.</summary>
    public long Bytes { get; private set; }

    public static bool Disabled => Environment.GetEnvironmentVariable("SHARPINFER_NO_REPACK") == "1";

    public static bool Supports(WeightMatrix w) => w.Type == GgmlType.Q8_0 && w.Cols % 32 == 0;

    /// <summary>Packs every supported matrix not packed yet, for the tiles of <paramref name="level"/>. Safe to call
    /// again (a no-op for packed matrices) and from several threads.</summary>
    public void Pack(IEnumerable<WeightMatrix> matrices, IsaLevel level)
    {
        int rows = LegacyQuantKernel<Q8_0Format>.PackRowsFor(level);
        if (rows == 0 || Disabled) return;
        lock (_lock)
        {
            var todo = matrices.Distinct().Where(m => Supports(m) && m.Packed == null).ToArray();
            var buffers = new nint[todo.Length];
            var chunks = new List<(int Matrix, int G0, int G1)>();
            for (int i = 0; i < todo.Length; i++)
            {
                long bytes = LegacyQuantKernel<Q8_0Format>.PackedBytes(todo[i].Rows, todo[i].Cols, rows);
                buffers[i] = (nint)HugePages.Alloc(bytes);
                _packed.Add((todo[i], buffers[i]));
                Bytes += bytes;
                int groups = (todo[i].Rows + rows - 1) / rows;
                for (int g = 0; g < groups; g += 64) chunks.Add((i, g, Math.Min(groups, g + 64)));
            }
            // load time, once: the cores share the copying (the step loop's pool is not involved)
            Parallel.ForEach(chunks, c => LegacyQuantKernel<Q8_0Format>.Pack(todo[c.Matrix], rows, c.G0, c.G1, (byte*)buffers[c.Matrix]));
            for (int i = 0; i < todo.Length; i++) todo[i].SetPacked((byte*)buffers[i], rows);
        }
    }

    /// <summary>Detaches and frees the packed copies (the matrices fall back to their mapped rows).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var (m, buffer) in _packed)
            {
                m.SetPacked(null, 0);
                HugePages.Free((byte*)buffer);
            }
            _packed.Clear();
            Bytes = 0;
        }
    }
}
