using System.Runtime.InteropServices;
using SharpInfer.Gguf;
using SharpInfer.Quantization.Gptq;
using SharpInfer.Tensors;

namespace SharpInfer.Quantization.Awq;

/// <summary>
/// AWQ (Lin et al. 2023) as a per-input-channel scale folded into the RMSNorm before a layer's input: the matrices that
/// read the normalized input (Q, K, V after attn_norm; gate and up after ffn_norm) get W·diag(s) and the norm weight
/// gets w/s, which leaves the function unchanged before rounding (norm(x)·w/s·(W·diag(s))ᵀ = norm(x)·w·Wᵀ), while
/// the channels with large activations get more of the rounding grid. s = a^α with a the RMS activation of each channel
/// over the calibration text, normalized so that sqrt(max·min) = 1; α is searched on 0, 0.1, …, 1 per layer input to
/// minimise the output error Σ (w − ŵ)ᵀ·H·(w − ŵ) = ‖X·(W − Ŵ)ᵀ‖² of the quantized matrices (H = XᵀX from the calibration,
/// up to 128 evenly spaced rows per matrix), each quantized with its own planned type and importance weights
/// (diag(H)/rows, divided by s² because the scaled matrix sees x/s). α = 0 is importance-weighted rounding itself, so
/// the search never picks something worse on the calibration text.
/// </summary>
internal static class AwqScales
{
    private const int AlphaSteps = 10, MaxRowsPerMatrix = 128;

    /// <summary>A layer input AWQ scales: the norm that feeds it and the matrices that read it.</summary>
    internal sealed record Group(string Norm, IReadOnlyList<string> Matrices);

    /// <summary>The groups of a llama-style model: attn_norm → attn_q/k/v, ffn_norm → ffn_gate/up, where all exist.</summary>
    public static List<Group> Groups(IEnumerable<string> tensorNames)
    {
        var names = tensorNames.ToHashSet(StringComparer.Ordinal);
        var groups = new List<Group>();
        for (int layer = 0; names.Contains($"blk.{layer}.attn_norm.weight") || names.Contains($"blk.{layer}.ffn_norm.weight"); layer++)
        {
            string p = $"blk.{layer}.";
            string[] attn = [p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"], ffn = [p + "ffn_gate.weight", p + "ffn_up.weight"];
            if (names.Contains(p + "attn_norm.weight") && attn.All(names.Contains)) groups.Add(new Group(p + "attn_norm.weight", attn));
            if (names.Contains(p + "ffn_norm.weight") && ffn.All(names.Contains)) groups.Add(new Group(p + "ffn_norm.weight", ffn));
        }
        return groups;
    }

    /// <summary>The chosen scale of one group's input channels (null when the group cannot be scaled: a matrix is not
    /// F32/F16/BF16, or its input was not seen in the calibration), and the α that gave it.</summary>
    public static (float[]? Scale, float Alpha) Search(GgufFile input, Group g, Func<string, GgmlType> targetOf,
        IReadOnlyDictionary<string, HessianEntry> hessians, int threads)
    {
        if (!hessians.TryGetValue(g.Matrices[0], out var he) || he.H == null || he.Rows == 0) return (null, 0);
        int n = he.N;
        var mats = new List<(float[] W, int Rows, GgmlType Type)>();
        foreach (var name in g.Matrices)
        {
            var t = input.Tensors.Single(x => x.Name == name);
            var type = targetOf(name);
            if (t.Dims[0] != n || t.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16) || n % GgmlTypeInfo.BlockSize(type) != 0) return (null, 0);
            mats.Add((SampledRows(input, t, n), 0, type));
        }
        var importance = he.Importance();
        var rms = new float[n];
        for (int j = 0; j < n; j++) rms[j] = MathF.Max(MathF.Sqrt(importance[j]), 1e-8f);
        float[]? best = null;
        double bestError = double.PositiveInfinity;
        float bestAlpha = 0;
        for (int step = 0; step <= AlphaSteps; step++)
        {
            float alpha = (float)step / AlphaSteps;
            var s = Scale(rms, alpha);
            double error = 0;
            foreach (var (w, _, type) in mats) error += OutputError(w, n, type, s, importance, he.H, threads);
            if (error < bestError)
            {
                bestError = error;
                best = s;
                bestAlpha = alpha;
            }
        }
        return (best, bestAlpha);
    }

