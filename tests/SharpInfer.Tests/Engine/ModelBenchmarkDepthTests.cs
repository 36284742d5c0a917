using System.Text.Json;
using SharpInfer.Cli.Commands;
using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;

namespace SharpInfer.Tests.Engine;

/// <summary>llama-bench's -d: the timed runs attend over a depth prefix that the warm-up computed once and the prefix
/// cache holds, so only the test's own tokens are computed in each run.</summary>
public class ModelBenchmarkDepthTests
{
    [Fact]
    public void Timed_runs_at_a_depth_reuse_the_cached_prefix()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        const int depth = 128, reps = 3;
        using var bench = new ModelBenchmark(model, 2, 64 + 1, 64, KvDataType.F16, maxDepth: depth);
        var before = bench.Stats.PrefixCacheHits;
        var pp = bench.Run(32, 0, reps, depth: depth);
        Assert.Equal(depth, pp.Depth);
        Assert.Equal("pp32 @ d128", pp.TestName);
        // every timed repetition found the whole depth prefix cached (the warm-up computed it)
        Assert.True(bench.Stats.PrefixCacheHits - before >= (long)reps * depth, $"hits {bench.Stats.PrefixCacheHits - before}");
        var tg = bench.Run(0, 8, reps, depth: depth);
        Assert.Equal("tg8 @ d128", tg.TestName);
        Assert.Equal(reps, tg.SamplesNs.Length);
        Assert.All(tg.SamplesNs, ns => Assert.True(ns > 0));
    }

    [Fact]
    public void Bench_json_records_the_depth_and_the_cache_types()
    {
        var output = new StringWriter();
        int code = BenchCommand.Run(TestPaths.Stories260K, [16], [4], 2, 1, 64, (KvDataType.Q8_0, KvDataType.F16), exact: false, json: true,
                                    output, new StringWriter(), depths: [0, 64]);
        Assert.Equal(0, code);
        var records = JsonDocument.Parse(output.ToString()).RootElement.EnumerateArray().ToArray();
        Assert.Equal([0, 0, 64, 64], records.Select(r => r.GetProperty("n_depth").GetInt32()));
        Assert.All(records, r => Assert.Equal("q8_0", r.GetProperty("type_k").GetString()));
        Assert.All(records, r => Assert.Equal("f16", r.GetProperty("type_v").GetString()));
    }
}
