using SharpInfer.Gguf;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Models;

/// <summary>The weights of one transformer block.</summary>
public sealed class LayerWeights
{
    public required float[] AttnNorm { get; init; }
    public required WeightMatrix Q { get; init; }
    public required WeightMatrix K { get; init; }
    public required WeightMatrix V { get; init; }
    public required WeightMatrix O { get; init; }
    public float[]? QBias { get; init; }
    public float[]? KBias { get; init; }
    public float[]? VBias { get; init; }
    public float[]? QNorm { get; init; }
    public float[]? KNorm { get; init; }
    public required float[] FfnNorm { get; init; }
    /// <summary>Dense FFN (null in a mixture-of-experts layer).</summary>
    public WeightMatrix? Gate { get; init; }
    public WeightMatrix? Up { get; init; }
    public WeightMatrix? Down { get; init; }
    /// <summary>Mixture of experts: the router (F32, one row per expert) and each expert's gate/up/down, row ranges of
    /// the 3-D expert tensors.</summary>
    public WeightMatrix? Router { get; init; }
    public ExpertWeights[]? Experts { get; init; }
}

/// <summary>One expert's SiLU-gated FFN.</summary>
public sealed record ExpertWeights(WeightMatrix Gate, WeightMatrix Up, WeightMatrix Down);

/// <summary>
/// All weights of a model, bound by tensor name (llama.cpp's names) to the memory-mapped GGUF file. Matrices are
/// used in place; only the small norm and bias vectors are copied into float arrays (kilobytes). Every tensor is
/// checked for presence, shape and a supported type before any computation starts.
/// </summary>
public sealed class ModelWeights : IDisposable
{
    private readonly WeightPacking _packing = new();

    public required WeightMatrix TokenEmbedding { get; init; }
    public required WeightMatrix Output { get; init; }
    public required float[] OutputNorm { get; init; }
    public required LayerWeights[] Layers { get; init; }
    /// <summary>Llama 3 rope scaling: a divisor per rotated pair (the <c>rope_freqs</c> tensor), or null.</summary>
    public float[]? RopeFreqFactors { get; init; }

    /// <summary>Every matrix (the output projection may be the embedding matrix itself).</summary>
    public IEnumerable<WeightMatrix> Matrices()
    {
        foreach (var l in Layers)
        {
            yield return l.Q; yield return l.K; yield return l.V; yield return l.O;
            if (l.Gate != null) { yield return l.Gate; yield return l.Up!; yield return l.Down!; }
            if (l.Router != null) yield return l.Router;
            foreach (var e in l.Experts ?? []) { yield return e.Gate; yield return e.Up; yield return e.Down; }
        }
        yield return Output;
        if (!ReferenceEquals(Output, TokenEmbedding)) yield return TokenEmbedding;
    }

    /// <summary>Packs the matrices whose kernels have a load-time layout for <paramref name="level"/> (see
    /// <see cref="WeightPacking"/>); idempotent. The token embedding is packed only when it is also the output.</summary>
    public void PackForKernels(IsaLevel level, Action<int, int>? chunkDone = null) =>
        _packing.Pack(Matrices().Where(m => !ReferenceEquals(m, TokenEmbedding) || ReferenceEquals(m, Output)), level, rowsAreFileMapped: true, chunkDone);

    /// <summary>Bytes held by packed copies of matrices.</summary>
    public long PackedBytes => _packing.Bytes;

    public void Dispose() => _packing.Dispose();

