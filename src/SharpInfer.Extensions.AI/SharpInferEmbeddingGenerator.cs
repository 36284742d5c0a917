using Microsoft.Extensions.AI;

namespace SharpInfer.Extensions.AI;

/// <summary>
/// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> over an in-process <see cref="Llm"/>: each string is pooled by
/// the engine (<see cref="Llm.EmbedAsync"/>, the pooling <c>/v1/embeddings</c> uses) into a unit-length vector;
/// <see cref="EmbeddingGenerationOptions.Dimensions"/> keeps the first n values and re-normalizes (Matryoshka), and the
/// result's <see cref="UsageDetails"/> counts the prompt tokens. The generator does not own the <see cref="Llm"/>.
/// </summary>
public sealed class SharpInferEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly Llm _llm;
    private readonly EmbeddingGeneratorMetadata _metadata;

    public SharpInferEmbeddingGenerator(Llm llm)
    {
        _llm = llm ?? throw new ArgumentNullException(nameof(llm));
        _metadata = new EmbeddingGeneratorMetadata("sharpinfer", null, llm.ModelId, llm.EmbeddingLength);
    }

    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
                                                                           CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        var result = await _llm.EmbedAsync(values, new LlmEmbeddingOptions { Dimensions = options?.Dimensions }, cancellationToken).ConfigureAwait(false);
        var created = DateTimeOffset.UtcNow;
        var embeddings = new GeneratedEmbeddings<Embedding<float>>(result.Vectors.Count)
        {
            Usage = new UsageDetails { InputTokenCount = result.PromptTokens, TotalTokenCount = result.PromptTokens },
        };
        foreach (var v in result.Vectors)
            embeddings.Add(new Embedding<float>(v) { ModelId = _llm.ModelId, CreatedAt = created });
        return embeddings;
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return _metadata;
        if (serviceType == typeof(Llm)) return _llm;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    public void Dispose()
    {
        // the Llm belongs to whoever created it
    }
}

public static class LlmEmbeddingGeneratorExtensions
{
    /// <summary>This model as a Microsoft.Extensions.AI embedding generator (one unit vector per string).</summary>
    public static IEmbeddingGenerator<string, Embedding<float>> AsEmbeddingGenerator(this Llm llm) => new SharpInferEmbeddingGenerator(llm);
}
