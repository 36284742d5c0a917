using System.Diagnostics.Metrics;

namespace SharpInfer.Engine;

/// <summary>
/// The engine's instruments on the process-wide <c>Meter("SharpInfer")</c>: the engine records, the server exposes
/// them (Prometheus text) and benchmarks read the same numbers. Names follow vLLM's metrics.
/// </summary>
internal sealed class EngineMetrics : IDisposable
{
    public const string MeterName = "SharpInfer";

    public Meter Meter { get; }
    public Histogram<double> TimeToFirstToken { get; }
    public Histogram<double> TimePerOutputToken { get; }
    public Histogram<double> InterTokenLatency { get; }
    public Histogram<double> EndToEndLatency { get; }
    public Histogram<double> QueueTime { get; }
    public Counter<long> PromptTokens { get; }
    public Counter<long> GenerationTokens { get; }
    public Counter<long> RequestsFinished { get; }
    public Counter<long> Preemptions { get; }
    /// <summary>Speculative decoding (vLLM's names): verification rounds with at least one proposal, tokens proposed and verified, tokens accepted.</summary>
    public Counter<long> SpecDrafts { get; }
    public Counter<long> SpecDraftTokens { get; }
    public Counter<long> SpecAcceptedTokens { get; }
    /// <summary>The OpenTelemetry GenAI conventions' server metrics (for OTLP back ends and their GenAI dashboards), with
    /// the attributes <c>gen_ai.operation.name</c>, <c>gen_ai.provider.name</c>, <c>gen_ai.request.model</c> and, for a
    /// request that did not complete, <c>error.type</c>. Recorded once per request, at its end.</summary>
    public Histogram<double> GenAiRequestDuration { get; }
    public Histogram<double> GenAiTimeToFirstToken { get; }
    public Histogram<double> GenAiTimePerOutputToken { get; }
    /// <summary>Prefix of the GenAI instruments' names (the Prometheus exposition leaves them out: the vLLM-named ones
    /// above carry the same measurements).</summary>
    public const string GenAiPrefix = "gen_ai.";

