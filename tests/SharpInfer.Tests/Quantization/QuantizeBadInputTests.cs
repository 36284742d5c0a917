using SharpInfer.Tensors;
using SharpInfer.Tests.Cli;

namespace SharpInfer.Tests.Quantization;

/// <summary>Bad input to <c>sharpinfer quantize</c> is one clear error line, exit code 1, and no output file (nor a
/// temporary one) left behind; an existing output file survives a failed run untouched.</summary>
public class QuantizeBadInputTests
{
    private static string NewDir() => Directory.CreateDirectory(Path.Combine(TestPaths.Cache, "tmp", Guid.NewGuid().ToString("N"))).FullName;

    private static string F32Model(string dir, float poison = 0f)
    {
        var values = Enumerable.Range(0, 256 * 8).Select(i => (float)Math.Sin(i)).ToArray();
        values[^1] += poison;
        string path = QuantizeTestUtil.TinyModel(w => w
            .AddTensor("blk.0.attn_norm.weight", [256], Enumerable.Repeat(1f, 256).ToArray())
            .AddTensor("blk.0.ffn_up.weight", [256, 8], values));
        string moved = Path.Combine(dir, "in.gguf");
        File.Move(path, moved);
        return moved;
    }

    private static CliHarness.Result Quantize(params string[] args) => CliHarness.Run(["quantize", .. args]);

    private static void AssertFails(CliHarness.Result r, string message)
    {
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(message, r.Stderr);
    }

    /// <summary>Only the input (and what the test put there) is left in the directory.</summary>
    private static void AssertNothingWritten(string dir, params string[] expected) =>
        Assert.Equal(expected.Select(Path.GetFileName).Order(), Directory.GetFiles(dir).Select(Path.GetFileName).Order());

    [Fact]
    public void Unknown_type()
    {
        string dir = NewDir();
        string input = F32Model(dir);
        AssertFails(Quantize(input, Path.Combine(dir, "out.gguf"), "Q9_9"), "unknown quantization type 'Q9_9'");
        AssertNothingWritten(dir, input);
    }

    [Theory]
    [InlineData("IQ2_XXS", "needs an importance matrix")]
    [InlineData("TQ1_0", "cannot produce yet")]
    [InlineData("Q1_0", "not supported yet")]
    public void Types_this_program_cannot_make_yet(string type, string message)
    {
        string dir = NewDir();
        string input = F32Model(dir);
        AssertFails(Quantize(input, Path.Combine(dir, "out.gguf"), type), message);
        AssertNothingWritten(dir, input);
    }

    /// <summary>An imatrix that cannot be used is an error before anything is written: a missing file, a GGUF that is
    /// not an imatrix, a file in neither format, an entry whose size does not match its tensor (llama-quantize's
    /// "imatrix size … is different from tensor size"), conflicting filters, and IQ2 types (they need an imatrix, which
    /// is there, but no IQ2 quantizer exists here).</summary>
    [Theory]
    [InlineData("missing", "", "Q4_K_M", "does not exist")]
    [InlineData("model", "", "Q4_K_M", "lacks its metadata")]
    [InlineData("garbage", "", "Q4_K_M", "neither GGUF nor a legacy imatrix")]
    [InlineData("short", "", "Q4_K_M", "imatrix size 128 is different from tensor size 256")]
    [InlineData("good", "--include-weights ffn --exclude-weights attn", "Q4_K_M", "cannot be used together")]
    [InlineData("good", "", "IQ2_XXS", "cannot produce yet")]
    public void Unusable_imatrix(string kind, string flags, string type, string message)
    {
        string dir = NewDir();
        string input = F32Model(dir);
        string imatrix = Path.Combine(dir, "imatrix.gguf");
        switch (kind)
        {
            case "model": File.Copy(input, imatrix); break;
            case "garbage": File.WriteAllText(imatrix, "not an importance matrix"); break;
            case "short": Imatrix(128).Save(imatrix); break;
            case "good": Imatrix(256).Save(imatrix); break;
        }
        string[] extra = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        AssertFails(Quantize([.. extra, "--imatrix", imatrix, input, Path.Combine(dir, "out.gguf"), type]), message);
        AssertNothingWritten(dir, kind == "missing" ? [input] : [input, imatrix]);

        static SharpInfer.Quantization.ImportanceMatrix Imatrix(int columns) => new()
        {
            Entries = new(StringComparer.Ordinal) { ["blk.0.ffn_up.weight"] = new(Enumerable.Repeat(2f, columns).ToArray(), [1]) },
            Datasets = ["test"],
            ChunkCount = 1,
            ChunkSize = 512,
        };
    }

    [Fact]
    public void Already_quantized_input_needs_allow_requantize()
    {
        string dir = NewDir();
        var q8 = new byte[GgmlTypeInfo.RowSize(GgmlType.Q8_0, 256) * 4];
        string path = QuantizeTestUtil.TinyModel(w => w.AddTensor("blk.0.ffn_up.weight", [256, 4], GgmlType.Q8_0, q8));
        string input = Path.Combine(dir, "in.gguf");
        File.Move(path, input);
        AssertFails(Quantize(input, Path.Combine(dir, "out.gguf"), "Q4_0"), "already quantized (q8_0)");
        AssertNothingWritten(dir, input);
        var ok = Quantize("--allow-requantize", input, Path.Combine(dir, "out.gguf"), "Q4_0", "1");
        Assert.Equal(0, ok.ExitCode);
        AssertNothingWritten(dir, input, Path.Combine(dir, "out.gguf"));
    }

    [Fact]
    public void Output_in_a_missing_directory_or_on_a_directory()
    {
        string dir = NewDir();
        string input = F32Model(dir);
        AssertFails(Quantize(input, Path.Combine(dir, "missing", "out.gguf"), "Q8_0"), "does not exist");
        AssertFails(Quantize(input, dir, "Q8_0"), "is a directory");
        AssertFails(Quantize(input, input, "Q8_0"), "is the input file");
        AssertNothingWritten(dir, input);
    }

    [Fact]
    public void Truncated_input()
    {
        string dir = NewDir();
        string good = F32Model(dir);
        string input = Path.Combine(dir, "truncated.gguf");
        var bytes = File.ReadAllBytes(good);
        File.WriteAllBytes(input, bytes[..(bytes.Length - 100)]);
        AssertFails(Quantize(input, Path.Combine(dir, "out.gguf"), "Q8_0"), "truncated");
        AssertNothingWritten(dir, good, input);
    }

    [Fact]
    public void Input_that_is_not_a_model()
    {
        string dir = NewDir();
        string input = Path.Combine(dir, "in.gguf");
        new SharpInfer.Gguf.GgufWriter().Add("general.name", "no architecture").AddTensor("x", [32, 2], new float[64]).Write(input);
        AssertFails(Quantize(input, Path.Combine(dir, "out.gguf"), "Q8_0"), "has no general.architecture");
        AssertNothingWritten(dir, input);
    }

    /// <summary>The NaN sits in the last rows of the last tensor, so the failure comes after the header and the
    /// first tensor were written: the temporary file must go and the old output must stay.</summary>
    [Fact]
    public void Invalid_weights_fail_midway_without_touching_the_existing_output()
    {
        string dir = NewDir();
        string input = F32Model(dir, poison: float.NaN);
        string output = Path.Combine(dir, "out.gguf");
        File.WriteAllText(output, "previous result");
        AssertFails(Quantize(input, output, "Q4_0", "2"), "has invalid data: NaN in row 7");
        Assert.Equal("previous result", File.ReadAllText(output));
        AssertNothingWritten(dir, input, output);
    }
}
