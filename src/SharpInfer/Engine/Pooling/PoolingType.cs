using SharpInfer.Gguf;

namespace SharpInfer.Engine.Pooling;

/// <summary>How a pooling request turns the hidden states of its prompt into its output. The values are llama.cpp's
/// (<c>enum llama_pooling_type</c>), as stored in a GGUF's <c>&lt;arch&gt;.pooling_type</c>.</summary>
public enum PoolingType
{
    /// <summary>No pooling: one vector per prompt token.</summary>
    None = 0,
    /// <summary>The average over the prompt's tokens.</summary>
    Mean = 1,
    /// <summary>The first token's vector (BERT's [CLS]).</summary>
    Cls = 2,
    /// <summary>The last token's vector (Qwen3-Embedding, causal embedding models).</summary>
    Last = 3,
    /// <summary>A classification head over the first (Qwen3: last) token: relevance scores for rerankers.</summary>
    Rank = 4,
}

internal static class PoolingTypes
{
    /// <summary>The names of <c>--pooling</c> (llama.cpp's).</summary>
    public static IReadOnlyList<string> Names { get; } = ["none", "mean", "cls", "last", "rank"];

    public static string Name(this PoolingType t) => Names[(int)t];

    /// <summary>Parses a <c>--pooling</c> value; a clear error for anything else.</summary>
    public static PoolingType Parse(string text, string field = "pooling")
    {
        int i = Array.IndexOf(Names.ToArray(), text.Trim().ToLowerInvariant());
        if (i < 0) throw new InvalidRequestException($"'{text}' is not a pooling type (use {string.Join(", ", Names)})", field);
        return (PoolingType)i;
    }

    /// <summary>The pooling the file declares (<c>&lt;arch&gt;.pooling_type</c>), or null when it declares none (a
    /// generative model) or an unspecified one (llama.cpp's −1).</summary>
    public static PoolingType? FromGguf(GgufFile file, string architecture)
    {
        var key = architecture + ".pooling_type";
        long? v = file.GetInteger(key);
        if (v is null or -1) return null;
        if (v is < 0 or > 4) throw new UnsupportedModelException($"{file.Path}: {key} is {v}, not a known pooling type (0–4)");
        return (PoolingType)v.Value;
    }
}