    public EngineMetrics(Func<EngineStats> stats)
    {
        Meter = new Meter(MeterName, "1.0");
        TimeToFirstToken = Meter.CreateHistogram<double>("sharpinfer.time_to_first_token", "s", "Time from arrival to the first generated token");
        TimePerOutputToken = Meter.CreateHistogram<double>("sharpinfer.time_per_output_token", "s", "Mean time per output token after the first, per request");
        InterTokenLatency = Meter.CreateHistogram<double>("sharpinfer.inter_token_latency", "s", "Time between consecutive output tokens");
        EndToEndLatency = Meter.CreateHistogram<double>("sharpinfer.e2e_request_latency", "s", "Time from arrival to the last output");
        QueueTime = Meter.CreateHistogram<double>("sharpinfer.request_queue_time", "s", "Time from arrival to the first scheduled step");
        PromptTokens = Meter.CreateCounter<long>("sharpinfer.prompt_tokens", "tokens", "Prompt tokens processed (recomputation excluded)");
        GenerationTokens = Meter.CreateCounter<long>("sharpinfer.generation_tokens", "tokens", "Tokens generated");
        RequestsFinished = Meter.CreateCounter<long>("sharpinfer.requests_finished", "requests", "Finished requests, by finish_reason");
        Preemptions = Meter.CreateCounter<long>("sharpinfer.preemptions", "preemptions", "Sequences preempted for lack of KV blocks");
        SpecDrafts = Meter.CreateCounter<long>("sharpinfer.spec_decode_num_drafts", "drafts", "Speculative verification rounds with at least one proposed token");
        SpecDraftTokens = Meter.CreateCounter<long>("sharpinfer.spec_decode_num_draft_tokens", "tokens", "Proposed tokens verified by the target model");
        SpecAcceptedTokens = Meter.CreateCounter<long>("sharpinfer.spec_decode_num_accepted_tokens", "tokens", "Proposed tokens the target model accepted");
        // the conventions' advisory bucket boundaries
        GenAiRequestDuration = Meter.CreateHistogram("gen_ai.server.request.duration", "s", "GenAI server request duration (arrival to the last output)",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92] });
        GenAiTimeToFirstToken = Meter.CreateHistogram("gen_ai.server.time_to_first_token", "s", "Time to generate the first token (from arrival)",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0] });
        GenAiTimePerOutputToken = Meter.CreateHistogram("gen_ai.server.time_per_output_token", "s", "Time per output token after the first, per request",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5] });
        Meter.CreateObservableGauge("sharpinfer.requests_running", () => stats().Running, "requests", "Requests in the running batch");
        Meter.CreateObservableGauge("sharpinfer.requests_waiting", () => stats().Waiting, "requests", "Requests waiting to be scheduled");
        Meter.CreateObservableGauge("sharpinfer.kv_cache_usage", () => stats().KvCacheUsage, "1", "Fraction of KV-cache blocks in use");
        Meter.CreateObservableCounter("sharpinfer.prefix_cache_queries", () => stats().PrefixCacheQueries, "tokens", "Prompt tokens looked up in the prefix cache");
        Meter.CreateObservableCounter("sharpinfer.prefix_cache_hits", () => stats().PrefixCacheHits, "tokens", "Prompt tokens found in the prefix cache (memory or disk)");
        Meter.CreateObservableCounter("sharpinfer.prefix_cache_disk_hits", () => stats().PrefixCacheDiskHits, "tokens", "Prompt tokens loaded from the prefix cache's disk tier");
        Meter.CreateObservableCounter("sharpinfer.prefix_cache_evictions", () => stats().PrefixCacheEvictions, "blocks", "Cached KV blocks evicted from memory");
    }

    public void Dispose() => Meter.Dispose();
}

/// <summary>A snapshot of the engine's state.</summary>
internal sealed record EngineStats
{
    public int Running { get; init; }
    public int Waiting { get; init; }
    public double KvCacheUsage { get; init; }
    public int KvBlocksUsed { get; init; }
    public int KvBlocksTotal { get; init; }
    /// <summary>Most blocks in use at once so far (measured when a step's blocks have been allocated, before sliding-window
    /// layers give back what the step's tokens no longer see).</summary>
    public int KvBlocksPeak { get; init; }
    public long Preemptions { get; init; }
    /// <summary>Speculative decoding totals: verification rounds, proposed (verified) tokens, accepted tokens.</summary>
    public long SpecDrafts { get; init; }
    public long SpecDraftTokens { get; init; }
    public long SpecAcceptedTokens { get; init; }
    public long PromptTokens { get; init; }
    public long GenerationTokens { get; init; }
    public long Steps { get; init; }
    /// <summary>Internal KV waste averaged over busy time (1 − stored tokens ÷ allocated slots).</summary>
    public double TimeAveragedKvWaste { get; init; }
    /// <summary>Most sequences that ran in one step.</summary>
    public int MaxConcurrency { get; init; }
    /// <summary>Sequences per step averaged over busy time (each step weighted by its duration): how many sequences
    /// the cache kept running, which a peak does not show (a sequence admitted for one prompt chunk and preempted at
    /// once counts in the peak).</summary>
    public double TimeAveragedConcurrency { get; init; }
    public long FinishedRequests { get; init; }
    /// <summary>Prefix cache, in tokens: looked up at admission, found (memory or disk), found on disk; blocks evicted
    /// from memory; blocks registered now.</summary>
    public long PrefixCacheQueries { get; init; }
    public long PrefixCacheHits { get; init; }
    public long PrefixCacheDiskHits { get; init; }
    public long PrefixCacheEvictions { get; init; }
    public int PrefixCacheBlocks { get; init; }
}
