using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using SharpInfer.Engine;

namespace SharpInfer.Server.Metrics;

/// <summary>
/// Collects one engine's instruments (the <c>Meter("SharpInfer")</c> instance it was given) with a
/// <see cref="MeterListener"/> and writes them in the Prometheus text exposition format 0.0.4, named like vLLM's
/// (<c>sharpinfer:time_to_first_token_seconds</c>, ...) with a <c>model_name</c> label on every series. Histograms
/// use vLLM's buckets; counters and histograms are cumulative since the exporter started; observable gauges are
/// read at scrape time. Instruments it has no entry for are exported under a name derived from theirs, except the
/// OpenTelemetry GenAI ones (<c>gen_ai.*</c>, for OTLP), whose measurements the vLLM-named ones already carry.
/// </summary>
internal sealed class PrometheusExporter : IDisposable
{
    /// <summary>Content type of the exposition format.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private enum Kind { Counter, Gauge, Histogram }

    private sealed record Spec(string Name, Kind Kind, string Help, double[]? Buckets = null, string[]? Seed = null);

    private static readonly double[] TtftBuckets =
        [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];
    private static readonly double[] TokenBuckets =
        [0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
    private static readonly double[] RequestBuckets =
        [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];

    /// <summary>Engine instrument → exposition (vLLM's names with the <c>sharpinfer:</c> prefix).</summary>
    private static readonly Dictionary<string, Spec> Specs = new()
    {
        ["sharpinfer.time_to_first_token"] = new("sharpinfer:time_to_first_token_seconds", Kind.Histogram, "Histogram of time to first token in seconds.", TtftBuckets),
        ["sharpinfer.time_per_output_token"] = new("sharpinfer:time_per_output_token_seconds", Kind.Histogram, "Histogram of time per output token in seconds (per request, after the first token).", TokenBuckets),
        ["sharpinfer.inter_token_latency"] = new("sharpinfer:inter_token_latency_seconds", Kind.Histogram, "Histogram of inter-token latency in seconds.", TokenBuckets),
        ["sharpinfer.e2e_request_latency"] = new("sharpinfer:e2e_request_latency_seconds", Kind.Histogram, "Histogram of end to end request latency in seconds.", RequestBuckets),
        ["sharpinfer.request_queue_time"] = new("sharpinfer:request_queue_time_seconds", Kind.Histogram, "Histogram of time spent waiting in the queue in seconds.", RequestBuckets),
        ["sharpinfer.prompt_tokens"] = new("sharpinfer:prompt_tokens_total", Kind.Counter, "Number of prefill tokens processed."),
        ["sharpinfer.generation_tokens"] = new("sharpinfer:generation_tokens_total", Kind.Counter, "Number of generation tokens processed."),
        ["sharpinfer.requests_finished"] = new("sharpinfer:request_success_total", Kind.Counter, "Count of finished requests, by finished_reason (stop, length, abort).",
            Seed: ["stop", "length", "abort"]),
        ["sharpinfer.preemptions"] = new("sharpinfer:num_preemptions_total", Kind.Counter, "Cumulative number of preemptions."),
        ["sharpinfer.requests_running"] = new("sharpinfer:num_requests_running", Kind.Gauge, "Number of requests in the running batch."),
        ["sharpinfer.requests_waiting"] = new("sharpinfer:num_requests_waiting", Kind.Gauge, "Number of requests waiting to be processed."),
        ["sharpinfer.kv_cache_usage"] = new("sharpinfer:kv_cache_usage_perc", Kind.Gauge, "KV-cache usage. 1 means 100 percent usage."),
    };

    /// <summary>Tag keys renamed to vLLM's label names.</summary>
    private static string LabelName(string tag) => tag == "finish_reason" ? "finished_reason" : Sanitize(tag);

    private sealed class Series
    {
        public double Value;
        public long[]? Buckets;   // non-cumulative counts per bucket, last = +Inf
        public double Sum;
        public long Count;
    }

    private sealed class Family(Spec spec, int order)
    {
        public readonly Spec Spec = spec;
        public readonly int Order = order;
        public readonly Dictionary<string, Series> Series = new(StringComparer.Ordinal);   // key: extra labels text
    }

    private readonly Meter _meter;
    private readonly string _baseLabels;
    private readonly MeterListener _listener;
    private readonly Dictionary<Instrument, Family> _families = [];
    private readonly Lock _lock = new();

    public PrometheusExporter(Meter meter, string modelName)
    {
        _meter = meter;
        _baseLabels = $"model_name=\"{Escape(modelName)}\"";
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (!ReferenceEquals(instrument.Meter, _meter)) return;
                if (instrument.Name.StartsWith(EngineMetrics.GenAiPrefix, StringComparison.Ordinal)) return;   // OTLP's; the vLLM-named ones carry the same
                lock (_lock)
                {
                    var family = new Family(SpecFor(instrument), _families.Count);
                    if (family.Spec.Seed is { } seed)
                        foreach (var v in seed) family.Series[$"{LabelName("finish_reason")}=\"{Escape(v)}\""] = new Series();
                    if (family.Spec.Kind == Kind.Counter && family.Spec.Seed is null) family.Series[""] = new Series();
                    _families[instrument] = family;
                }
                listener.EnableMeasurementEvents(instrument, this);
            },
            MeasurementsCompleted = (instrument, _) => { },
        };
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<float>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    private static Spec SpecFor(Instrument instrument)
    {
        if (Specs.TryGetValue(instrument.Name, out var spec)) return spec;
        // Not known here: derive the name from the instrument's (sharpinfer.foo_bar → sharpinfer:foo_bar[_seconds][_total]).
        var name = instrument.Name.StartsWith("sharpinfer.", StringComparison.Ordinal)
            ? "sharpinfer:" + Sanitize(instrument.Name["sharpinfer.".Length..]) : "sharpinfer:" + Sanitize(instrument.Name);
        if (instrument.Unit == "s" && !name.EndsWith("_seconds", StringComparison.Ordinal)) name += "_seconds";
        var help = instrument.Description ?? instrument.Name;
        var type = instrument.GetType();
        var generic = type.IsGenericType ? type.GetGenericTypeDefinition() : type;
        if (generic == typeof(Histogram<>)) return new Spec(name, Kind.Histogram, help, instrument.Unit == "s" ? RequestBuckets : TokenBuckets);
        if (generic == typeof(Counter<>) || generic == typeof(ObservableCounter<>)) return new Spec(name + "_total", Kind.Counter, help);
        return new Spec(name, Kind.Gauge, help);
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var labels = tags.IsEmpty ? "" : FormatTags(tags);
        lock (_lock)
        {
            if (!_families.TryGetValue(instrument, out var family)) return;
            if (!family.Series.TryGetValue(labels, out var s)) family.Series[labels] = s = new Series();
            switch (family.Spec.Kind)
            {
                // an observable counter reports its running total (e.g. prefix-cache hits), a plain one increments
                case Kind.Counter when instrument.IsObservable: s.Value = value; break;
                case Kind.Counter: s.Value += value; break;
                case Kind.Gauge: s.Value = value; break;
                case Kind.Histogram:
                    var bounds = family.Spec.Buckets!;
                    s.Buckets ??= new long[bounds.Length + 1];
                    int b = 0;
                    while (b < bounds.Length && value > bounds[b]) b++;
                    s.Buckets[b]++;
                    s.Sum += value;
                    s.Count++;
                    break;
            }
        }
    }

