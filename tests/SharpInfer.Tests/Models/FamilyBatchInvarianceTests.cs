using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Tensors;

namespace SharpInfer.Tests.Models;

/// <summary>
/// Batch invariance of the added families on the fast path (what the server runs): a 40-token prompt gives bit-identical
/// logits in one pass, in chunks of 1, 7 and 16 tokens (for gpt-oss and gemma3 across their 16-token window), and
/// alone or batched with another sequence whose tokens are interleaved with it and whose KV blocks come first.
/// Covers what each family adds over the llama path: fused row views (phi3), expert grouping across the batch's tokens
/// (qwen3moe, gpt-oss), RoPE-less layers (smollm3), windows (gemma3, gpt-oss) and attention sinks (gpt-oss).
/// </summary>
public class FamilyBatchInvarianceTests
{
    private const int PromptLength = 40;

    public static TheoryData<string, string> Families => new()
    {
        { "gpt-oss-tiny", "q8_0" },
        { "qwen3moe-tiny", "q8_0" },
        { "smollm3-tiny", "f32" },
        { "phi3-tiny", "f32" },
        { "gemma3-tiny", "q8_0" },
    };

    private static string PathOf(string preset, string type) =>
        preset is "gpt-oss-tiny" or "qwen3moe-tiny" or "smollm3-tiny" ? TestModels.Get(preset, type) : TestModels.GetLarge(preset, type);

    private static int[] Prompt(int n, int vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => rng.Next(0, vocab)).ToArray();
    }

    private static SequenceRunner Runner(Model model) => new(model, 64, precision: MatMulPrecision.Fast);

    [Theory]
    [MemberData(nameof(Families))]
    public void ChunkedPrefillGivesTheLogitsOfOneShotPrefill(string preset, string type)
    {
        using var model = Model.Load(PathOf(preset, type));
        var prompt = Prompt(PromptLength, model.Config.VocabSize, 7);
        float[][] whole;
        using (var r = Runner(model)) whole = r.Feed(prompt);
        foreach (int chunk in new[] { 1, 7, 16 })
        {
            using var r = Runner(model);
            var parts = new List<float[]>();
            for (int i = 0; i < prompt.Length; i += chunk) parts.AddRange(r.Feed(prompt.AsSpan(i, Math.Min(chunk, prompt.Length - i))));
            for (int i = 0; i < prompt.Length; i++) Assert.True(whole[i].SequenceEqual(parts[i]), $"{preset}: chunk {chunk}, position {i} differs");
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void ASequenceGivesTheSameLogitsAloneAndBatchedWithAnother(string preset, string type)
    {
        using var model = Model.Load(PathOf(preset, type));
        int V = model.Config.VocabSize;
        var a = Prompt(PromptLength, V, 11);
        var b = Prompt(29, V, 12);
        float[][] alone;
        using (var r = Runner(model)) alone = r.Feed(a);

        using var runner = new ModelRunner(model, 2, 128, 16, 16, KvDataType.F32, MatMulPrecision.Fast);
        var ta = new BlockTable();
        var tb = new BlockTable();
        Assert.True(runner.Blocks.TryGrow(tb, b.Length));   // b's blocks first: a's land elsewhere than when alone
        Assert.True(runner.Blocks.TryGrow(ta, a.Length));
        var batch = new ForwardBatch(a.Length + b.Length, 2);
        int sb = batch.AddSequence(tb), sa = batch.AddSequence(ta);
        for (int i = 0; i < Math.Max(a.Length, b.Length); i++)
        {
            if (i < b.Length) batch.AddToken(sb, b[i], i, wantLogits: false);
            if (i < a.Length) batch.AddToken(sa, a[i], i, wantLogits: true);
        }
        var logits = new float[batch.LogitCount * V];
        runner.Forward(batch, logits);
        for (int i = 0; i < a.Length; i++)
            Assert.True(logits.AsSpan(i * V, V).SequenceEqual(alone[i]), $"{preset}: position {i} differs when batched");
    }
}
