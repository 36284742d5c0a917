using SharpInfer.Cli.Commands;

namespace SharpInfer.Tests.Cli;

/// <summary>The benchmark commands take llama-bench's comma-separated lists (<c>-p 128,512 -d 0,4096</c>,
/// <c>-npl 1,4,16</c>) as well as repeated and space-separated values; a bad element is a parse error.</summary>
public class IntListOptionTests
{
    private static int[] Values(string line, string name)
    {
        var cmd = line.StartsWith("batched", StringComparison.Ordinal) ? BenchBatchedCommand.Create() : BenchCommand.Create();
        var args = line.StartsWith("batched", StringComparison.Ordinal) ? line["batched".Length..] : line;
        var r = cmd.Parse(args.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Empty(r.Errors);
        return r.GetValue<int[]>(name)!;
    }

    [Theory]
    [InlineData("-p 40,20", "--n-prompt", new[] { 40, 20 })]
    [InlineData("-p 40 20", "--n-prompt", new[] { 40, 20 })]
    [InlineData("-p 40 -p 8,16", "--n-prompt", new[] { 40, 8, 16 })]
    [InlineData("-n 0", "--n-gen", new[] { 0 })]
    [InlineData("-d 0,1200,4096", "--n-depth", new[] { 0, 1200, 4096 })]
    [InlineData("-m x", "--n-prompt", new[] { 512 })]
    [InlineData("batched -npl 1,2,4,8", "--parallel", new[] { 1, 2, 4, 8 })]
    public void Lists_parse_like_llama_bench(string line, string name, int[] expected) =>
        Assert.Equal(expected, Values(line, name));

    [Theory]
    [InlineData("-p 40,x")]
    [InlineData("-p 40,,20")]
    [InlineData("-d 1.5")]
    public void A_bad_element_is_a_parse_error(string line)
    {
        var r = BenchCommand.Create().Parse(line.Split(' '));
        Assert.NotEmpty(r.Errors);
    }

    [Fact]
    public void The_lists_reach_the_benchmark()
    {
        var output = new StringWriter();
        var cmd = BenchCommand.Create();
        var r = cmd.Parse(["-p", "8,4", "-n", "0", "-d", "0,16"]);
        int code = BenchCommand.Run(TestPaths.Stories260K, r.GetValue<int[]>("--n-prompt")!, r.GetValue<int[]>("--n-gen")!, 1, 1, 64,
                                    (SharpInfer.KvCache.KvDataType.F32, null), exact: false, json: false, output, new StringWriter(),
                                    r.GetValue<int[]>("--n-depth"));
        Assert.Equal(0, code);
        var rows = output.ToString().Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal) && l.Contains(" pp", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, rows.Count);
        foreach (var test in new[] { "| pp8 |", "| pp4 |", "| pp8 @ d16 |", "| pp4 @ d16 |" })
            Assert.Single(rows, l => l.Contains(test, StringComparison.Ordinal));
    }

    [Fact]
    public void Negative_lengths_are_refused()
    {
        var ex = Assert.Throws<SharpInfer.InvalidRequestException>(() => BenchCommand.Run(TestPaths.Stories260K, [-1], [0], 1, 1, 64,
            (SharpInfer.KvCache.KvDataType.F32, null), exact: false, json: false, new StringWriter(), new StringWriter()));
        Assert.Contains("must not be negative", ex.Message);
    }
}
