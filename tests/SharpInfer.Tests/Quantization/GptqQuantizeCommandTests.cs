using SharpInfer.Gguf;
using SharpInfer.Tensors;
using SharpInfer.Tests.Cli;
using SharpInfer.Tests.Engine;

namespace SharpInfer.Tests.Quantization;

/// <summary><c>quantize --method imatrix|gptq --calibration F</c> end to end on the small widened model (a trained
/// stories260K inside wider shapes): the files are ordinary GGUF whose every tensor decodes with our dequantizers,
/// the same for 1 and 2 threads, with the same mix as --method imatrix (same calibration) and really different values; bad input is one clear error.</summary>
public class GptqQuantizeCommandTests
{
    private static readonly Lazy<string> Calibration = new(() =>
    {
        string text = File.ReadAllText(Path.Combine(TestPaths.Shared, "data", "tinystories-sampled.txt"));
        return CliHarness.TempFile(text[..20000], ".txt");
    });

    private static string Quantize(string type, int threads, params string[] method)
    {
        string output = TestPaths.NewTempFile();
        var r = CliHarness.Run(["quantize", .. method, SpeculativeDecodingTests.WidenedPath.Value, output, type, threads.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return output;
    }

    private static string[] Imatrix => ["--method", "imatrix", "--calibration", Calibration.Value, "--calibration-ctx", "64", "--calibration-chunks", "4"];

    private static string[] Gptq => ["--method", "gptq", "--calibration", Calibration.Value, "--calibration-ctx", "64", "--calibration-chunks", "4"];

    [Theory]
    [InlineData("Q4_0")]
    [InlineData("Q3_K_M")]
    public void Gptq_files_decode_do_not_depend_on_threads_and_differ_from_imatrix_rounding(string type)
    {
        string one = Quantize(type, 1, Gptq), two = Quantize(type, 2, Gptq), plain = Quantize(type, 2, [.. Imatrix]);
        Assert.Equal(File.ReadAllBytes(one), File.ReadAllBytes(two));
        using var g = GgufFile.Open(one);
        using var p = GgufFile.Open(plain);
        int differing = 0;
        foreach (var t in g.Tensors)
        {
            var pt = p.Tensors.Single(x => x.Name == t.Name);
            Assert.Equal(pt.Type, t.Type);   // the same mix: GPTQ changes values, not types
            if (!g.TensorBytes(t).SequenceEqual(p.TensorBytes(pt))) differing++;
            int n = (int)t.Dims[0];
            var row = new float[n];
            int rowBytes = (int)GgmlTypeInfo.RowSize(t.Type, n);
            var bytes = g.TensorBytes(t);
            for (long r = 0; r < t.Rows; r++)
            {
                Dequantize.Row(t.Type, bytes.Slice((int)(r * rowBytes), rowBytes), row);
                Assert.All(row, v => Assert.True(float.IsFinite(v)));
            }
        }
        // every blk.* matrix (7 per layer, 8 layers) is GPTQ-rounded, so differs from importance-weighted rounding
        Assert.True(differing >= 56, $"only {differing} tensors differ from importance-weighted rounding");
        Assert.Equal(Calibration.Value, g.GetString("quantize.imatrix.file"));
    }

    [Fact]
    public void Gptq_without_calibration_text_is_a_clear_error()
    {
        var r = CliHarness.Run(["quantize", "--method", "gptq", SpeculativeDecodingTests.WidenedPath.Value, TestPaths.NewTempFile(), "Q4_0"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--method gptq needs calibration text: pass --calibration FILE", r.Stderr);
    }

    [Fact]
    public void A_missing_calibration_file_is_a_clear_error()
    {
        string missing = Path.Combine(TestPaths.Cache, "tmp", Guid.NewGuid().ToString("N") + ".txt");
        var r = CliHarness.Run(["quantize", "--method", "gptq", "--calibration", missing, SpeculativeDecodingTests.WidenedPath.Value, TestPaths.NewTempFile(), "Q4_0"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"calibration text not found: {missing}", r.Stderr);
    }

    [Fact]
    public void An_unknown_method_is_a_clear_error()
    {
        var r = CliHarness.Run(["quantize", "--method", "awq2", SpeculativeDecodingTests.WidenedPath.Value, TestPaths.NewTempFile(), "Q4_0"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("unknown --method 'awq2'", r.Stderr);
    }
}
