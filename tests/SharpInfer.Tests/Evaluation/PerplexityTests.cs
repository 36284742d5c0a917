using SharpInfer.Cli.Commands;
using SharpInfer.Evaluation;
using SharpInfer.KvCache;
using SharpInfer.Models;

namespace SharpInfer.Tests.Evaluation;

/// <summary>Perplexity measured as llama-perplexity measures it, and the KL-divergence comparison against a base
/// file in llama-perplexity's layout.</summary>
public class PerplexityTests
{
    private static string Text => File.ReadAllText(Path.Combine(TestPaths.Shared, "data", "tinystories-sampled.txt")).TrimEnd('\n');

    [Fact]
    public void Stories260K_on_tinystories_sampled_matches_llama_perplexity_to_four_significant_digits()
    {
        // llama-perplexity -m stories260K.gguf -f tinystories-sampled.txt -c 256 -b 256 prints
        // "Final estimate: PPL = 4.1358 +/- 0.03258" over 477 chunks (the issue's reference, re-measured here).
        using var model = Model.Load(TestPaths.Stories260K);
        var r = Perplexity.Run(model, Text, new PerplexityOptions { Context = 256, Threads = 2 });
        Assert.Equal(477, r.Chunks);
        Assert.Equal(477L * 127, r.Scored);
        Assert.Equal("4.136", r.Ppl.ToString("G4", System.Globalization.CultureInfo.InvariantCulture));
        Assert.InRange(r.Ppl, 4.1358 - 5e-4, 4.1358 + 5e-4);
        Assert.InRange(r.Error, 0.03258 - 5e-5, 0.03258 + 5e-5);
        Assert.Equal(r.Ppl, r.RunningPpl[^1]);
    }

    [Fact]
    public void Passes_of_any_size_give_bit_identical_perplexity()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var whole = Perplexity.Run(model, Text, new PerplexityOptions { Context = 128, MaxChunks = 8, Threads = 2 });
        var split = Perplexity.Run(model, Text, new PerplexityOptions { Context = 128, MaxChunks = 8, BatchSize = 48, Threads = 2 });
        var several = Perplexity.Run(model, Text, new PerplexityOptions { Context = 128, MaxChunks = 8, BatchSize = 512, Threads = 2 });
        Assert.Equal(whole.RunningPpl, split.RunningPpl);
        Assert.Equal(whole.RunningPpl, several.RunningPpl);
    }

    [Fact]
    public void A_run_compared_with_its_own_base_file_has_no_divergence_and_a_lower_precision_cache_has_some()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var options = new PerplexityOptions { Context = 128, MaxChunks = 12, Threads = 2, KvType = KvDataType.F32 };
        var path = TestPaths.NewTempFile(".kld");
        PerplexityResult written;
        using (var f = File.Create(path)) written = Perplexity.Run(model, Text, options, f);
        int V = model.Config.VocabSize;
        Assert.Equal(20 + 4L * 12 * 128 + 2L * 12 * 63 * LogProbFile.RowLength(V), new FileInfo(path).Length);

        KlDivergenceStats Compare(PerplexityOptions o, out PerplexityResult r)
        {
            using var f = File.OpenRead(path);
            r = Perplexity.CompareWithBase(model, f, path, o);
            return r.Kl!;
        }
        var same = Compare(options, out var again);
        Assert.Equal(written.Ppl, again.Ppl, 1e-6);   // the same tokens and logits (the writer sums in float, as llama.cpp)
        Assert.Equal(12 * 63, same.Count);
        Assert.Equal(1.0, same.SameTopRate.Value);
        // only the 16-bit storage of the base separates them: |log p| error ≤ scale/2 ≈ 1.2e-4
        Assert.InRange(Math.Abs(same.MeanKld.Value), 0, 1e-5);
        Assert.InRange(Math.Abs(same.RmsPDiff.Value), 0, 1e-3);

        var f16 = Compare(options with { KvType = KvDataType.F16 }, out _);
        Assert.True(f16.MeanKld.Value > same.MeanKld.Value, $"F16 KV KLD {f16.MeanKld.Value} vs F32 {same.MeanKld.Value}");
        Assert.True(f16.RmsPDiff.Value > same.RmsPDiff.Value);
    }

    [Fact]
    public void Bad_base_files_and_short_texts_get_clear_errors()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var o = new PerplexityOptions { Context = 128, MaxChunks = 2, Threads = 2 };
        var notBase = TestPaths.NewTempFile(".kld");
        File.WriteAllText(notBase, "definitely not logits");
        using (var f = File.OpenRead(notBase))
            Assert.Contains("not a log-probability file", Assert.Throws<InvalidDataException>(() => Perplexity.CompareWithBase(model, f, notBase, o)).Message);

        var good = TestPaths.NewTempFile(".kld");
        using (var f = File.Create(good)) Perplexity.Run(model, Text, o, f);
        var truncated = TestPaths.NewTempFile(".kld");
        var bytes = File.ReadAllBytes(good);
        File.WriteAllBytes(truncated, bytes[..(bytes.Length - 100)]);
        using (var f = File.OpenRead(truncated))
            Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => Perplexity.CompareWithBase(model, f, truncated, o)).Message);

        using (var other = Model.Load(TestModels.Get("qwen3-tiny", "f32")))
        using (var f = File.OpenRead(good))
            Assert.Contains("vocabulary", Assert.Throws<InvalidRequestException>(() => Perplexity.CompareWithBase(other, f, good, o)).Message);

        Assert.Contains("needs at least", Assert.Throws<InvalidRequestException>(() => Perplexity.Run(model, "Once upon a time", o)).Message);
        Assert.Throws<InvalidRequestException>(() => Perplexity.Run(model, Text, o with { Context = 2 }));
        Assert.Throws<InvalidRequestException>(() => Perplexity.Run(model, Text, o with { BatchSize = 200 }));
    }

    [Fact]
    public void The_command_prints_the_estimate_and_the_kl_statistics()
    {
        var text = TestPaths.NewTempFile(".txt");
        File.WriteAllText(text, Text);
        var kld = TestPaths.NewTempFile(".kld");
        var out1 = new StringWriter();
        var err1 = new StringWriter();
        var args = new PerplexityCommand.Args
        {
            ModelPath = TestPaths.Stories260K,
            TextPath = text,
            BasePath = kld,
            Options = new PerplexityOptions { Context = 128, MaxChunks = 4, Threads = 2 },
        };
        Assert.Equal(0, PerplexityCommand.Run(args, out1, err1));
        Assert.Matches(@"Final estimate: PPL = \d+\.\d{4} \+/- \d+\.\d{5}", out1.ToString());
        Assert.Matches(@"\[1\]\d+\.\d{4},\[2\]", err1.ToString());   // llama-perplexity's running line

        var out2 = new StringWriter();
        Assert.Equal(0, PerplexityCommand.Run(args with { TextPath = null, Compare = true }, out2, new StringWriter()));
        Assert.Contains("Mean    KLD:", out2.ToString());
        Assert.Contains("Same top p: 100.000", out2.ToString());
        Assert.Contains("4 chunks of 128", out2.ToString());
    }
}
