using SharpInfer.Engine.Pooling;
using SharpInfer.Sampling;

namespace SharpInfer.Engine;

/// <summary>A generation request for <see cref="LlmEngine"/>: prompt token ids (already templated and tokenized) and
/// sampling parameters. Lower <see cref="Priority"/> values are served first (vLLM's convention); ties go in arrival order.</summary>
internal sealed record EngineRequest
{
    public required int[] PromptTokens { get; init; }
    public required SamplingParams Sampling { get; init; }
    public string? RequestId { get; init; }
    public int Priority { get; init; }
    /// <summary>vLLM's <c>cache_salt</c>: requests with different salts never share prefix-cache blocks (tenant isolation;
    /// a cache hit is otherwise observable through timing).</summary>
    public string? CacheSalt { get; init; }
    /// <summary>Set for a pooling request (embedding, rerank score): the prompt runs through the model in the same
    /// batches as generation, nothing is sampled, and the final output carries <see cref="RequestOutput.Pooling"/>.
    /// <see cref="Sampling"/> is then ignored.</summary>
    public PoolingParams? Pooling { get; init; }
    /// <summary>The request's <c>gen_ai.operation.name</c> in traces (<see cref="EngineTelemetry.Chat"/>, ...); null =
    /// <see cref="EngineTelemetry.TextCompletion"/> for generation, <see cref="EngineTelemetry.Embeddings"/> (or
    /// <see cref="EngineTelemetry.Rerank"/> for rank pooling) for pooling.</summary>
    public string? Operation { get; init; }
    /// <summary>The id the caller answers with (<c>gen_ai.response.id</c> in traces, e.g. the <c>chatcmpl-</c> id of a
    /// chat completion whose choices are several requests); null = <see cref="RequestId"/>.</summary>
    public string? ResponseId { get; init; }
    /// <summary>Control tokens that appear in <see cref="RequestOutput.Text"/> as their text (llama-server's preserved
    /// tokens: the markers a chat format's reply parser needs, e.g. gpt-oss's <c>&lt;|channel|&gt;</c>); other control
    /// tokens render as nothing. Null: none.</summary>
    public int[]? PreservedTokens { get; init; }

    /// <summary>Report the prompt's computation as it goes (llama-server's <c>return_progress</c>): an output with
    /// <see cref="RequestOutput.Progress"/> when the request is first scheduled and after each prompt chunk the engine
    /// computes, before the first token. Off: no such outputs.</summary>
    public bool ReportPromptProgress { get; init; }

    /// <summary>Context shift (llama-server's <c>--context-shift</c>): when the sequence fills the context before
    /// <see cref="SamplingParams.MaxTokens"/>, keep its first this-many tokens, drop half of the rest and go on (the
    /// sequence is computed again). Null: no shift, the context's end ends the answer (<see cref="FinishReason.Length"/>).</summary>
    public int? ContextShiftKeep { get; init; }

    /// <summary>A pooling request for <paramref name="prompt"/>.</summary>
    public static EngineRequest ForPooling(int[] prompt, PoolingParams? pooling = null, string? requestId = null, int priority = 0) => new()
    {
        PromptTokens = prompt,
        Sampling = PoolingSampling,
        Pooling = pooling ?? PoolingParams.Default,
        RequestId = requestId,
        Priority = priority,
    };

    private static readonly SamplingParams PoolingSampling = SamplingParams.Greedy(1);
}

/// <summary>A token's log-probability and the most likely alternatives at that step (raw-logit log-softmax).</summary>
internal sealed record TokenLogProbs(int TokenId, float LogProb, TokenLogProb[] Top);

/// <summary>What a request produced since its previous output: new token ids, the text they complete, their
/// log-probs when asked for, and, on the last output, the finish reason and timings.</summary>
internal sealed record RequestOutput
{
    public required string RequestId { get; init; }
    public required int[] TokenIds { get; init; }
    public required string Text { get; init; }
    public IReadOnlyList<TokenLogProbs>? LogProbs { get; init; }
    public FinishReason? Finish { get; init; }
    public int PromptTokens { get; init; }
    /// <summary>Prompt tokens whose keys and values came from the prefix cache (OpenAI's <c>cached_tokens</c>).</summary>
    public int CachedPromptTokens { get; init; }
    /// <summary>Tokens generated so far (all outputs of this request).</summary>
    public int CompletionTokens { get; init; }
    public RequestTimings? Timings { get; init; }
    /// <summary>On a final output with <see cref="FinishReason.Abort"/>: why the engine gave up on the request, when it
    /// was not the caller's cancellation (e.g. an internal failure); null otherwise.</summary>
    public string? Error { get; init; }
    /// <summary>A pooling request's result, on its final output.</summary>
    public PoolingOutput? Pooling { get; init; }
    /// <summary>On the final output: the context was shifted at least once (tokens were dropped from the sequence).</summary>
    public bool ContextShifted { get; init; }
    /// <summary>Set on the outputs that report the prompt's progress (<see cref="EngineRequest.ReportPromptProgress"/>);
    /// they carry no tokens and no text.</summary>
    public PromptProgress? Progress { get; init; }
    public bool IsFinal => Finish != null;
}

/// <summary>How far a request's prompt is computed: of <see cref="Total"/> prompt tokens, <see cref="Cached"/> came
/// from the prefix cache and <see cref="Processed"/> (cached ones included) have keys and values; <see cref="Milliseconds"/>
/// since the request was first scheduled (llama-server's prompt_progress).</summary>
internal sealed record PromptProgress(int Total, int Cached, int Processed, double Milliseconds);

/// <summary>Per-request latencies in seconds (vLLM's request metrics).</summary>
internal sealed record RequestTimings
{
    /// <summary>Arrival to first scheduled step.</summary>
    public double QueueTime { get; init; }
    /// <summary>Arrival to the first generated token.</summary>
    public double TimeToFirstToken { get; init; }
    /// <summary>Arrival to the last output.</summary>
    public double EndToEnd { get; init; }
    /// <summary>Mean time per output token after the first: (e2e − ttft) / (tokens − 1).</summary>
    public double TimePerOutputToken { get; init; }
    public int PromptTokens { get; init; }
    public int CompletionTokens { get; init; }
    /// <summary>Prompt tokens served from the prefix cache (not computed).</summary>
    public int CachedPromptTokens { get; init; }
    /// <summary>First scheduled step to the first generated token (the prompt's computation).</summary>
    public double PrefillTime { get; init; }
    /// <summary>First to last generated token.</summary>
    public double DecodeTime { get; init; }
    public int Preemptions { get; init; }
    /// <summary>Speculative decoding: proposed tokens verified for this request, and how many were accepted
    /// (llama.cpp's draft_n / draft_n_accepted).</summary>
    public int DraftTokens { get; init; }
    public int DraftAccepted { get; init; }
}

/// <summary>The engine refused a request because its waiting queue is full (HTTP 429).</summary>
public sealed class EngineOverloadedException(int queued) : SharpInferException($"the server is busy: {queued} requests are already waiting")
{
    public int Queued { get; } = queued;
}

/// <summary>The engine is not accepting requests (stopping or stopped).</summary>
public sealed class EngineStoppedException() : SharpInferException("the engine is shutting down and accepts no new requests");
