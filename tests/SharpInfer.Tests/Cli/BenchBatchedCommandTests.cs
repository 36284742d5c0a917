using System.Text.Json;
using SharpInfer;
using SharpInfer.Cli.Commands;

namespace SharpInfer.Tests.Cli;

/// <summary><c>sharpinfer bench batched</c> prints one llama-batched-bench record per parallelism with consistent
/// token counts; bad arguments are a clear error.</summary>
public class BenchBatchedCommandTests
{
    [Fact]
    public void PrintsOneRecordPerParallelismWithConsistentCounts()
    {
        var output = new StringWriter();
        int code = BenchBatchedCommand.Run(TestPaths.Stories260K, 20, 5, [1, 3], 2, 16, "f16", json: true, output);
        Assert.Equal(0, code);
        var records = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal([1, 3], records.Select(r => r.GetProperty("pl").GetInt32()));
        foreach (var r in records)
        {
            int b = r.GetProperty("pl").GetInt32();
            Assert.Equal(b * 25, r.GetProperty("n_kv").GetInt32());
            double tpp = r.GetProperty("t_pp").GetDouble(), ttg = r.GetProperty("t_tg").GetDouble();
            Assert.True(tpp > 0 && ttg > 0);
            Assert.Equal(b * 5 / ttg, r.GetProperty("speed_tg").GetDouble(), 0.01 * b * 5 / ttg);
            Assert.Equal(b * 20 / tpp, r.GetProperty("speed_pp").GetDouble(), 0.01 * b * 20 / tpp);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(BenchBatchedCommand.MaxParallel + 1)]
    public void ParallelismOutOfRangeIsAClearError(int parallel)
    {
        var ex = Assert.Throws<InvalidRequestException>(() => BenchBatchedCommand.Run(TestPaths.Stories260K, 8, 4, [1, parallel], 2, 16, "f16", json: true, new StringWriter()));
        Assert.Contains("-npl", ex.Message);
    }
}
