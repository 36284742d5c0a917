using SharpInfer.Models;
using SharpInfer.Tensors;

namespace SharpInfer.Quantization.Gptq;

/// <summary>The Hessian of one matrix input: H = Σ xᵀx over the calibration rows (upper triangle filled while
/// collecting; <see cref="Symmetric"/> copies it down), the row count, and the tensors that read this input.</summary>
internal sealed class HessianEntry(int n)
{
    public readonly int N = n;
    /// <summary>Released (null) once GPTQ has turned it into its inverse factor.</summary>
    public float[]? H = new float[(long)n * n];
    public long Rows;
    public readonly List<string> Tensors = [];
    internal long LastCall = -2;
    internal nint LastInput;

    /// <summary>Mean squared activation per column (diag(H) / rows): llama-imatrix's importance weights.</summary>
    public float[] Importance()
    {
        var h = H ?? throw new InvalidOperationException("the Hessian was already released");
        var d = new float[N];
        for (int i = 0; i < N; i++) d[i] = Rows > 0 ? h[(long)i * N + i] / Rows : 0f;
        return d;
    }

    /// <summary>Fills the lower triangle from the upper one.</summary>
    public void Symmetric()
    {
        var h = H ?? throw new InvalidOperationException("the Hessian was already released");
        for (int i = 0; i < N; i++)
            for (int j = 0; j < i; j++) h[(long)i * N + j] = h[(long)j * N + i];
    }
}

/// <summary>
/// Collects H = XᵀX for the input of every dense <c>blk.*</c> weight product while the model runs over calibration text
/// (the <see cref="IActivationObserver"/> seam <c>sharpinfer imatrix</c> uses). Products that read the same input one
/// after the other (Q, K and V of a layer; gate and up) share one Hessian, so it is collected once. Expert tensors are
/// not collected (GPTQ does not cover them; they fall back to importance-weighted rounding). The accumulation runs
/// over the rows in groups of 32 and over H's rows in parallel; every element's sum has a fixed order, so the result
/// does not depend on the thread count. <c>include</c> limits the collection to the tensor names it accepts.
/// </summary>
internal sealed unsafe class HessianCollector(int threads, Func<string, bool>? include = null) : IActivationObserver
{
    private const int RowGroup = 32;
    private readonly Dictionary<WeightMatrix, HessianEntry?> _byMatrix = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, HessianEntry> _byName = new(StringComparer.Ordinal);
    private long _calls;
    private nint _lastInput;
    private HessianEntry? _lastEntry;

    /// <summary>The Hessian of each collected tensor, by tensor name (tensors sharing an input share the entry).</summary>
    public IReadOnlyDictionary<string, HessianEntry> ByTensor => _byName;

    public void MatMulInput(WeightMatrix weight, float* input, int rows)
    {
        long call = _calls++;
        var e = Find(weight, input);
        _lastInput = (nint)input;
        _lastEntry = e;
        if (e == null) return;
        bool repeat = e.LastCall == call - 1 && e.LastInput == (nint)input;
        e.LastCall = call;
        e.LastInput = (nint)input;
        if (repeat) return;
        Accumulate(e, input, rows);
    }

    public void ExpertInput(WeightMatrix weight, int expert, int expertCount, float* input, int rows)
    {
        _calls++;
        _lastEntry = null;
    }

    private HessianEntry? Find(WeightMatrix weight, float* input)
    {
        if (_byMatrix.TryGetValue(weight, out var e)) return e;
        int bracket = weight.Name.IndexOf('[');
        string name = bracket < 0 ? weight.Name : weight.Name[..bracket];
        if (!name.StartsWith("blk.", StringComparison.Ordinal) || (include != null && !include(name))) e = null;
        else if (!_byName.TryGetValue(name, out e))
        {
            // Seen right after another product on the same input (K after Q, up after gate): the same Hessian.
            e = _lastEntry != null && _lastInput == (nint)input && _lastEntry.N == weight.Cols ? _lastEntry : new HessianEntry(weight.Cols);
            e.Tensors.Add(name);
            _byName[name] = e;
        }
        _byMatrix[weight] = e;
        return e;
    }

    private void Accumulate(HessianEntry e, float* x, int rows)
    {
        int n = e.N;
        var h = e.H!;
        nint xp = (nint)x;
        for (int g0 = 0; g0 < rows; g0 += RowGroup)
        {
            int g1 = Math.Min(rows, g0 + RowGroup);
            Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = threads }, a =>
            {
                var hRow = h.AsSpan((int)((long)a * n + a), n - a);
                for (int r = g0; r < g1; r++)
                {
                    float* row = (float*)xp + (long)r * n;
                    float xa = row[a];
                    if (xa != 0f) InverseHessian.Axpy(hRow, xa, new ReadOnlySpan<float>(row + a, n - a));
                }
            });
        }
        e.Rows += rows;
    }
}
