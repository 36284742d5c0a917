using System.Diagnostics.Metrics;
using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Sampling;
using SharpInfer.Tests.Server;

namespace SharpInfer.Tests.Tracing;

/// <summary>The GenAI conventions' server metrics: one measurement of each per request, equal to the request's own
/// timings, with the operation, provider and model attributes (and error.type only for a request that did not complete).</summary>
public class GenAiMetricsTests
{
    private sealed record Measurement(string Instrument, double Value, Dictionary<string, object?> Tags);

    [Fact]
    public async Task EachRequestRecordsItsDurationTimeToFirstTokenAndTimePerOutputToken()
    {
        using var engine = new LlmEngine(ServerModels.Stories, new EngineOptions
        {
            Threads = 1,
            MaxNumSeqs = 2,
            MaxNumBatchedTokens = 64,
            KvCacheMemoryBytes = 16L << 20,
            KvType = KvDataType.F32,
            ModelName = "stories",
        });
        var measurements = new List<Measurement>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (i, l) =>
            {
                if (ReferenceEquals(i.Meter, engine.Metrics.Meter) && i.Name.StartsWith(EngineMetrics.GenAiPrefix, StringComparison.Ordinal)) l.EnableMeasurementEvents(i);
            },
        };
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) =>
        {
            lock (measurements) measurements.Add(new Measurement(i.Name, v, tags.ToArray().ToDictionary(t => t.Key, t => t.Value)));
        });
        listener.Start();

        var prompt = ServerModels.Stories.Tokenizer.Encode("Once upon a time, there was a little girl");
        RequestOutput? final = null;
        await foreach (var o in engine.AddRequest(new EngineRequest { PromptTokens = prompt, Sampling = SamplingParams.Greedy(6) with { IgnoreEos = true }, Operation = EngineTelemetry.Chat }))
            final = o;
        var t = final!.Timings!;
        Measurement[] got;
        lock (measurements) got = [.. measurements];
        Assert.Equal(t.EndToEnd, Assert.Single(got, m => m.Instrument == "gen_ai.server.request.duration").Value);
        Assert.Equal(t.TimeToFirstToken, Assert.Single(got, m => m.Instrument == "gen_ai.server.time_to_first_token").Value);
        Assert.Equal(t.TimePerOutputToken, Assert.Single(got, m => m.Instrument == "gen_ai.server.time_per_output_token").Value);
        Assert.All(got, m =>
        {
            Assert.Equal("chat", m.Tags["gen_ai.operation.name"]);
            Assert.Equal("sharpinfer", m.Tags["gen_ai.provider.name"]);
            Assert.Equal("stories", m.Tags["gen_ai.request.model"]);
            Assert.False(m.Tags.ContainsKey("error.type"));
        });

        // cancelled before it ran: a duration marked as a cancellation, and no first token to time
        engine.HoldSteps();
        using var cts = new CancellationTokenSource();
        var stream = engine.AddRequest(new EngineRequest { PromptTokens = prompt, Sampling = SamplingParams.Greedy(6) }, cts.Token);
        await cts.CancelAsync();
        engine.ResumeSteps();
        await foreach (var _ in stream) { }
        lock (measurements) got = [.. measurements.Skip(3)];
        var aborted = Assert.Single(got);
        Assert.Equal("gen_ai.server.request.duration", aborted.Instrument);
        Assert.Equal("cancelled", aborted.Tags["error.type"]);
        Assert.Equal("text_completion", aborted.Tags["gen_ai.operation.name"]);
    }
}
