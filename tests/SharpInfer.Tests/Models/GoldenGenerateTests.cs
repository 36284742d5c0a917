using SharpInfer.Models;

namespace SharpInfer.Tests.Models;

/// <summary>
/// Numerics against llama.cpp with exact arithmetic (golden/generate): teacher-forced top-5 log-probs within 1e-3
/// by token id, top-1 identical where the golden margin exceeds 2e-3, and free-running greedy identical to
/// llama.cpp's up to the first step whose golden margin is below 2e-3.
/// </summary>
public class GoldenGenerateTests
{
    public const double LogProbTolerance = 1e-3;
    public const double MarginThreshold = 2e-3;

    [Fact]
    public void Stories260KMatchesLlamaCpp() => Check(TestPaths.Stories260K, "generate/stories260K.jsonl");

    [Theory]
    [InlineData("qwen3-tiny", "f32")]
    [InlineData("qwen2-tiny", "f32")]
    [InlineData("llama3-tiny", "f32")]
    [InlineData("mistral-tiny", "f32")]
    [InlineData("mistral-tiny", "f16")]
    [InlineData("mistral-tiny", "q8_0")]
    [InlineData("mistral-tiny", "q4_0")]
    [InlineData("mistral-tiny", "q4_k_m")]
    [InlineData("gpt-oss-tiny", "q8_0")]
    public void SyntheticModelMatchesLlamaCpp(string preset, string type) =>
        Check(TestModels.Get(preset, type), $"generate/{preset}-{type}-s1.jsonl");

    /// <summary>The added families. Their tiny files are 70–180 MB each (large vocabularies), so they are generated
    /// per test run and deleted afterwards instead of kept in .cache (which stays under 1 GB).</summary>
    [Theory]
    [InlineData("smollm3-tiny", "f32")]     // no RoPE on every 4th layer
    [InlineData("phi3-tiny", "f32")]        // fused QKV and gate/up
    [InlineData("qwen3moe-tiny", "f32")]    // 8 experts, top-2
    [InlineData("gpt-oss-tiny", "f32")]     // sinks, window 16 then full, YaRN, MoE with biases (MXFP4 experts)
    public void AddedFamilyMatchesLlamaCpp(string preset, string type) =>
        Check(TestModels.GetLarge(preset, type), $"generate/{preset}-{type}-s1.jsonl");

    /// <summary>Gemma 3 (5 sliding-window : 1 global layers, GELU, post-norms, head_dim 128). ggml computes GELU through
    /// a table indexed by the input rounded to F16, so a one-ulp difference before it (our attention sums in another
    /// order than ggml's) can move an activation by a whole F16 step, and this random-weight model turns such steps into
    /// log-prob changes of up to ~4e-3 (3.9e-3 measured; 237 of 290 within 1e-3): one ulp on our own queries does as
    /// much (<see cref="Gemma3Tests.OneUlpOnTheQueriesMovesLogProbsByMoreThanTheUsualTolerance"/>). So it is held to
    /// 8e-3 (twice the noise; a wrong RoPE base is off by 7e-2, GELU without the table by 1.5e-2), and greedy to
    /// llama.cpp's up to the first margin below 1.6e-2.</summary>
    [Fact]
    public void Gemma3MatchesLlamaCppWithinItsGeluTableNoise() =>
        Check(TestModels.GetLarge("gemma3-tiny", "f32"), "generate/gemma3-tiny-f32-s1.jsonl", Gemma3LogProbTolerance, Gemma3MarginThreshold);

    public const double Gemma3LogProbTolerance = 8e-3, Gemma3MarginThreshold = 1.6e-2;

    /// <summary>Gemma 3 1B's shapes (26 layers, window 512, 262k vocabulary; about 1 GB, generated per run): Large.</summary>
    [Fact]
    [Trait("Category", "Large")]
    public void Gemma3RealSizeMatchesLlamaCppWithinItsGeluTableNoise() =>
        Check(TestModels.GetLarge("gemma3-1b", "q8_0"), "generate/gemma3-1b-q8_0-s1.jsonl", Gemma3LogProbTolerance, Gemma3MarginThreshold);

    /// <summary>Real-size models (0.5–1 GB each, generated per run and deleted afterwards): slow, so tagged
    /// Category=Large (CI runs them; <c>--filter "Category!=Large"</c> skips them for a quick local run).</summary>
    [Theory]
    [Trait("Category", "Large")]
    [InlineData("qwen3-0.6b", "q8_0")]
    [InlineData("qwen2.5-0.5b", "f16")]
    [InlineData("llama3.2-1b", "q4_0")]
    [InlineData("llama-1.1b-spm", "q4_k_m")]
    public void RealSizeSyntheticModelMatchesLlamaCpp(string preset, string type) =>
        Check(TestModels.GetLarge(preset, type), $"generate/{preset}-{type}-s1.jsonl");

    internal static void Check(string modelPath, string golden, double tolerance = LogProbTolerance, double marginThreshold = MarginThreshold)
    {
        using var model = Model.Load(modelPath);
        foreach (var gc in GoldenCase.Load(golden))
        {
            // teacher forcing over prompt + gen ids
            var all = gc.PromptIds.Concat(gc.GenIds).ToArray();
            using (var runner = new SequenceRunner(model, all.Length + 1))
            {
                var logits = runner.Feed(all);
                var tops = gc.PromptTop.Concat(gc.GenTop.Skip(1)).ToArray();
                Assert.True(tops.Length <= logits.Length);
                for (int i = 0; i < tops.Length; i++)
                {
                    var lp = SequenceRunner.LogSoftmax(logits[i]);
                    foreach (var (id, goldLp) in tops[i])
                        Assert.True(Math.Abs(lp[id] - goldLp) <= tolerance,
                            $"'{gc.Prompt}' step {i}: token {id} log-prob {lp[id]:F6} vs llama.cpp {goldLp:F6}");
                    if (GoldenCase.Margin(tops[i]) > marginThreshold)
                        Assert.Equal(tops[i][0].Id, SequenceRunner.ArgMax(logits[i]));
                }
            }
            // free-running greedy
            using (var runner = new SequenceRunner(model, all.Length + 1))
            {
                var last = runner.Feed(gc.PromptIds, allLogits: false)[0];
                for (int j = 0; j < gc.GenIds.Length; j++)
                {
                    int next = SequenceRunner.ArgMax(last);
                    if (GoldenCase.Margin(gc.GenTop[j]) < marginThreshold) break;
                    Assert.True(next == gc.GenIds[j], $"'{gc.Prompt}' greedy step {j}: got {next}, llama.cpp {gc.GenIds[j]}");
                    last = runner.Feed([next], allLogits: false)[0];
                }
            }
        }
    }
}
