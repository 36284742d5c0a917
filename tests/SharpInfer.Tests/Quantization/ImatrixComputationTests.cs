using SharpInfer.Models;
using SharpInfer.Quantization;
using SharpInfer.Tests.Cli;

namespace SharpInfer.Tests.Quantization;

/// <summary><c>sharpinfer imatrix</c>: the collected sums against a direct computation, llama-imatrix's chunking and
/// counts, MoE per-expert counts, and the file round trip. (The comparison with llama-imatrix itself is recorded in
/// docs/quantization.md: CI has no llama.cpp.)</summary>
public class ImatrixComputationTests
{
    private static string Calibration() => File.ReadAllText(Path.Combine(TestPaths.Shared, "data", "tinystories-sampled.txt"))[..20000];

    /// <summary>Layer 0's Q/K/V input is RMSNorm(embedding) · attn_norm of each chunk's tokens, the first replaced by
    /// BOS: computed here in double straight from the weights, it must equal the collected sums to float rounding.</summary>
    [Fact]
    public void First_layer_sums_equal_a_direct_computation()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        const int ctx = 32, chunks = 3;
        string text = Calibration();
        var m = ImatrixComputation.Run(model, text, "calibration.txt", new ImatrixOptions(ctx, chunks, 2));

        var tokens = model.Tokenizer.Encode(text, addSpecial: true, parseSpecial: false);
        int E = model.Config.EmbeddingLength;
        var expected = new double[E];
        var x = new float[E];
        var norm = model.Weights.Layers[0].AttnNorm;
        for (int c = 0; c < chunks; c++)
            for (int p = 0; p < ctx; p++)
            {
                int id = p == 0 ? model.Vocabulary.BosId : tokens[c * ctx + p];
                model.Weights.TokenEmbedding.DequantizeRow(id, x);
                double ss = 0;
                foreach (float v in x) ss += (double)v * v;
                double scale = 1 / Math.Sqrt(ss / E + model.Config.RmsNormEpsilon);
                for (int j = 0; j < E; j++)
                {
                    double y = x[j] * scale * norm[j];
                    expected[j] += y * y;
                }
            }
        foreach (var name in new[] { "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight" })
        {
            var e = m.Entries[name];
            Assert.Equal([(long)chunks * ctx], e.Counts);
            for (int j = 0; j < E; j++) Assert.True(Math.Abs(e.Sums[j] - expected[j]) <= 1e-5 * expected[j], $"{name}[{j}]: {e.Sums[j]} vs {expected[j]}");
        }
    }

    /// <summary>Every blk.* weight product is collected (7 per llama layer, not token_embd nor output), each dense one
    /// with one count per token, and the metadata says what llama-imatrix says.</summary>
    [Fact]
    public void Every_layer_weight_is_collected_with_llama_imatrix_counts_and_metadata()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var m = ImatrixComputation.Run(model, Calibration(), "calibration.txt", new ImatrixOptions(32, 2, 2));
        string[] perLayer = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];
        var expected = Enumerable.Range(0, model.Config.LayerCount).SelectMany(l => perLayer.Select(w => $"blk.{l}.{w}.weight")).Order(StringComparer.Ordinal);
        Assert.Equal(expected, m.Entries.Keys);
        foreach (var (name, e) in m.Entries)
        {
            Assert.Equal([64L], e.Counts);
            Assert.All(e.Sums, s => Assert.True(s > 0 && float.IsFinite(s), name));
        }
        Assert.Equal(["calibration.txt"], m.Datasets);
        Assert.Equal(2, m.ChunkCount);
        Assert.Equal(32, m.ChunkSize);
    }

    /// <summary>MoE: experts get one count per routed (token, slot), so an expert tensor's counts add up to
    /// tokens × experts used; the router is a dense product like the others.</summary>
    [Fact]
    public void Moe_experts_are_counted_per_routed_token()
    {
        using var model = Model.Load(QuantizeTestUtil.SyntheticModel("qwen3moe-tiny"));
        var m = ImatrixComputation.Run(model, Calibration(), "c.txt", new ImatrixOptions(32, 2, 2));
        var c = model.Config;
        var down = m.Entries["blk.0.ffn_down_exps.weight"];
        Assert.Equal(c.ExpertCount, down.Counts.Length);
        Assert.Equal(c.FeedForwardLength * c.ExpertCount, down.Sums.Length);
        Assert.Equal(64L * c.ExpertUsedCount, down.Counts.Sum());
        Assert.Equal(down.Counts, m.Entries["blk.0.ffn_up_exps.weight"].Counts);
        Assert.Equal([64L], m.Entries["blk.0.ffn_gate_inp.weight"].Counts);
        // an expert's sums are zero exactly when no token was routed to it
        for (int e = 0; e < c.ExpertCount; e++)
            Assert.Equal(down.Counts[e] == 0, down.Sums.AsSpan(e * c.FeedForwardLength, c.FeedForwardLength).ToArray().All(s => s == 0));
    }

    /// <summary>The CLI writes llama-imatrix's GGUF format: read back, it is the matrix computed in process, and
    /// quantize accepts it.</summary>
    [Fact]
    public void Cli_writes_a_file_that_reads_back_and_quantizes()
    {
        string dir = Directory.CreateDirectory(Path.Combine(TestPaths.Cache, "tmp", Guid.NewGuid().ToString("N"))).FullName;
        string text = Path.Combine(dir, "calibration.txt"), output = Path.Combine(dir, "imatrix.gguf");
        File.WriteAllText(text, Calibration() + "\n");
        var r = CliHarness.Run(["imatrix", "-m", TestPaths.Stories260K, "-f", text, "-o", output, "-c", "32", "--chunks", "2", "-t", "2"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var read = ImportanceMatrix.Load(output);
        using var model = Model.Load(TestPaths.Stories260K);
        var direct = ImatrixComputation.Run(model, Calibration(), text, new ImatrixOptions(32, 2, 2));
        Assert.Equal(direct.Entries.Keys, read.Entries.Keys);
        foreach (var (name, e) in direct.Entries)
        {
            Assert.Equal(e.Sums, read.Entries[name].Sums);
            Assert.Equal(e.Counts, read.Entries[name].Counts);
        }
        Assert.Equal([text], read.Datasets);
        var q = CliHarness.Run(["quantize", "--imatrix", output, TestPaths.Stories260K, Path.Combine(dir, "q.gguf"), "Q4_K_M", "2"]);
        Assert.True(q.ExitCode == 0, q.Stderr);
    }

    [Fact]
    public void Too_short_text_is_a_clear_error()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var e = Assert.Throws<InvalidRequestException>(() => ImatrixComputation.Run(model, "Once upon a time", "t", new ImatrixOptions(32)));
        Assert.Contains("needs at least 64", e.Message);
    }
}
