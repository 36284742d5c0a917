namespace SharpInfer.Sampling;

/// <summary>
/// A per-sequence hook that edits the raw logits before every sampling rule (bias, penalties, temperature,
/// truncations) and learns each accepted token. Grammar constraints use it to mask tokens to -infinity.
/// Implementations run on the engine thread once per token, so they must not allocate in steady state.
/// </summary>
internal interface ILogitsProcessor
{
    /// <summary>Edits the logits of the next token in place.</summary>
    void Process(Span<float> logits);

    /// <summary>Called with each token the sequence actually generated.</summary>
    void Accept(int token);
}

/// <summary>Creates a fresh <see cref="ILogitsProcessor"/> per request: SamplingParams is shared and immutable,
/// while a processor holds the state of one sequence.</summary>
internal interface ILogitsProcessorFactory
{
    ILogitsProcessor Create();
}
