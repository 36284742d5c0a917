using SharpInfer.Engine;
using SharpInfer.Engine.Pooling;

namespace SharpInfer;

/// <summary>How <see cref="Llm.EmbedAsync"/> shapes its vectors. <see cref="Dimensions"/> keeps the first n values
/// (Matryoshka truncation) before normalizing; <see cref="Normalize"/> is llama.cpp's <c>--embd-normalize</c>
/// (−1 none, 0 max absolute, 2 Euclidean — the default, as OpenAI's unit vectors —, p &gt; 2 a p-norm).</summary>
public sealed record LlmEmbeddingOptions
{
    public int? Dimensions { get; init; }
    public int Normalize { get; init; } = 2;
}

/// <summary>One vector per input text, in input order, and the prompt tokens they took (all texts together).</summary>
public sealed record LlmEmbeddings(IReadOnlyList<float[]> Vectors, int PromptTokens);

public sealed partial class Llm
{
    /// <summary>The model's embedding length: a vector's size before <see cref="LlmEmbeddingOptions.Dimensions"/>.</summary>
    public int EmbeddingLength => Engine.EmbeddingLength;

    /// <summary>Embeds each text: its tokens (BOS/EOS as the vocabulary adds them, special tokens parsed — as
    /// <c>/v1/embeddings</c> tokenizes) run through the model in the engine's shared batches and are pooled with
    /// <see cref="LlmOptions.Pooling"/>. At most <see cref="LlmOptions.ParallelSequences"/> texts are in flight at
    /// once, so a long list queues behind itself rather than ahead of other callers. An empty text, or one longer than
    /// <see cref="ContextLength"/>, is an <see cref="ArgumentException"/> (nothing is truncated).</summary>
    public async Task<LlmEmbeddings> EmbedAsync(IEnumerable<string> texts, LlmEmbeddingOptions? options = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var type = Engine.DefaultPooling;
        if (type is PoolingType.None or PoolingType.Rank)
            throw new NotSupportedException($"embeddings need one vector per text: this model's pooling is '{type.Name()}' (set LlmOptions.Pooling to Mean, Cls or Last)");
        options ??= new LlmEmbeddingOptions();
        if (options.Dimensions is int d && (d < 1 || d > EmbeddingLength))
            throw new ArgumentOutOfRangeException(nameof(options), d, $"Dimensions must be between 1 and {EmbeddingLength} (the model's embedding length)");
        var prompts = new List<int[]>();
        foreach (var text in texts)
        {
            ArgumentNullException.ThrowIfNull(text, nameof(texts));
            if (text.Length == 0) throw new ArgumentException($"text {prompts.Count} is empty: there is nothing to embed", nameof(texts));
            // refuse an over-long text before tokenizing all of it
            prompts.Add(_model.Tokenizer.EncodeAtMost(text, ContextLength, addSpecial: true, parseSpecial: true)
                ?? throw new ArgumentException($"text {prompts.Count} has more than {ContextLength} tokens (the context length)", nameof(texts)));
        }
        var p = new PoolingParams { Type = type, Dimensions = options.Dimensions, Normalize = options.Normalize };
        PoolingOutput[] outputs;
        try
        {
            outputs = await Engine.PoolManyAsync(prompts, p, Engine.Options.MaxNumSeqs, cancellation).ConfigureAwait(false);
        }
        catch (PoolingInputException e)
        {
            // the caller's own error (an over-long text is an ArgumentException above; here what the engine refused)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException!);
            throw;
        }
        var vectors = Array.ConvertAll(outputs, o => o.Vectors[0]);
        return new LlmEmbeddings(vectors, prompts.Sum(t => t.Length));
    }
}