    private static string FormatTags(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var pairs = new List<(string, string)>(tags.Length);
        foreach (var t in tags) pairs.Add((LabelName(t.Key), Convert.ToString(t.Value, CultureInfo.InvariantCulture) ?? ""));
        pairs.Sort((a, b) => string.CompareOrdinal(a.Item1, b.Item1));
        return string.Join(",", pairs.Select(p => $"{p.Item1}=\"{Escape(p.Item2)}\""));
    }

    /// <summary>Writes every family in the text format (gauges are read now).</summary>
    public void Write(StringBuilder sb)
    {
        _listener.RecordObservableInstruments();
        lock (_lock)
        {
            foreach (var family in _families.Values.OrderBy(f => f.Order))
            {
                var spec = family.Spec;
                sb.Append("# HELP ").Append(spec.Name).Append(' ').Append(EscapeHelp(spec.Help)).Append('\n');
                sb.Append("# TYPE ").Append(spec.Name).Append(' ').Append(spec.Kind switch
                {
                    Kind.Counter => "counter",
                    Kind.Gauge => "gauge",
                    _ => "histogram",
                }).Append('\n');
                if (spec.Kind == Kind.Histogram && family.Series.Count == 0) family.Series[""] = new Series();
                foreach (var (extra, s) in family.Series.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    string labels = extra.Length == 0 ? _baseLabels : _baseLabels + "," + extra;
                    if (spec.Kind != Kind.Histogram)
                    {
                        sb.Append(spec.Name).Append('{').Append(labels).Append("} ").Append(Number(s.Value)).Append('\n');
                        continue;
                    }
                    var bounds = spec.Buckets!;
                    long cumulative = 0;
                    for (int b = 0; b <= bounds.Length; b++)
                    {
                        cumulative += s.Buckets?[b] ?? 0;
                        sb.Append(spec.Name).Append("_bucket{").Append(labels).Append(",le=\"")
                          .Append(b < bounds.Length ? Number(bounds[b]) : "+Inf").Append("\"} ").Append(cumulative).Append('\n');
                    }
                    sb.Append(spec.Name).Append("_sum{").Append(labels).Append("} ").Append(Number(s.Sum)).Append('\n');
                    sb.Append(spec.Name).Append("_count{").Append(labels).Append("} ").Append(s.Count).Append('\n');
                }
            }
        }
    }

    public string Scrape()
    {
        var sb = new StringBuilder(8192);
        Write(sb);
        return sb.ToString();
    }

    private static string Number(double v) =>
        double.IsPositiveInfinity(v) ? "+Inf" : double.IsNegativeInfinity(v) ? "-Inf" : double.IsNaN(v) ? "NaN"
        : v.ToString("R", CultureInfo.InvariantCulture);

    private static string Sanitize(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (var c in name) sb.Append(char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_');
        if (sb.Length == 0 || char.IsAsciiDigit(sb[0])) sb.Insert(0, '_');
        return sb.ToString();
    }

    private static string Escape(string v) => v.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
    private static string EscapeHelp(string v) => v.Replace("\\", "\\\\").Replace("\n", "\\n");

    public void Dispose() => _listener.Dispose();
}
