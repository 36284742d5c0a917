using SharpInfer.Cli.Commands;
using SharpInfer.KvCache;
using SharpInfer.Models;

namespace SharpInfer.Tests.Cli;

/// <summary><c>sharpinfer bench --via-facade</c>: the generation test through <c>Llm.GenerateStreamingAsync</c> makes
/// exactly N tokens per run (end-of-sequence ignored), so its t/s compares with the direct test's.</summary>
public class FacadeBenchTests
{
    [Fact]
    public void Each_run_through_the_facade_generates_exactly_the_tests_tokens()
    {
        // the facade's ignore-EOS reaches the sampler (greedy stories260K does not end within these lengths, so the
        // run below cannot show it)
        Assert.True(new GenerationOptions { IgnoreEos = true }.ToSampling().IgnoreEos);
        Assert.False(new GenerationOptions().ToSampling().IgnoreEos);
        using var model = Model.Load(TestPaths.Stories260K);
        // Run throws unless the engine generated exactly N tokens per run (warm-up included)
        var res = FacadeBench.Run(model, threads: 2, nGen: 40, repetitions: 2, KvDataType.F32);
        Assert.Equal("tg40", res.TestName);
        Assert.Equal(2, res.SamplesNs.Length);
        Assert.All(res.SamplesNs, ns => Assert.True(ns > 0));
    }

    [Fact]
    public void The_bench_command_marks_the_facade_rows()
    {
        var output = new StringWriter();
        int code = BenchCommand.Run(TestPaths.Stories260K, [0], [8], 2, 1, 64, (KvDataType.F16, null), exact: false, json: false,
                                    output, new StringWriter(), viaFacade: true);
        Assert.Equal(0, code);
        Assert.Contains("| tg8 via Llm |", output.ToString());
    }
}
