using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using SharpInfer.Engine;

namespace SharpInfer.Server.Metrics;

/// <summary>
/// llama-server's Prometheus names (<c>llamacpp:</c> prefix), written beside ours on <c>/metrics</c> so its dashboards
/// work unchanged. Counts come from the engine's statistics; the prompt and generation seconds are measured per
/// request from the engine's latency instruments: prompt time = time to first token − queue time, generation time =
/// end-to-end latency − time to first token.
/// </summary>
internal sealed class LlamaCppMetrics : IDisposable
{
    private readonly MeterListener _listener;
    private readonly Lock _lock = new();
    private readonly string _labels;
    private double _ttftSum, _queueSum, _e2eSum;

    /// <summary>Every sample carries the <c>model_name</c> label like ours (llama-server's have no labels; a query by
    /// name matches either way).</summary>
    public LlamaCppMetrics(Meter meter, string modelName)
    {
        _labels = "{model_name=\"" + modelName.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n") + "\"}";
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter, meter) && instrument.Name is "sharpinfer.time_to_first_token" or "sharpinfer.request_queue_time" or "sharpinfer.e2e_request_latency")
                    listener.EnableMeasurementEvents(instrument);
            },
        };
        _listener.SetMeasurementEventCallback<double>((i, v, _, _) =>
        {
            lock (_lock)
            {
                switch (i.Name)
                {
                    case "sharpinfer.time_to_first_token": _ttftSum += v; break;
                    case "sharpinfer.request_queue_time": _queueSum += v; break;
                    default: _e2eSum += v; break;
                }
            }
        });
        _listener.Start();
    }

    /// <summary>Writes the metrics (llama-server's n_tokens_max and n_busy_slots_per_decode are left out: the engine
    /// does not track them).</summary>
    public void Write(StringBuilder sb, EngineStats s)
    {
        double promptSeconds, generationSeconds;
        lock (_lock)
        {
            promptSeconds = Math.Max(0, _ttftSum - _queueSum);
            generationSeconds = Math.Max(0, _e2eSum - _ttftSum);
        }
        Metric(sb, "prompt_tokens_total", "counter", "Number of prompt tokens processed.", s.PromptTokens);
        Metric(sb, "prompt_seconds_total", "counter", "Prompt process time", promptSeconds);
        Metric(sb, "tokens_predicted_total", "counter", "Number of generation tokens processed.", s.GenerationTokens);
        Metric(sb, "tokens_predicted_seconds_total", "counter", "Predict process time", generationSeconds);
        Metric(sb, "n_decode_total", "counter", "Total number of llama_decode() calls", s.Steps);
        Metric(sb, "spec_decode_num_draft_tokens_total", "counter", "Total draft tokens generated", s.SpecDraftTokens);
        Metric(sb, "spec_decode_num_accepted_tokens_total", "counter", "Total draft tokens accepted by the target model", s.SpecAcceptedTokens);
        Metric(sb, "spec_decode_num_drafts_total", "counter", "Total speculative decoding verification steps", s.SpecDrafts);
        Metric(sb, "prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.", promptSeconds > 0 ? s.PromptTokens / promptSeconds : 0);
        Metric(sb, "predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s.", generationSeconds > 0 ? s.GenerationTokens / generationSeconds : 0);
        Metric(sb, "requests_processing", "gauge", "Number of requests processing.", s.Running);
        Metric(sb, "requests_deferred", "gauge", "Number of requests deferred.", s.Waiting);
    }

    private void Metric(StringBuilder sb, string name, string type, string help, double value) =>
        sb.Append("# HELP llamacpp:").Append(name).Append(' ').Append(help).Append('\n')
          .Append("# TYPE llamacpp:").Append(name).Append(' ').Append(type).Append('\n')
          .Append("llamacpp:").Append(name).Append(_labels).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');

    public void Dispose() => _listener.Dispose();
}
