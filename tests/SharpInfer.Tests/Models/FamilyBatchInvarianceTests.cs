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

    [Theory]
    [MemberData(nameof(Families))]
    public void ChunkedPrefillGivesTheLogitsOfOneShotPrefill(string preset, string type)
    {
        using var model = Model.Load(PathOf(preset, type));
        var prompt = Prompt(PromptLength, model.Config.VocabSize, 7);
        BatchInvariance.AssertChunkedPrefillMatchesWhole(model, prompt, [1, 7, 16], MatMulPrecision.Fast, preset);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void ASequenceGivesTheSameLogitsAloneAndBatchedWithAnother(string preset, string type)
    {
        using var model = Model.Load(PathOf(preset, type));
        int V = model.Config.VocabSize;
        BatchInvariance.AssertBatchedMatchesAlone(model, Prompt(PromptLength, V, 11), Prompt(29, V, 12), MatMulPrecision.Fast, preset);
    }
}
