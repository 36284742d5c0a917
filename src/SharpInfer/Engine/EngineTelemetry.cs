using System.Diagnostics;
using SharpInfer.Sampling;

namespace SharpInfer.Engine;

/// <summary>
/// Request traces on <c>ActivitySource("SharpInfer")</c>: one span per engine request following the OpenTelemetry
/// GenAI semantic conventions (name <c>"{gen_ai.operation.name} {gen_ai.request.model}"</c>, kind internal: the model
/// runs in this process), parented under whatever activity is current where the request is added (an ASP.NET Core
/// request, a Microsoft.Extensions.AI <c>UseOpenTelemetry()</c> span), with three child spans for the queue, the
/// prefill and the decode. A span exists only while a listener is attached (an OpenTelemetry TracerProvider with
/// <c>AddSource("SharpInfer")</c>, or an <see cref="ActivityListener"/>); without one nothing is created or allocated.
/// Nothing is recorded per token: the span starts when the request is added and everything else is written once,
/// when the request finishes (the child spans get their start and end times from the request's timestamps).
/// </summary>
internal static class EngineTelemetry
{
    /// <summary>The name of the <see cref="ActivitySource"/> (and of the engine's <c>Meter</c>, <see cref="EngineMetrics.MeterName"/>).</summary>
    public const string SourceName = "SharpInfer";

    /// <summary><c>gen_ai.provider.name</c> of every span (the conventions' custom value for a provider they do not list).</summary>
    public const string ProviderName = "sharpinfer";

    /// <summary><c>gen_ai.operation.name</c> values (the conventions' well-known ones, and <see cref="Rerank"/> of ours).</summary>
    public const string Chat = "chat", TextCompletion = "text_completion", Embeddings = "embeddings", Rerank = "rerank";

    /// <summary>Child span names.</summary>
    public const string QueueSpan = "sharpinfer.queue", PrefillSpan = "sharpinfer.prefill", DecodeSpan = "sharpinfer.decode";

