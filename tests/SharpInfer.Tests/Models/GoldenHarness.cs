using System.Text.Json;
using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Tests.Models;

/// <summary>One prompt of a golden generate file.</summary>
public sealed record GoldenCase(string Prompt, int[] PromptIds, int[] GenIds, (int Id, double LogProb)[][] PromptTop, (int Id, double LogProb)[][] GenTop)
{
    public static GoldenCase[] Load(string relativePath) =>
        Golden.Lines(relativePath).Select(e => new GoldenCase(
            e.GetProperty("prompt").GetString()!,
            Ints(e.GetProperty("prompt_ids")),
            Ints(e.GetProperty("gen_ids")),
            Tops(e.GetProperty("prompt_top")),
            Tops(e.GetProperty("gen_top")))).ToArray();

    private static int[] Ints(JsonElement a) => a.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    private static (int, double)[][] Tops(JsonElement a) =>
        a.EnumerateArray().Select(step => step.EnumerateArray().Select(p => (p[0].GetInt32(), p[1].GetDouble())).ToArray()).ToArray();

    public static double Margin((int Id, double LogProb)[] top) => top[0].LogProb - top[1].LogProb;
}

/// <summary>Runs a model on one sequence (through the engine's <see cref="ModelRunner"/>, with an F32 KV cache by
/// default), returning the logits of every fed token: the golden comparisons need every position's logits, which
/// the engine's request path does not expose.</summary>
internal sealed class SequenceRunner : IDisposable
{
    private readonly Model _model;
    private readonly ModelRunner _runner;
    private readonly BlockTable _table = new();
    private int _length;

    public SequenceRunner(Model model, int maxTokens = 512, int threads = 2, KvDataType kv = KvDataType.F32, int blockSize = 16, int maxBatch = 64,
                          MatMulPrecision precision = MatMulPrecision.Exact, IsaLevel? isa = null)
    {
        _model = model;
        _runner = new ModelRunner(model, threads, maxBatch, blockSize, BlockTable.BlocksFor(maxTokens, blockSize), kv, precision, isa);
    }

    /// <summary>Feeds tokens (continuing the sequence) and returns the logits of every fed token.</summary>
    public float[][] Feed(ReadOnlySpan<int> tokens, bool allLogits = true)
    {
        var batch = new ForwardBatch(tokens.Length, 1);
        int seq = batch.AddSequence(_table);
        for (int i = 0; i < tokens.Length; i++)
            batch.AddToken(seq, tokens[i], _length + i, allLogits || i == tokens.Length - 1);
        Assert.True(_runner.Blocks.TryGrow(_table, _length + tokens.Length), "the sequence outgrew its KV cache");
        int V = _model.Config.VocabSize;
        var logits = new float[batch.LogitCount * V];
        _runner.Forward(batch, logits);
        _length += tokens.Length;
        return Enumerable.Range(0, batch.LogitCount).Select(i => logits.AsSpan(i * V, V).ToArray()).ToArray();
    }

    public static double[] LogSoftmax(float[] logits)
    {
        double max = logits.Max();
        double sum = 0;
        foreach (var l in logits) sum += Math.Exp(l - max);
        double lse = max + Math.Log(sum);
        return logits.Select(l => l - lse).ToArray();
    }

    public static int ArgMax(float[] logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }

    public void Dispose() => _runner.Dispose();
}
