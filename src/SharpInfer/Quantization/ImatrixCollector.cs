using SharpInfer.Models;
using SharpInfer.Tensors;

namespace SharpInfer.Quantization;

/// <summary>
/// Accumulates what llama-imatrix's collect_imatrix accumulates: per weight named <c>blk.*</c>, per input column the sum
/// of squared activations (in float, row after row) and the number of rows; for expert tensors per expert. Dense
/// products with fewer than 16 rows are skipped, as llama-imatrix skips them (expert products never are). The views
/// of one fused tensor (e.g. Q, K and V of attn_qkv, seen one after the other on the same input) count once. Each
/// matrix's accumulator is found by reference after its first sighting, so collecting allocates nothing per token.
/// </summary>
internal sealed unsafe class ImatrixCollector : IActivationObserver
{
    /// <summary>llama-imatrix ignores dense products over fewer rows than this.</summary>
    public const int MinDenseRows = 16;

    private sealed class Accumulator(int cols, int experts)
    {
        public readonly int Cols = cols;
        public readonly float[] Sums = new float[cols * experts];
        public readonly long[] Counts = new long[experts];
        public long LastCall = -2;
        public nint LastInput;
    }

    private readonly Dictionary<WeightMatrix, Accumulator?> _byMatrix = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, Accumulator> _byName = new(StringComparer.Ordinal);
    private long _calls;

    public void MatMulInput(WeightMatrix weight, float* input, int rows)
    {
        long call = _calls++;
        if (rows < MinDenseRows) return;
        var a = Find(weight, 1);
        if (a == null) return;
        // a fused tensor's next view on the same rows, right after the previous one: already counted
        bool repeat = a.LastCall == call - 1 && a.LastInput == (nint)input;
        a.LastCall = call;
        a.LastInput = (nint)input;
        if (repeat) return;
        Accumulate(a.Sums.AsSpan(0, a.Cols), input, rows, a.Cols);
        a.Counts[0] += rows;
    }

    public void ExpertInput(WeightMatrix weight, int expert, int expertCount, float* input, int rows)
    {
        _calls++;
        var a = Find(weight, expertCount);
        if (a == null) return;
        Accumulate(a.Sums.AsSpan(expert * a.Cols, a.Cols), input, rows, a.Cols);
        a.Counts[expert] += rows;
    }

    private static void Accumulate(Span<float> sums, float* x, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            float* row = x + (long)r * cols;
            for (int j = 0; j < cols; j++) sums[j] += row[j] * row[j];
        }
    }

    /// <summary>The accumulator of the tensor this matrix is (a view of), or null for tensors llama-imatrix does not
    /// collect (output.weight without --process-output).</summary>
    private Accumulator? Find(WeightMatrix weight, int experts)
    {
        if (_byMatrix.TryGetValue(weight, out var a)) return a;
        int bracket = weight.Name.IndexOf('[');
        string name = bracket < 0 ? weight.Name : weight.Name[..bracket];
        if (!name.StartsWith("blk.", StringComparison.Ordinal)) a = null;
        else if (!_byName.TryGetValue(name, out a))
        {
            a = new Accumulator(weight.Cols, experts);
            _byName[name] = a;
        }
        else if (a.Cols != weight.Cols || a.Counts.Length != experts)
            throw new InvalidOperationException($"inconsistent shapes for {name}: {a.Cols}×{a.Counts.Length} vs {weight.Cols}×{experts}");
        _byMatrix[weight] = a;
        return a;
    }

    /// <summary>The collected matrix in llama-imatrix's form: chunk_count = the largest count / chunk size.</summary>
    public ImportanceMatrix ToImportanceMatrix(IReadOnlyList<string> datasets, int chunkSize)
    {
        var entries = new SortedDictionary<string, ImatrixEntry>(StringComparer.Ordinal);
        long maxCount = 0;
        foreach (var (name, a) in _byName)
        {
            entries[name] = new ImatrixEntry((float[])a.Sums.Clone(), (long[])a.Counts.Clone());
            foreach (long c in a.Counts) maxCount = Math.Max(maxCount, c);
        }
        return new ImportanceMatrix
        {
            Entries = entries,
            Datasets = datasets.ToList(),
            ChunkCount = chunkSize > 0 ? (int)(maxCount / chunkSize) : 0,
            ChunkSize = chunkSize,
        };
    }
}
