using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Tests.Models;

/// <summary>
/// The fast path (8-bit activations, like llama.cpp's CPU backend) against llama.cpp's own fast path
/// (golden/generate-ggml): at least 99% of compared log-probs within 2e-3 and all within 2e-2, top-1 identical where
/// the golden margin exceeds 2e-2, and free-running greedy equal to llama.cpp's up to the first margin below 2e-2.
/// </summary>
public class GoldenGgmlTests
{
    public const double Tight = 2e-3, Loose = 2e-2;

    [Theory]
    [InlineData("mistral-tiny", "q8_0")]
    [InlineData("qwen3-0.6b", "q8_0")]
    public void FastPathMatchesLlamaCppFastPath(string preset, string type) => Check(preset, type, Isa.Level);

    internal static void Check(string preset, string type, IsaLevel isa)
    {
        using var model = Model.Load(TestModels.Get(preset, type));
        int compared = 0, tight = 0;
        foreach (var gc in GoldenCase.Load($"generate-ggml/{preset}-{type}-s1.jsonl"))
        {
            var all = gc.PromptIds.Concat(gc.GenIds).ToArray();
            using (var runner = new SequenceRunner(model, all.Length + 1, precision: MatMulPrecision.Fast, isa: isa))
            {
                var logits = runner.Feed(all);
                var tops = gc.PromptTop.Concat(gc.GenTop.Skip(1)).ToArray();
                for (int i = 0; i < tops.Length; i++)
                {
                    var lp = SequenceRunner.LogSoftmax(logits[i]);
                    foreach (var (id, goldLp) in tops[i])
                    {
                        double err = Math.Abs(lp[id] - goldLp);
                        compared++;
                        if (err <= Tight) tight++;
                        Assert.True(err <= Loose, $"'{gc.Prompt}' step {i}: token {id} log-prob {lp[id]:F6} vs llama.cpp {goldLp:F6}");
                    }
                    if (GoldenCase.Margin(tops[i]) > Loose) Assert.Equal(tops[i][0].Id, SequenceRunner.ArgMax(logits[i]));
                }
            }
            using (var runner = new SequenceRunner(model, all.Length + 1, precision: MatMulPrecision.Fast, isa: isa))
            {
                var last = runner.Feed(gc.PromptIds, allLogits: false)[0];
                for (int j = 0; j < gc.GenIds.Length; j++)
                {
                    if (GoldenCase.Margin(gc.GenTop[j]) < Loose) break;
                    int next = SequenceRunner.ArgMax(last);
                    Assert.True(next == gc.GenIds[j], $"'{gc.Prompt}' greedy step {j}: got {next}, llama.cpp {gc.GenIds[j]}");
                    last = runner.Feed([next], allLogits: false)[0];
                }
            }
        }
        Assert.True(tight >= 0.99 * compared, $"only {tight} of {compared} log-probs within {Tight}");
    }
}
