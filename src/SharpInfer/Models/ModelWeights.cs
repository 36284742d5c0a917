using SharpInfer.Gguf;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Models;

/// <summary>The weights of one transformer block; which ones are present is up to the architecture
/// (<see cref="Architecture.LoadLayer"/>).</summary>
internal sealed record LayerWeights
{
    public required float[] AttnNorm { get; init; }
    public required WeightMatrix Q { get; init; }
    public required WeightMatrix K { get; init; }
    public required WeightMatrix V { get; init; }
    public required WeightMatrix O { get; init; }
    public float[]? QBias { get; init; }
    public float[]? KBias { get; init; }
    public float[]? VBias { get; init; }
    /// <summary>gpt-oss: bias of the attention output projection.</summary>
    public float[]? OBias { get; init; }
    /// <summary>gpt-oss: attention sinks, one logit per query head (see <see cref="Tensors.PagedAttention"/>).</summary>
    public float[]? AttnSinks { get; init; }
    public float[]? QNorm { get; init; }
    public float[]? KNorm { get; init; }
    /// <summary>Gemma: RMSNorm of the attention output before it joins the residual stream.</summary>
    public float[]? PostAttnNorm { get; init; }
    public required float[] FfnNorm { get; init; }
    /// <summary>Gemma: RMSNorm of the FFN output before it joins the residual stream.</summary>
    public float[]? PostFfnNorm { get; init; }
    /// <summary>Dense FFN (null in a mixture-of-experts layer).</summary>
    public WeightMatrix? Gate { get; init; }
    public WeightMatrix? Up { get; init; }
    public WeightMatrix? Down { get; init; }
    /// <summary>Mixture of experts: the router (F32, one row per expert) and each expert's gate/up/down, row ranges of
    /// the 3-D expert tensors.</summary>
    public WeightMatrix? Router { get; init; }
    /// <summary>gpt-oss: added to the router logits before the top-k.</summary>
    public float[]? RouterBias { get; init; }
    public ExpertWeights[]? Experts { get; init; }
}

/// <summary>One expert's gated FFN, with optional biases added after each projection (gpt-oss).</summary>
internal sealed record ExpertWeights(WeightMatrix Gate, WeightMatrix Up, WeightMatrix Down)
{
    public float[]? GateBias { get; init; }
    public float[]? UpBias { get; init; }
    public float[]? DownBias { get; init; }
}

/// <summary>
/// All weights of a model, bound by tensor name (llama.cpp's names) to the memory-mapped GGUF file by
/// <see cref="WeightLoader"/>: matrices in place, norm and bias vectors copied; every tensor checked before any
/// computation starts.
/// </summary>
internal sealed class ModelWeights : IDisposable
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

    /// <summary>Binds the weights the model's architecture lists (see <see cref="Architecture.LoadLayer"/>).</summary>
    public static ModelWeights Load(GgufFile g, ModelConfig c, Action<int, int>? layerDone = null)
    {
        var w = new WeightLoader(g);
        int E = c.EmbeddingLength, V = c.VocabSize;
        var layers = new LayerWeights[c.LayerCount];
        for (int i = 0; i < c.LayerCount; i++)
        {
            layerDone?.Invoke(i, c.LayerCount);
            layers[i] = c.Family.LoadLayer(w, c, i);
        }
        var embd = w.Matrix("token_embd.weight", E, V);
        var output = w.Has("output.weight") ? w.Matrix("output.weight", E, V) : embd;
        return new ModelWeights
        {
            TokenEmbedding = embd,
            Output = output,
            OutputNorm = w.Vector("output_norm.weight", E),
            Layers = layers,
            RopeFreqFactors = w.OptionalVector("rope_freqs.weight", c.RopeDimensions / 2),
        };
    }
}
