using System.Diagnostics;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Engine;

/// <summary>One llama-bench style measurement: n_prompt tokens in one pass (pp) or n_gen single-token decode
/// steps (tg), repeated; timings in nanoseconds.</summary>
public sealed record BenchmarkResult(int PromptTokens, int GenTokens, int Threads, double[] SamplesNs)
{
    public int Tokens => PromptTokens + GenTokens;
    public double[] SamplesTs => SamplesNs.Select(ns => Tokens / (ns / 1e9)).ToArray();
    public double AvgNs => SamplesNs.Average();
    public double StdDevNs => StdDev(SamplesNs);
    public double AvgTs => SamplesTs.Average();
    public double StdDevTs => StdDev(SamplesTs);
    public string TestName => PromptTokens > 0 ? $"pp{PromptTokens}" : $"tg{GenTokens}";

    private static double StdDev(double[] x)
    {
        if (x.Length < 2) return 0;
        double m = x.Average();
        return Math.Sqrt(x.Sum(v => (v - m) * (v - m)) / (x.Length - 1));
    }
}

/// <summary>
/// Measures prompt processing and generation speed the way llama-bench does: random tokens, an empty KV cache for
/// every repetition, one warm-up run; pp processes the prompt in micro-batches of <c>ubatch</c> with logits for
/// the last token only, tg decodes tokens one at a time with logits for each.
/// </summary>
public sealed class ModelBenchmark : IDisposable
{
    private readonly Model _model;
    private readonly ComputePool _pool;
    private readonly Transformer _transformer;
    private readonly BlockManager _blocks;
    private readonly BlockTable _table = new();
    private readonly ForwardBatch _batch;
    private readonly float[] _logits;
    private readonly Random _rng = new(42);

    public int Threads { get; }
    public KvDataType KvType { get; }
    public int UBatch { get; }

    public ModelBenchmark(Model model, int threads, int maxTokens, int ubatch = 512, KvDataType kv = KvDataType.F16,
                          MatMulPrecision precision = MatMulPrecision.Fast, IsaLevel? isa = null)
    {
        _model = model;
        Threads = threads;
        KvType = kv;
        UBatch = ubatch;
        var c = model.Config;
        _pool = new ComputePool(threads);
        _transformer = new Transformer(c, model.Weights, _pool, ubatch, 16, precision, isa);
        int blocks = BlockTable.BlocksFor(maxTokens + 1, 16);
        _blocks = new BlockManager(new PagedKvCache(c.LayerCount, c.KvHeadCount, c.HeadDim, 16, blocks, kv));
        _batch = new ForwardBatch(ubatch, 1);
        _logits = new float[c.VocabSize];
    }

    public BenchmarkResult Run(int nPrompt, int nGen, int repetitions)
    {
        Once(nPrompt, nGen);   // warm-up (JIT, page-in of the weights)
        var samples = new double[repetitions];
        for (int r = 0; r < repetitions; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Once(nPrompt, nGen);
            samples[r] = (Stopwatch.GetTimestamp() - t0) * 1e9 / Stopwatch.Frequency;
        }
        return new BenchmarkResult(nPrompt, nGen, Threads, samples);
    }

    private void Once(int nPrompt, int nGen)
    {
        _blocks.Free(_table);
        int V = _model.Config.VocabSize;
        int pos = 0;
        for (int start = 0; start < nPrompt; start += UBatch)
        {
            int n = Math.Min(UBatch, nPrompt - start);
            Grow(pos + n);
            _batch.Clear();
            int s = _batch.AddSequence(_table);
            for (int i = 0; i < n; i++) _batch.AddToken(s, _rng.Next(V), pos + i, wantLogits: start + i == nPrompt - 1);
            _transformer.Forward(_batch, _blocks.Cache, _logits);
            pos += n;
        }
        int token = _model.Vocabulary.BosId >= 0 ? _model.Vocabulary.BosId : 0;
        for (int g = 0; g < nGen; g++)
        {
            Grow(pos + 1);
            _batch.Clear();
            int s = _batch.AddSequence(_table);
            _batch.AddToken(s, token, pos, wantLogits: true);
            _transformer.Forward(_batch, _blocks.Cache, _logits);
            token = _rng.Next(V);
            pos++;
        }
    }

    private void Grow(int tokens)
    {
        if (!_blocks.TryGrow(_table, tokens)) throw new InvalidOperationException("benchmark KV cache too small");
    }

    public void Dispose()
    {
        _transformer.Dispose();
        _blocks.Dispose();
        _pool.Dispose();
    }
}
