using System.Text.Json;
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

/// <summary>Runs a model on one sequence with an F32 KV cache, returning log-softmax rows.</summary>
public sealed class SequenceRunner : IDisposable
{
    private readonly Model _model;
    private readonly Transformer _tf;
    private readonly PagedKvCache _cache;
    private readonly BlockAllocator _alloc;
    private readonly BlockTable _table = new();
    private readonly ComputePool _pool;
    private int _length;

    public SequenceRunner(Model model, int maxTokens = 512, int threads = 2, KvDataType kv = KvDataType.F32, int blockSize = 16, int maxBatch = 64,
                          MatMulPrecision precision = MatMulPrecision.Exact, IsaLevel? isa = null)
    {
        _model = model;
        _pool = new ComputePool(threads);
        _tf = new Transformer(model.Config, model.Weights, _pool, maxBatch, blockSize, precision, isa);
        var c = model.Config;
        int blocks = BlockTable.BlocksFor(maxTokens, blockSize);
        _cache = new PagedKvCache(c.LayerCount, c.KvHeadCount, c.HeadDim, blockSize, blocks, kv);
        _alloc = new BlockAllocator(blocks);
    }

    /// <summary>Feeds tokens (continuing the sequence) and returns the logits of every fed token.</summary>
    public float[][] Feed(ReadOnlySpan<int> tokens, bool allLogits = true)
    {
        var batch = new ForwardBatch(tokens.Length, 1);
        int seq = batch.AddSequence(_table);
        for (int i = 0; i < tokens.Length; i++)
            batch.AddToken(seq, tokens[i], _length + i, allLogits || i == tokens.Length - 1);
        while (_table.Count * _cache.BlockSize < _length + tokens.Length)
        {
            Assert.True(_alloc.TryAllocate(out int b));
            _table.Add(b);
        }
        int V = _model.Config.VocabSize;
        var logits = new float[batch.LogitCount * V];
        _tf.Forward(batch, _cache, logits);
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

    public void Dispose()
    {
        _tf.Dispose();
        _cache.Dispose();
        _pool.Dispose();
    }
}
