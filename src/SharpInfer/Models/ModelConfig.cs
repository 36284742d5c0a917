using SharpInfer.Gguf;
using SharpInfer.Tensors;

namespace SharpInfer.Models;

/// <summary>How rotary position embeddings pair up dimensions: Llama rotates adjacent pairs (2i, 2i+1);
/// GPT-NeoX-style models (Qwen) rotate (i, i + n_rot/2).</summary>
internal enum RopeStyle { Normal, NeoX }

/// <summary>How a mixture-of-experts router turns its logits into expert weights (llama.cpp's gating functions).</summary>
internal enum ExpertGating
{
    /// <summary>Softmax over all experts, the top-k by probability, renormalized to sum to 1 (Qwen3-MoE).</summary>
    Softmax,
    /// <summary>The top-k logits, then a softmax over those k only (gpt-oss; LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX_WEIGHT).</summary>
    SoftmaxWeight,
}

/// <summary>Hyper-parameters of a transformer, read from GGUF metadata (<c>{arch}.*</c> keys).</summary>
internal sealed record ModelConfig
{
    public static IReadOnlyList<string> SupportedArchitectures => ArchitectureRegistry.Names;

    public required string Architecture { get; init; }
    /// <summary>The family's definition (<see cref="ArchitectureRegistry"/>), found by <see cref="Architecture"/>.</summary>
    public Architecture Family => ArchitectureRegistry.Get(Architecture);
    public required string Name { get; init; }
    public required int LayerCount { get; init; }
    public required int EmbeddingLength { get; init; }
    public required int HeadCount { get; init; }
    public required int KvHeadCount { get; init; }
    /// <summary>Per-head dimension of queries and keys (Qwen3 sets it independently of n_embd / n_head).</summary>
    public required int HeadDim { get; init; }
    public required int ValueHeadDim { get; init; }
    public required int FeedForwardLength { get; init; }
    public required int VocabSize { get; init; }
    public required int TrainedContextLength { get; init; }
    public required float RmsNormEpsilon { get; init; }
    public required float RopeFreqBase { get; init; }
    /// <summary>Number of leading dimensions of each head that RoPE rotates.</summary>
    public required int RopeDimensions { get; init; }
    /// <summary>Linear position scaling (1 = none): positions are multiplied by this before rotation.</summary>
    public required float RopeFreqScale { get; init; }
    public required RopeStyle RopeStyle { get; init; }
    /// <summary>Qwen3: RMSNorm over each query and key head before RoPE.</summary>
    public required bool HasQkNorm { get; init; }
    /// <summary>Every this-many-th layer (1-based) applies no RoPE (SmolLM3: 4, llama.cpp's n_no_rope_layer_step);
    /// 0: every layer does.</summary>
    public int NoRopeLayerStep { get; init; }

    /// <summary>Whether layer <paramref name="layer"/> (0-based) rotates queries and keys.</summary>
    public bool LayerUsesRope(int layer) => NoRopeLayerStep == 0 || (layer + 1) % NoRopeLayerStep != 0;
    /// <summary>The attributes of layer <paramref name="layer"/> (RoPE, its base and scale, sliding window), as the
    /// family defines them.</summary>
    public LayerAttributes Layer(int layer) => Family.Layer(this, layer);
    /// <summary>Embeddings are multiplied by this (Gemma: sqrt(n_embd)); 1: as stored.</summary>
    public float EmbeddingScale { get; init; } = 1f;
    /// <summary>The attention scale when the family sets one other than 1/sqrt(head_dim); 0: 1/sqrt(head_dim).</summary>
    public float AttentionScale { get; init; }
    /// <summary>Final logits become cap · tanh(logit / cap) (Gemma 2's soft-capping); 0: none.</summary>
    public float FinalLogitSoftcap { get; init; }
    /// <summary>Sliding-window size of the family's windowed layers (<c>attention.sliding_window</c>); 0: none.</summary>
    public int SlidingWindow { get; init; }
    /// <summary>Layers come in groups of this many; the last of each group is global, the others windowed (Gemma 3).</summary>
    public int SlidingWindowPeriod { get; init; } = 1;
    /// <summary>RoPE base of the sliding-window layers (<c>rope.freq_base_swa</c>).</summary>
    public float RopeFreqBaseSwa { get; init; } = 10000f;
    /// <summary>Experts per mixture-of-experts FFN (0: dense FFN); <see cref="FeedForwardLength"/> is then each
    /// expert's hidden size.</summary>
    public int ExpertCount { get; init; }
    /// <summary>Experts each token is routed to (top-k).</summary>
    public int ExpertUsedCount { get; init; }
    /// <summary>How the router's logits become the selected experts' weights.</summary>
    public ExpertGating ExpertGating { get; init; }
    /// <summary>YaRN RoPE scaling (<c>rope.scaling.type</c> = yarn): its settings, applied to every RoPE table with
    /// that table's base and scale; null: plain (or linear) RoPE.</summary>
    public RopeYarn? Yarn { get; init; }
    public bool IsMoe => ExpertCount > 0;

