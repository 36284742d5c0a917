using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Sampling;

namespace SharpInfer.Engine;

/// <summary>
/// A synchronous, one-caller view of an <see cref="LlmEngine"/> for the CLI's <c>run</c> and <c>chat</c>: an engine
/// with one sequence seat and a KV cache sized for the context, and a blocking <see cref="Generate"/> that yields one
/// event per token. Every per-token rule (sampling, log-probs, end of generation, stop strings, limits) is the
/// engine's; a new prompt reuses the KV of earlier prompts and replies through the engine's prefix cache, block by
/// block. For many concurrent requests use the engine directly.
/// </summary>
internal sealed class InferenceSession : IDisposable
{
    private readonly LlmEngine _engine;

    public SessionOptions Options { get; }
    public Model Model => _engine.Model;
    public LlmEngine Engine => _engine;
    /// <summary>Longest prompt + output, in tokens (the context size, capped by the model's).</summary>
    public int ContextLength => _engine.MaxModelLen;
    public GenerationTimings LastTimings { get; private set; } = new();
    /// <summary>Bytes of KV cache allocated for the context.</summary>
    public long KvCacheBytes => _engine.KvCacheBytes;

    public InferenceSession(Model model, SessionOptions? options = null)
    {
        Options = (options ?? new SessionOptions()).Validate();
        int context = Math.Min(Options.ContextLength, model.Config.TrainedContextLength);
        long kvBytes = ModelRunner.KvBytesPerToken(model.Config, Options.KvType, Options.KvValueType) * BlockTable.BlocksFor(context, Options.KvBlockSize) * Options.KvBlockSize;
        _engine = new LlmEngine(model, new EngineOptions
        {
            Threads = Options.Threads,
            MaxModelLen = context,
            MaxNumSeqs = 1,
            MaxNumBatchedTokens = Math.Max(1, Math.Min(Options.BatchSize, context)),
            MaxQueuedRequests = 1,
            KvCacheMemoryBytes = kvBytes,
            BlockSize = Options.KvBlockSize,
            KvType = Options.KvType,
            KvValueType = Options.KvValueType,
            Precision = Options.Precision,
            Isa = Options.Isa,
            EnablePrefixCaching = Options.PrefixCaching,
            Speculative = Options.Speculative,
        });
    }

    /// <summary>Kept for callers that start over; the prefix cache needs no reset (a hit gives the same result as a
    /// recomputation, and unused blocks are evicted as needed).</summary>
    public void Reset() { }

    /// <summary>
    /// Generates a continuation of <paramref name="prompt"/>. Yields one event per generated token (text may be empty
    /// while bytes or a possible stop string are pending); the last event carries the finish reason. Cancelling stops
    /// at the next event: no token is yielded after the cancellation is seen.
    /// </summary>
    public IEnumerable<GenerationEvent> Generate(IReadOnlyList<int> prompt, SamplingParams sampling, CancellationToken cancellation = default)
    {
        var timings = new GenerationTimings { PromptTokens = prompt.Count };
        LastTimings = timings;
        using var abort = new CancellationTokenSource();
        var outputs = _engine.AddRequest(new EngineRequest
        {
            PromptTokens = prompt as int[] ?? [.. prompt],
            Sampling = sampling,
        }, abort.Token).GetAsyncEnumerator(CancellationToken.None);
        int sampled = 0;
        try
        {
            while (outputs.MoveNextAsync().AsTask().GetAwaiter().GetResult())
            {
                var o = outputs.Current;
                if (cancellation.IsCancellationRequested)
                {
                    abort.Cancel();
                    timings.GeneratedTokens = sampled;
                    yield return new GenerationEvent(-1, "", 0, null, FinishReason.Abort);
                    yield break;
                }
                if (o.Error != null) throw new SharpInferException(o.Error);
                timings.CachedPromptTokens = o.CachedPromptTokens;
                int token = o.TokenIds.Length > 0 ? o.TokenIds[0] : -1;
                if (token >= 0) sampled++;
                var lp = o.LogProbs is { Count: > 0 } l ? l[0] : null;
                if (o.Timings is { } t)
                {
                    timings.GeneratedTokens = o.CompletionTokens;
                    timings.PromptMs = t.PrefillTime * 1000;
                    timings.GenerationMs = t.DecodeTime * 1000;
                    // steps after the first token: one per generated token, plus the one that sampled end-of-generation
                    int steps = sampled + (o.Finish == FinishReason.Stop && token < 0 ? 1 : 0);
                    timings.DecodePasses = Math.Max(0, steps - 1);
                    timings.DraftTokens = t.DraftTokens;
                    timings.DraftAccepted = t.DraftAccepted;
                }
                yield return new GenerationEvent(token, o.Text, lp?.LogProb ?? 0, lp?.Top, o.Finish);
                if (o.IsFinal) yield break;
            }
        }
        finally
        {
            outputs.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    public void Dispose() => _engine.Dispose();
}
