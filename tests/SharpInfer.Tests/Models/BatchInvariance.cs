using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Tensors;

namespace SharpInfer.Tests.Models;

/// <summary>
/// Batch invariance of one model's forward pass, bit for bit: a prompt's logits must not depend on how the prompt is
/// cut into chunks, nor on another sequence sharing the batch. Shared by the family and sliding-window tests, which
/// differ only in the model, the prompts and the matmul precision.
/// </summary>
internal static class BatchInvariance
{
    /// <summary>The prompt fed whole, then in chunks of each given size: the same logits at every position.</summary>
    public static void AssertChunkedPrefillMatchesWhole(Model model, int[] prompt, int[] chunkSizes, MatMulPrecision precision, string label)
    {
        float[][] whole;
        using (var r = new SequenceRunner(model, 64, precision: precision)) whole = r.Feed(prompt);
        foreach (int chunk in chunkSizes)
        {
            using var r = new SequenceRunner(model, 64, precision: precision);
            var parts = new List<float[]>();
            for (int i = 0; i < prompt.Length; i += chunk) parts.AddRange(r.Feed(prompt.AsSpan(i, Math.Min(chunk, prompt.Length - i))));
            for (int i = 0; i < prompt.Length; i++) Assert.True(whole[i].SequenceEqual(parts[i]), $"{label}: chunk {chunk}, position {i} differs");
        }
    }

    /// <summary><paramref name="a"/> alone, then in one batch with <paramref name="b"/> (b's KV blocks taken first, so
    /// a's land elsewhere than when alone; the two interleaved token by token, each in position order): the same
    /// logits at every position of a.</summary>
    public static void AssertBatchedMatchesAlone(Model model, int[] a, int[] b, MatMulPrecision precision, string label)
    {
        float[][] alone;
        using (var r = new SequenceRunner(model, 64, precision: precision)) alone = r.Feed(a);

        using var runner = new ModelRunner(model, 2, 128, 16, 16, KvDataType.F32, precision);
        var ta = new BlockTable();
        var tb = new BlockTable();
        Assert.True(runner.Blocks.TryGrow(tb, b.Length));
        Assert.True(runner.Blocks.TryGrow(ta, a.Length));
        var batch = new ForwardBatch(a.Length + b.Length, 2);
        int sb = batch.AddSequence(tb), sa = batch.AddSequence(ta);
        for (int i = 0; i < Math.Max(a.Length, b.Length); i++)
        {
            if (i < b.Length) batch.AddToken(sb, b[i], i, wantLogits: false);
            if (i < a.Length) batch.AddToken(sa, a[i], i, wantLogits: true);
        }
        int V = model.Config.VocabSize;
        var logits = new float[batch.LogitCount * V];
        runner.Forward(batch, logits);
        for (int i = 0; i < a.Length; i++)
            Assert.True(logits.AsSpan(i * V, V).SequenceEqual(alone[i]), $"{label}: position {i} differs when batched");
    }
}
