namespace SharpInfer.Engine.Pooling;

/// <summary>
/// What a pooling request (an embedding or a rerank score) wants. <see cref="Type"/> null: the engine's pooling
/// (<see cref="EngineOptions.Pooling"/>, else the model's <c>pooling_type</c>, else mean). <see cref="Normalize"/> is
/// llama.cpp's <c>--embd-normalize</c>: −1 none, 0 max-absolute scaled to the int16 range, 2 Euclidean (L2, the
/// default), any other p a p-norm; rank scores are never normalized. <see cref="Dimensions"/> keeps the first n values
/// (Matryoshka truncation) before normalizing, so a truncated vector is a unit vector again.
/// </summary>
internal sealed record PoolingParams
{
    public PoolingType? Type { get; init; }
    public int Normalize { get; init; } = 2;
    public int? Dimensions { get; init; }

    public static PoolingParams Default { get; } = new();
}

/// <summary>The result of a pooling request: one vector, or one per prompt token with <see cref="PoolingType.None"/>;
/// with <see cref="PoolingType.Rank"/>, the classification head's outputs (the score is the first).</summary>
internal sealed record PoolingOutput(PoolingType Type, float[][] Vectors);