    internal static readonly ActivitySource Source = new(SourceName, typeof(EngineTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary>Starts the span of a request being added (on the caller's thread, so that it parents under the caller's
    /// current activity); null when nobody listens or the sampler drops it. The caller's <see cref="Activity.Current"/>
    /// is left as it was: the span belongs to the request, and the caller's later work (another choice's request, the
    /// rest of an HTTP handler) must not nest under it.</summary>
    internal static Activity? StartRequest(string operation, string model, SamplingParams p, bool pooling)
    {
        if (!Source.HasListeners()) return null;
        var previous = Activity.Current;
        var a = Source.StartActivity(operation + " " + model, ActivityKind.Internal);
        Activity.Current = previous;
        if (a is not { IsAllDataRequested: true }) return a;
        a.SetTag("gen_ai.operation.name", operation);
        a.SetTag("gen_ai.provider.name", ProviderName);
        a.SetTag("gen_ai.request.model", model);
        if (pooling) return a;
        a.SetTag("gen_ai.request.max_tokens", p.MaxTokens);
        a.SetTag("gen_ai.request.temperature", (double)p.Temperature);
        a.SetTag("gen_ai.request.top_p", (double)p.TopP);
        if (p.TopK > 0) a.SetTag("gen_ai.request.top_k", p.TopK);
        if (p.FrequencyPenalty != 0) a.SetTag("gen_ai.request.frequency_penalty", (double)p.FrequencyPenalty);
        if (p.PresencePenalty != 0) a.SetTag("gen_ai.request.presence_penalty", (double)p.PresencePenalty);
        if (p.Seed is { } seed) a.SetTag("gen_ai.request.seed", unchecked((long)seed));
        if (p.Stop.Count > 0) a.SetTag("gen_ai.request.stop_sequences", p.Stop.ToArray());
        return a;
    }

    /// <summary>What a finished request reports on its span: the outcome, the usage and the state-change timestamps
    /// (<see cref="Stopwatch"/> ticks; 0 = never reached).</summary>
    internal readonly record struct Outcome(
        string ResponseId, string Model, FinishReason Reason, Exception? Error, RequestTimings Timings,
        long Arrival, long FirstScheduled, long FirstToken, long LastToken, long End, bool Pooling, bool Speculative);

    /// <summary>Writes the outcome on the span, adds the queue / prefill / decode child spans and ends it (on the engine's
    /// thread, whose own <see cref="Activity.Current"/> is kept as it was).</summary>
    internal static void EndRequest(Activity a, in Outcome o)
    {
        var keep = Activity.Current;
        try
        {
            if (a.IsAllDataRequested)
            {
                Tag(a, o);
                AddPhases(a, o);
            }
            if (o.Error != null) a.SetStatus(ActivityStatusCode.Error, o.Error.Message);
            a.SetEndTime(At(a, o.Arrival, o.End).UtcDateTime);
            a.Stop();
        }
        finally
        {
            Activity.Current = keep;
        }
    }

    /// <summary><c>error.type</c> of a request that did not complete: an engine failure names its exception type, an
    /// abort without one is the caller's cancellation.</summary>
    internal static string ErrorType(Exception? error) => error?.GetType().FullName ?? "cancelled";

    private static void Tag(Activity a, in Outcome o)
    {
        var t = o.Timings;
        a.SetTag("gen_ai.response.id", o.ResponseId);
        a.SetTag("gen_ai.response.model", o.Model);
        a.SetTag("gen_ai.response.finish_reasons", new[] { o.Reason.ToApiString() });
        a.SetTag("gen_ai.usage.input_tokens", t.PromptTokens);
        if (!o.Pooling) a.SetTag("gen_ai.usage.output_tokens", t.CompletionTokens);
        a.SetTag("gen_ai.usage.cache_read.input_tokens", t.CachedPromptTokens);
        if (o.Error != null || o.Reason == FinishReason.Abort) a.SetTag("error.type", ErrorType(o.Error));
        a.SetTag("sharpinfer.queue_time", t.QueueTime);
        if (!o.Pooling)
        {
            a.SetTag("sharpinfer.time_to_first_token", t.TimeToFirstToken);
            a.SetTag("sharpinfer.prefill_time", t.PrefillTime);
            a.SetTag("sharpinfer.decode_time", t.DecodeTime);
            if (t.CompletionTokens > 1) a.SetTag("sharpinfer.time_per_output_token", t.TimePerOutputToken);
        }
        if (t.Preemptions > 0) a.SetTag("sharpinfer.preemptions", t.Preemptions);
        if (o.Speculative)
        {
            a.SetTag("sharpinfer.speculative.draft_tokens", t.DraftTokens);
            a.SetTag("sharpinfer.speculative.accepted_tokens", t.DraftAccepted);
            if (t.DraftTokens > 0) a.SetTag("sharpinfer.speculative.acceptance_rate", t.DraftAccepted / (double)t.DraftTokens);
        }
    }

    /// <summary>The request's phases as child spans: queued (arrival to the first scheduled step), prefill (to the first
    /// token; for a pooling request, to its end) and decode (first to last token). A phase never reached is left out.</summary>
    private static void AddPhases(Activity a, in Outcome o)
    {
        if (o.FirstScheduled == 0)
        {
            Phase(a, QueueSpan, o.Arrival, o.Arrival, o.End)?.Stop();
            return;
        }
        Phase(a, QueueSpan, o.Arrival, o.Arrival, o.FirstScheduled)?.Stop();
        long prefillEnd = o.FirstToken != 0 ? o.FirstToken : o.End;
        if (Phase(a, PrefillSpan, o.Arrival, o.FirstScheduled, prefillEnd) is { } prefill)
        {
            prefill.SetTag("sharpinfer.prefill.cached_tokens", o.Timings.CachedPromptTokens);
            prefill.SetTag("sharpinfer.prefill.computed_tokens", o.Timings.PromptTokens - o.Timings.CachedPromptTokens);
            prefill.Stop();
        }
        if (o.FirstToken == 0) return;
        if (Phase(a, DecodeSpan, o.Arrival, o.FirstToken, o.LastToken) is { } decode)
        {
            decode.SetTag("gen_ai.usage.output_tokens", o.Timings.CompletionTokens);
            decode.Stop();
        }
    }

    /// <summary>A started child span of <paramref name="parent"/> from <paramref name="from"/> to <paramref name="to"/>,
    /// for the caller to tag and stop; null when the sampler drops it.</summary>
    private static Activity? Phase(Activity parent, string name, long arrival, long from, long to)
    {
        var child = Source.StartActivity(name, ActivityKind.Internal, parent.Context, startTime: At(parent, arrival, from));
        child?.SetEndTime(At(parent, arrival, to).UtcDateTime);
        return child;
    }

    /// <summary>A <see cref="Stopwatch"/> timestamp as wall-clock time: the span's start (taken at arrival) plus the
    /// elapsed time since arrival.</summary>
    private static DateTimeOffset At(Activity a, long arrival, long ts) =>
        new DateTimeOffset(a.StartTimeUtc, TimeSpan.Zero) + TimeSpan.FromSeconds(Math.Max(0, ts - arrival) / (double)Stopwatch.Frequency);
}