    public static ModelWeights Load(GgufFile g, ModelConfig c, Action<int, int>? layerDone = null)
    {
        int E = c.EmbeddingLength, V = c.VocabSize;
        var layers = new LayerWeights[c.LayerCount];
        for (int i = 0; i < c.LayerCount; i++)
        {
            layerDone?.Invoke(i, c.LayerCount);
            string p = $"blk.{i}.";
            bool bias = g.TryGetTensor(p + "attn_q.bias", out _);
            // Phi-3 stores Q, K and V as one matrix (rows q, then k, then v) and gate and up as one (gate, then up):
            // row ranges of the mapped tensor serve as the separate matrices
            var (q, k, v) = g.TryGetTensor(p + "attn_qkv.weight", out _)
                ? Split3(Matrix(g, p + "attn_qkv.weight", E, c.QueryDim + c.KeyDim + c.ValueDim), c.QueryDim, c.KeyDim, c.ValueDim)
                : (Matrix(g, p + "attn_q.weight", E, c.QueryDim), Matrix(g, p + "attn_k.weight", E, c.KeyDim), Matrix(g, p + "attn_v.weight", E, c.ValueDim));
            WeightMatrix? gate = null, up = null, down = null, router = null;
            ExpertWeights[]? experts = null;
            if (c.IsMoe)
            {
                router = Matrix(g, p + "ffn_gate_inp.weight", E, c.ExpertCount);
                var gates = Experts(g, p + "ffn_gate_exps.weight", E, c.FeedForwardLength, c.ExpertCount);
                var ups = Experts(g, p + "ffn_up_exps.weight", E, c.FeedForwardLength, c.ExpertCount);
                var downs = Experts(g, p + "ffn_down_exps.weight", c.FeedForwardLength, E, c.ExpertCount);
                experts = new ExpertWeights[c.ExpertCount];
                for (int e = 0; e < experts.Length; e++) experts[e] = new ExpertWeights(gates[e], ups[e], downs[e]);
            }
            else
            {
                bool fusedUp = !g.TryGetTensor(p + "ffn_gate.weight", out _) && g.TryGetTensor(p + "ffn_up.weight", out var upInfo)
                               && upInfo.Dims.Length >= 2 && upInfo.Dims[1] == 2L * c.FeedForwardLength;
                (gate, up) = fusedUp
                    ? Split2(Matrix(g, p + "ffn_up.weight", E, 2 * c.FeedForwardLength), c.FeedForwardLength)
                    : (Matrix(g, p + "ffn_gate.weight", E, c.FeedForwardLength), Matrix(g, p + "ffn_up.weight", E, c.FeedForwardLength));
                down = Matrix(g, p + "ffn_down.weight", c.FeedForwardLength, E);
            }
            layers[i] = new LayerWeights
            {
                AttnNorm = Vector(g, p + "attn_norm.weight", E),
                Q = q,
                K = k,
                V = v,
                O = Matrix(g, p + "attn_output.weight", c.HeadCount * c.ValueHeadDim, E),
                QBias = bias ? Vector(g, p + "attn_q.bias", c.QueryDim) : null,
                KBias = bias ? Vector(g, p + "attn_k.bias", c.KeyDim) : null,
                VBias = bias ? Vector(g, p + "attn_v.bias", c.ValueDim) : null,
                QNorm = c.HasQkNorm ? Vector(g, p + "attn_q_norm.weight", c.HeadDim) : null,
                KNorm = c.HasQkNorm ? Vector(g, p + "attn_k_norm.weight", c.HeadDim) : null,
                FfnNorm = Vector(g, p + "ffn_norm.weight", E),
                Gate = gate,
                Up = up,
                Down = down,
                Router = router,
                Experts = experts,
            };
        }
        var embd = Matrix(g, "token_embd.weight", E, V);
        var output = g.TryGetTensor("output.weight", out _) ? Matrix(g, "output.weight", E, V) : embd;
        float[]? ropeFactors = g.TryGetTensor("rope_freqs.weight", out _) ? Vector(g, "rope_freqs.weight", c.RopeDimensions / 2) : null;
        return new ModelWeights
        {
            TokenEmbedding = embd,
            Output = output,
            OutputNorm = Vector(g, "output_norm.weight", E),
            Layers = layers,
            RopeFreqFactors = ropeFactors,
        };
    }

    private static unsafe (WeightMatrix, WeightMatrix, WeightMatrix) Split3(WeightMatrix m, int a, int b, int c) =>
        (Rows(m, 0, a, "q"), Rows(m, a, b, "k"), Rows(m, a + b, c, "v"));

    private static unsafe (WeightMatrix, WeightMatrix) Split2(WeightMatrix m, int a) => (Rows(m, 0, a, "gate"), Rows(m, a, m.Rows - a, "up"));

    private static unsafe WeightMatrix Rows(WeightMatrix m, int first, int count, string part) =>
        new($"{m.Name}[{part}]", m.Type, count, m.Cols, m.Row(first));

    /// <summary>A 3-D expert tensor [cols, rows, experts] as one matrix view per expert (rows e·rows … (e+1)·rows of the
    /// tensor read as 2-D: each expert's rows are contiguous).</summary>
    private static unsafe WeightMatrix[] Experts(GgufFile g, string name, int cols, int rows, int experts)
    {
        var t = Tensor(g, name);
        if (t.Dims.Length != 3 || t.Dims[0] != cols || t.Dims[1] != rows || t.Dims[2] != experts)
            throw new UnsupportedModelException($"{g.Path}: tensor '{name}' has shape {t.ShapeString}, expected [{cols}, {rows}, {experts}]");
        if (!Dequantize.IsSupported(t.Type))
            throw new UnsupportedModelException($"{g.Path}: tensor '{name}' has type {GgmlTypeInfo.Name(t.Type)}, which is not supported");
        var all = new WeightMatrix(name, t.Type, rows * experts, cols, g.TensorData(t));
        return Enumerable.Range(0, experts).Select(e => Rows(all, e * rows, rows, $"expert {e}")).ToArray();
    }

    private static WeightMatrix Matrix(GgufFile g, string name, int cols, int rows)
    {
        var t = Tensor(g, name);
        if (t.Dims.Length < 2 || t.Dims[0] != cols || t.Dims[1] != rows || t.ElementCount != (long)cols * rows)
            throw new UnsupportedModelException($"{g.Path}: tensor '{name}' has shape {t.ShapeString}, expected [{cols}, {rows}]");
        if (!Dequantize.IsSupported(t.Type))
            throw new UnsupportedModelException($"{g.Path}: tensor '{name}' has type {GgmlTypeInfo.Name(t.Type)}, which is not supported");
        return WeightMatrix.FromGguf(g, t);
    }

    private static float[] Vector(GgufFile g, string name, int n)
    {
        var t = Tensor(g, name);
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

    private static GgufTensorInfo Tensor(GgufFile g, string name) =>
        g.TryGetTensor(name, out var t) ? t : throw new UnsupportedModelException($"{g.Path}: required tensor '{name}' is missing");
}
