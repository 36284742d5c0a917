using SharpInfer.Gguf;
using SharpInfer.Tensors;

namespace SharpInfer.Models;

/// <summary>
/// Binds tensors by name (llama.cpp's names) to the memory-mapped GGUF file for an architecture's weight list, checking
/// presence, shape and a supported type before any computation starts. Matrices are used in place; only the small
/// norm and bias vectors are copied into float arrays (kilobytes).
/// </summary>
internal sealed class WeightLoader(GgufFile g)
{

    public bool Has(string name) => g.TryGetTensor(name, out _);

    /// <summary>A 2-D weight [cols, rows] (ggml order: input size first).</summary>
    public WeightMatrix Matrix(string name, int cols, int rows)
    {
        var t = Tensor(name);
        if (t.Dims.Length < 2 || t.Dims[0] != cols || t.Dims[1] != rows || t.ElementCount != (long)cols * rows)
            throw new UnsupportedModelException($"{g.Path}: tensor '{name}' has shape {t.ShapeString}, expected [{cols}, {rows}]");
        RequireSupported(name, t);
        return WeightMatrix.FromGguf(g, t);
    }

    /// <summary>A 1-D vector of <paramref name="n"/> floats (norm weights, biases), copied to a pinned array.</summary>
    public float[] Vector(string name, int n)
    {
        var t = Tensor(name);
        if (t.ElementCount != n || t.Dims[0] != n)
            throw new UnsupportedModelException($"{g.Path}: tensor '{name}' has shape {t.ShapeString}, expected [{n}]");
        if (t.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16))
            throw new UnsupportedModelException($"{g.Path}: tensor '{name}' has type {GgmlTypeInfo.Name(t.Type)}; vectors must be f32, f16 or bf16");
        var values = GC.AllocateArray<float>(n, pinned: true);   // pinned: kernels take raw pointers to it
        Dequantize.Row(t.Type, g.TensorBytes(t), values);
        foreach (var v in values)
            if (!float.IsFinite(v)) throw new UnsupportedModelException($"{g.Path}: tensor '{name}' contains non-finite values");
        return values;
    }

    /// <summary>The vector if the file has it, else null (optional tensors such as biases).</summary>
    public float[]? OptionalVector(string name, int n) => Has(name) ? Vector(name, n) : null;

    /// <summary>A 2-D per-expert bias tensor [n, experts] (gpt-oss's <c>ffn_*_exps.bias</c>) as one pinned vector of
    /// <paramref name="n"/> floats per expert.</summary>
    public float[][] ExpertVectors(string name, int n, int experts)
    {
        var t = Tensor(name);
        if (t.Dims.Length != 2 || t.Dims[0] != n || t.Dims[1] != experts)
            throw new UnsupportedModelException($"{g.Path}: tensor '{name}' has shape {t.ShapeString}, expected [{n}, {experts}]");
        if (t.Type != GgmlType.F32)
            throw new UnsupportedModelException($"{g.Path}: tensor '{name}' has type {GgmlTypeInfo.Name(t.Type)}; expert biases must be f32");
        var all = new float[(long)n * experts];
        Dequantize.Row(t.Type, g.TensorBytes(t), all);
        var result = new float[experts][];
        for (int e = 0; e < experts; e++)
        {
            result[e] = GC.AllocateArray<float>(n, pinned: true);   // pinned: kernels take raw pointers to it
            all.AsSpan(e * n, n).CopyTo(result[e]);
            foreach (var v in result[e])
                if (!float.IsFinite(v)) throw new UnsupportedModelException($"{g.Path}: tensor '{name}' contains non-finite values");
        }
        return result;
    }

    /// <summary>A 3-D expert tensor [cols, rows, experts] as one matrix view per expert (rows e·rows … (e+1)·rows of the
    /// tensor read as 2-D: each expert's rows are contiguous).</summary>
    public unsafe WeightMatrix[] Experts(string name, int cols, int rows, int experts)
    {
        var t = Tensor(name);
        if (t.Dims.Length != 3 || t.Dims[0] != cols || t.Dims[1] != rows || t.Dims[2] != experts)
            throw new UnsupportedModelException($"{g.Path}: tensor '{name}' has shape {t.ShapeString}, expected [{cols}, {rows}, {experts}]");
        RequireSupported(name, t);
        var all = new WeightMatrix(name, t.Type, rows * experts, cols, g.TensorData(t));
        return Enumerable.Range(0, experts).Select(e => Rows(all, e * rows, rows, $"expert {e}")).ToArray();
    }

    /// <summary>Rows [first, first + count) of a matrix as a matrix of its own (fused tensors, experts).</summary>
    public static unsafe WeightMatrix Rows(WeightMatrix m, int first, int count, string part) =>
        new($"{m.Name}[{part}]", m.Type, count, m.Cols, m.Row(first));

    private void RequireSupported(string name, GgufTensorInfo t)
    {
        if (!Dequantize.IsSupported(t.Type))
            throw new UnsupportedModelException($"{g.Path}: tensor '{name}' has type {GgmlTypeInfo.Name(t.Type)}, which is not supported");
    }

    private GgufTensorInfo Tensor(string name) =>
        g.TryGetTensor(name, out var t) ? t : throw new UnsupportedModelException($"{g.Path}: required tensor '{name}' is missing");
}
