using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SharpInfer.Server.Metrics;

namespace SharpInfer.Tests.Server;

/// <summary>/metrics: Prometheus text format 0.0.4 with vLLM-like names, and the numbers follow the requests.</summary>
public partial class MetricsTests
{
    public sealed record Sample(string Name, Dictionary<string, string> Labels, double Value);

    public sealed class Exposition
    {
        public Dictionary<string, string> Types { get; } = [];
        public Dictionary<string, string> Help { get; } = [];
        public List<Sample> Samples { get; } = [];

        public double Value(string name, params (string Key, string Value)[] labels) =>
            Samples.Single(s => s.Name == name && labels.All(l => s.Labels.GetValueOrDefault(l.Key) == l.Value)).Value;
    }

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"([a-zA-Z_][a-zA-Z0-9_]*)=""((?:[^""\\]|\\.)*)""(,|$)")]
    private static partial Regex LabelPair();

    /// <summary>A strict parser of the text format: every line is a HELP, a TYPE or a sample of a declared family.</summary>
    public static Exposition Parse(string text)
    {
        var e = new Exposition();
        Assert.EndsWith("\n", text);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                var rest = line[7..];
                e.Help.Add(rest[..rest.IndexOf(' ')], rest[(rest.IndexOf(' ') + 1)..]);
                continue;
            }
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line[7..].Split(' ');
                Assert.Equal(2, parts.Length);
                Assert.Contains(parts[1], new[] { "counter", "gauge", "histogram", "summary", "untyped" });
                Assert.True(e.Help.ContainsKey(parts[0]), $"TYPE before HELP for {parts[0]}");
                e.Types.Add(parts[0], parts[1]);   // Add: a family is declared once
                continue;
            }
            Assert.False(line.StartsWith('#'), line);
            var m = SampleLine().Match(line);
            Assert.True(m.Success, $"not a sample line: {line}");
            var labels = new Dictionary<string, string>();
            if (m.Groups[2].Success)
            {
                var matches = LabelPair().Matches(m.Groups[2].Value);
                Assert.Equal(m.Groups[2].Value.Length, matches.Sum(x => x.Length));
                foreach (Match lp in matches) labels.Add(lp.Groups[1].Value, lp.Groups[2].Value);
            }
            var v = m.Groups[3].Value;
            double value = v switch { "+Inf" => double.PositiveInfinity, "-Inf" => double.NegativeInfinity, "NaN" => double.NaN, _ => double.Parse(v, CultureInfo.InvariantCulture) };
            var name = m.Groups[1].Value;
            var family = e.Types.ContainsKey(name) ? name
                : new[] { "_bucket", "_sum", "_count" }.Where(name.EndsWith).Select(sfx => name[..^sfx.Length]).FirstOrDefault(e.Types.ContainsKey);
            Assert.True(family != null, $"sample {name} has no TYPE line");
            e.Samples.Add(new Sample(name, labels, value));
        }
        // histograms: cumulative buckets ending in +Inf == _count
        foreach (var (family, type) in e.Types.Where(t => t.Value == "histogram"))
        {
            var buckets = e.Samples.Where(s => s.Name == family + "_bucket").ToList();
            Assert.NotEmpty(buckets);
            Assert.Equal("+Inf", buckets[^1].Labels["le"]);
            var bounds = buckets.Select(b => b.Labels["le"] == "+Inf" ? double.PositiveInfinity : double.Parse(b.Labels["le"], CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(bounds.Order(), bounds);
            Assert.Equal(buckets.Select(b => b.Value).Order(), buckets.Select(b => b.Value));
            Assert.Equal(buckets[^1].Value, e.Samples.Single(s => s.Name == family + "_count").Value);
        }
        return e;
    }

    private static async Task<Exposition> Scrape(ServerHarness s)
    {
        using var res = await s.Http.GetAsync("metrics", TestContext.Current.CancellationToken);
        Assert.Equal("text/plain", res.Content.Headers.ContentType?.MediaType);
        Assert.Contains(res.Content.Headers.ContentType!.Parameters, p => p.Name == "version" && p.Value == "0.0.4");
        return Parse(await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task MetricsParseAndCountersMoveWithRequests()
    {
        await using var s = await ServerHarness.StartAsync();
        var before = await Scrape(s);
        foreach (var name in new[]
                 {
                     "sharpinfer:time_to_first_token_seconds", "sharpinfer:time_per_output_token_seconds", "sharpinfer:inter_token_latency_seconds",
                     "sharpinfer:e2e_request_latency_seconds", "sharpinfer:request_queue_time_seconds",
                 })
            Assert.Equal("histogram", before.Types[name]);
        foreach (var name in new[] { "sharpinfer:num_requests_running", "sharpinfer:num_requests_waiting", "sharpinfer:kv_cache_usage_perc" })
            Assert.Equal("gauge", before.Types[name]);
        foreach (var name in new[] { "sharpinfer:prompt_tokens_total", "sharpinfer:generation_tokens_total", "sharpinfer:request_success_total", "sharpinfer:num_preemptions_total" })
            Assert.Equal("counter", before.Types[name]);
        Assert.All(before.Samples, x => Assert.Equal("stories260K", x.Labels["model_name"]));
        Assert.Equal(0, before.Value("sharpinfer:request_success_total", ("finished_reason", "length")));

        var r1 = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = "Once upon a time", ["max_tokens"] = 7, ["temperature"] = 0, ["ignore_eos"] = true });
        var r2 = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = "The dog ran", ["max_tokens"] = 5, ["temperature"] = 0, ["ignore_eos"] = true });
        var after = await Scrape(s);
        int prompt = r1["usage"]!["prompt_tokens"]!.GetValue<int>() + r2["usage"]!["prompt_tokens"]!.GetValue<int>();
        Assert.Equal(prompt, after.Value("sharpinfer:prompt_tokens_total"));
        Assert.Equal(12, after.Value("sharpinfer:generation_tokens_total"));
        Assert.Equal(2, after.Value("sharpinfer:request_success_total", ("finished_reason", "length")));
        Assert.Equal(0, after.Value("sharpinfer:request_success_total", ("finished_reason", "abort")));
        Assert.Equal(2, after.Value("sharpinfer:time_to_first_token_seconds_count"));
        Assert.Equal(2, after.Value("sharpinfer:e2e_request_latency_seconds_count"));
        Assert.Equal(2, after.Value("sharpinfer:request_queue_time_seconds_count"));
        Assert.Equal(2, after.Value("sharpinfer:time_per_output_token_seconds_count"));
        Assert.Equal(6 + 4, after.Value("sharpinfer:inter_token_latency_seconds_count"));
        Assert.True(after.Value("sharpinfer:e2e_request_latency_seconds_sum") > 0);
        Assert.Equal(0, after.Value("sharpinfer:num_requests_running"));
        Assert.Equal(0, after.Value("sharpinfer:kv_cache_usage_perc"));
        Assert.Equal(1, after.Value("sharpinfer:model_loaded"));
    }

    [Fact]
    public async Task GaugesShowARunningRequest()
    {
        await using var s = await ServerHarness.StartAsync(loopback: true);
        using var res = await s.PostStreamAsync("v1/completions", new JsonObject
        { ["prompt"] = "Once upon a time", ["max_tokens"] = 1000, ["ignore_eos"] = true, ["stream"] = true }, TestContext.Current.CancellationToken);
        await using (var e = ServerHarness.ReadSseAsync(res, TestContext.Current.CancellationToken).GetAsyncEnumerator())
        {
            Assert.True(await e.MoveNextAsync());
            var during = await Scrape(s);
            Assert.Equal(1, during.Value("sharpinfer:num_requests_running"));
            Assert.True(during.Value("sharpinfer:kv_cache_usage_perc") > 0);
        }
    }

    [Fact]
    public void ExporterWritesOnlyItsOwnMetersInstrumentsWithEscapedLabels()
    {
        using var mine = new Meter("SharpInfer");
        using var other = new Meter("SharpInfer");
        var hist = mine.CreateHistogram<double>("sharpinfer.time_to_first_token", "s");
        var counter = mine.CreateCounter<long>("sharpinfer.requests_finished");
        var custom = mine.CreateCounter<long>("sharpinfer.spec_decode_accepted", "tokens", "Accepted draft tokens");
        var foreign = other.CreateCounter<long>("sharpinfer.generation_tokens");
        using var exporter = new PrometheusExporter(mine, "my \"model\"\\x");
        hist.Record(0.003);
        hist.Record(0.5);
        hist.Record(5000);
        counter.Add(2, new KeyValuePair<string, object?>("finish_reason", "stop"));
        custom.Add(7);
        foreign.Add(100);
        var e = Parse(exporter.Scrape());
        Assert.DoesNotContain(e.Samples, x => x.Name == "sharpinfer:generation_tokens_total");
        Assert.Equal(3, e.Value("sharpinfer:time_to_first_token_seconds_count"));
        Assert.Equal(5000.503, e.Value("sharpinfer:time_to_first_token_seconds_sum"), 6);
        Assert.Equal(1, e.Value("sharpinfer:time_to_first_token_seconds_bucket", ("le", "0.005")));
        Assert.Equal(2, e.Value("sharpinfer:time_to_first_token_seconds_bucket", ("le", "0.5")));
        Assert.Equal(2, e.Value("sharpinfer:time_to_first_token_seconds_bucket", ("le", "2560")));
        Assert.Equal(3, e.Value("sharpinfer:time_to_first_token_seconds_bucket", ("le", "+Inf")));
        Assert.Equal(2, e.Value("sharpinfer:request_success_total", ("finished_reason", "stop")));
        Assert.Equal(0, e.Value("sharpinfer:request_success_total", ("finished_reason", "length")));
        Assert.Equal(7, e.Value("sharpinfer:spec_decode_accepted_total"));
        Assert.Equal("counter", e.Types["sharpinfer:spec_decode_accepted_total"]);
        Assert.All(e.Samples, x => Assert.Equal("my \\\"model\\\"\\\\x", x.Labels["model_name"]));
    }
}