    /// <summary>s = a^α, divided by sqrt(max·min) so that it straddles 1.</summary>
    public static float[] Scale(float[] rms, float alpha)
    {
        var s = new float[rms.Length];
        float max = 0, min = float.MaxValue;
        for (int j = 0; j < s.Length; j++)
        {
            s[j] = MathF.Pow(rms[j], alpha);
            max = MathF.Max(max, s[j]);
            min = MathF.Min(min, s[j]);
        }
        float norm = MathF.Sqrt(max * min);
        for (int j = 0; j < s.Length; j++) s[j] /= norm;
        return s;
    }

    /// <summary>Up to 128 evenly spaced rows of a float tensor, as f32.</summary>
    private static unsafe float[] SampledRows(GgufFile input, GgufTensorInfo t, int n)
    {
        long rows = t.Rows;
        int take = (int)Math.Min(rows, MaxRowsPerMatrix);
        int inRow = (int)GgmlTypeInfo.RowSize(t.Type, n);
        var w = new float[(long)take * n];
        byte* p = input.TensorData(t);
        for (int i = 0; i < take; i++)
        {
            long r = i * rows / take;
            var bytes = new ReadOnlySpan<byte>(p + r * inRow, inRow);
            if (t.Type == GgmlType.F32) MemoryMarshal.Cast<byte, float>(bytes).CopyTo(w.AsSpan(i * n, n));
            else Dequantize.Row(t.Type, bytes, w.AsSpan(i * n, n));
        }
        return w;
    }

    /// <summary>Σ over rows of dᵀ·H·d with d = w − deq(quant(w·s))/s (H's upper triangle: dᵀHd = Σ H_ii d_i² + 2 Σ_{i<j} H_ij d_i d_j).</summary>
    private static double OutputError(float[] w, int n, GgmlType type, float[] s, float[] importance, float[] h, int threads)
    {
        int rows = w.Length / n;
        int rowBytes = (int)GgmlTypeInfo.RowSize(type, n);
        var qw = new float[n];
        for (int j = 0; j < n; j++) qw[j] = importance[j] / (s[j] * s[j]);
        var perRow = new double[rows];
        Parallel.For(0, rows, new ParallelOptions { MaxDegreeOfParallelism = threads }, () => (new float[n], new byte[rowBytes], new float[n]), (r, _, buf) =>
        {
            var (scaled, bytes, d) = buf;
            var row = w.AsSpan(r * n, n);
            for (int j = 0; j < n; j++) scaled[j] = row[j] * s[j];
            WeightedQuantize.Row(type, scaled, qw, bytes);
            Dequantize.Row(type, bytes, d);
            for (int j = 0; j < n; j++) d[j] = row[j] - d[j] / s[j];
            double e = 0;
            for (int i = 0; i < n; i++)
            {
                if (d[i] == 0f) continue;
                var hi = h.AsSpan(i * n, n);
                double acc = Dot(hi.Slice(i + 1), d.AsSpan(i + 1, n - i - 1));
                e += d[i] * (hi[i] * d[i] + 2 * acc);
            }
            perRow[r] = e;
            return buf;
        }, _ => { });
        double sum = 0;
        foreach (double e in perRow) sum += e;
        return sum;
    }

    /// <summary>Σ a·b in float lanes (fixed order for a given length).</summary>
    private static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int i = 0;
        var acc = System.Numerics.Vector<float>.Zero;
        int w = System.Numerics.Vector<float>.Count;
        for (; i <= a.Length - w; i += w) acc += new System.Numerics.Vector<float>(a.Slice(i)) * new System.Numerics.Vector<float>(b.Slice(i));
        float sum = System.Numerics.Vector.Sum(acc);
        for (; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }
}