    public int QueryDim => HeadCount * HeadDim;
    public int KeyDim => KvHeadCount * HeadDim;
    public int ValueDim => KvHeadCount * ValueHeadDim;
    public int GroupSize => HeadCount / KvHeadCount;

    public static ModelConfig FromGguf(GgufFile g)
    {
        string arch = g.GetString("general.architecture")
            ?? throw new UnsupportedModelException($"{g.Path}: metadata 'general.architecture' is missing");
        if (!ArchitectureRegistry.TryGet(arch, out var family))
            throw new UnsupportedModelException(
                $"{g.Path}: architecture {FileText.Quote(arch)} is not supported (supported: {string.Join(", ", SupportedArchitectures)})");

        int Req(string key) => ModelConfigValidator.PositiveInteger(g, $"{arch}.{key}")
            ?? throw new UnsupportedModelException($"{g.Path}: metadata '{arch}.{key}' is missing");
        int Opt(string key, int dflt) => ModelConfigValidator.PositiveInteger(g, $"{arch}.{key}") ?? dflt;
        ModelConfigValidator.RequireFiniteFloats(g, arch);

        int nEmbd = Req("embedding_length");
        int nHead = Req("attention.head_count");
        int nHeadKv = Opt("attention.head_count_kv", nHead);
        if (nHead % nHeadKv != 0)
            throw new UnsupportedModelException(
                $"{g.Path}: metadata '{arch}.attention.head_count' = {nHead} is not a multiple of '{arch}.attention.head_count_kv' = {nHeadKv}");
        if (nEmbd % nHead != 0 && !g.Has($"{arch}.attention.key_length"))
            throw new UnsupportedModelException(
                $"{g.Path}: metadata '{arch}.embedding_length' = {nEmbd} is not a multiple of '{arch}.attention.head_count' = {nHead} and key_length is not given");
        int headDim = Opt("attention.key_length", nEmbd / nHead);
        int valueDim = Opt("attention.value_length", headDim);
        if (valueDim != headDim)
            throw new UnsupportedModelException($"{g.Path}: key_length {headDim} != value_length {valueDim} is not supported");
        int nRot = Opt("rope.dimension_count", headDim);
        if (nRot > headDim || nRot % 2 != 0)
            throw new UnsupportedModelException($"{g.Path}: rope.dimension_count {nRot} must be even and at most the head size {headDim}");

        double freqBase = ModelConfigValidator.PositiveNumber(g, $"{arch}.rope.freq_base") ?? 10000.0;
        float freqScale = 1f;
        RopeYarn? yarn = null;
        string? scaling = g.GetString($"{arch}.rope.scaling.type");
        if (scaling is not (null or "none"))
        {
            if (scaling is not ("linear" or "yarn"))
                throw new UnsupportedModelException($"{g.Path}: rope scaling {FileText.Quote(scaling)} is not supported (supported: none, linear, yarn)");
            double factor = ModelConfigValidator.PositiveNumber(g, $"{arch}.rope.scaling.factor") ?? 1.0;
            freqScale = (float)(1.0 / factor);
            if (scaling == "yarn") yarn = RopeYarn.FromGguf(g, arch, nRot, (float)freqBase);
        }

        int vocab = g.GetArray("tokenizer.ggml.tokens")?.Count ?? Opt("vocab_size", 0);
        if (vocab <= 0) throw new UnsupportedModelException($"{g.Path}: the vocabulary (tokenizer.ggml.tokens) is missing");

        double eps = ModelConfigValidator.PositiveNumber(g, $"{arch}.attention.layer_norm_rms_epsilon")
            ?? throw new UnsupportedModelException($"{g.Path}: metadata '{arch}.attention.layer_norm_rms_epsilon' is missing");
        int layers = Req("block_count");
        int experts = Opt("expert_count", 0), used = experts > 0 ? Req("expert_used_count") : 0;
        if (used > experts)
            throw new UnsupportedModelException($"{g.Path}: metadata '{arch}.expert_used_count' = {used} exceeds '{arch}.expert_count' = {experts}");
        int ffn = experts > 0 ? Opt("expert_feed_forward_length", 0) is > 0 and int fe ? fe : Req("feed_forward_length") : Req("feed_forward_length");
        ModelConfigValidator.RequireLayersMatchTensors(g, arch, layers);

        var config = new ModelConfig
        {
            Architecture = arch,
            Name = g.GetString("general.name") ?? Path.GetFileNameWithoutExtension(g.Path),
            LayerCount = layers,
            EmbeddingLength = nEmbd,
            HeadCount = nHead,
            KvHeadCount = nHeadKv,
            HeadDim = headDim,
            ValueHeadDim = valueDim,
            FeedForwardLength = ffn,
            ExpertCount = experts,
            ExpertUsedCount = used,
            VocabSize = vocab,
            TrainedContextLength = Opt("context_length", 2048),
            RmsNormEpsilon = (float)eps,
            RopeFreqBase = (float)freqBase,
            RopeDimensions = nRot,
            RopeFreqScale = freqScale,
            Yarn = yarn,
            RopeStyle = family.RopeStyle,
            HasQkNorm = family.HasQkNorm,
        };
        return family.Configure(g, config);
    }
}
