using System.Diagnostics;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Sampling;
using SharpInfer.Tensors;

namespace SharpInfer.Engine;

/// <summary>One llama-bench style measurement: n_prompt tokens in one pass (pp) or n_gen single-token decode
/// steps (tg), repeated; timings in nanoseconds.</summary>
/// <param name="Depth">Tokens already in the cache when the test runs (llama-bench's -d).</param>
internal sealed record BenchmarkResult(int PromptTokens, int GenTokens, int Threads, double[] SamplesNs, int Depth = 0)
{
    public int Tokens => PromptTokens + GenTokens;
    public double[] SamplesTs => SamplesNs.Select(ns => Tokens / (ns / 1e9)).ToArray();
    public double AvgNs => SamplesNs.Average();
    public double StdDevNs => StdDev(SamplesNs);
    public double AvgTs => SamplesTs.Average();
    public double StdDevTs => StdDev(SamplesTs);
    public string TestName => (PromptTokens > 0 ? $"pp{PromptTokens}" : $"tg{GenTokens}") + (Depth > 0 ? $" @ d{Depth}" : "");

    private static double StdDev(double[] x)
    {
        if (x.Length < 2) return 0;
        double m = x.Average();
        return Math.Sqrt(x.Sum(v => (v - m) * (v - m)) / (x.Length - 1));
    }
}

/// <summary>
/// Measures prompt processing and generation speed the way llama-bench does, through the serving engine (the one
/// request path): random tokens, no prefix caching (llama-bench starts every repetition from an empty cache), one
/// warm-up run. pp is one request whose prompt of n_prompt tokens is processed in steps of <c>ubatch</c> tokens and
/// yields one token; tg is one request of one token that generates n_gen tokens, one forward pass each (greedy,
/// end-of-generation ignored), so its time includes the engine's per-token work (sampling, detokenization).
/// At a depth d (llama-bench's <c>-d</c>) every request starts with the same d random tokens, computed once in the
/// untimed warm-up and then found in the prefix cache (whole blocks: a remainder of d mod block size is recomputed
/// in each run), so the timed work is the test's tokens attending over d cached ones.
/// </summary>
internal sealed class ModelBenchmark : IDisposable
{
    private readonly LlmEngine _engine;
    private readonly Random _rng = new(42);

    public int Threads { get; }
    public KvDataType KvType { get; }
    public int UBatch { get; }
    public long KvCacheBytes => _engine.KvCacheBytes;
    /// <summary>The engine's counters (prefix-cache hits show the depth prefix being reused).</summary>
    public EngineStats Stats => _engine.Stats;

    public ModelBenchmark(Model model, int threads, int maxTokens, int ubatch = 512, KvDataType kv = KvDataType.F16,
                          MatMulPrecision precision = MatMulPrecision.Fast, IsaLevel? isa = null, KvDataType? valueType = null,
                          int maxDepth = 0)
    {
        Threads = threads;
        KvType = kv;
        UBatch = ubatch;
        int context = Math.Max(8, maxDepth + maxTokens + 1);
        _engine = new LlmEngine(model, new EngineOptions
        {
            Threads = threads,
            MaxModelLen = Math.Max(context, model.Config.TrainedContextLength),
            MaxNumSeqs = 1,
            MaxNumBatchedTokens = ubatch,
            KvCacheMemoryBytes = ModelRunner.KvBytesPerToken(model.Config, kv, valueType) * (BlockTable.BlocksFor(context, 16) + 1) * 16,
            KvType = kv,
            KvValueType = valueType,
            Precision = precision,
            Isa = isa,
            EnablePrefixCaching = maxDepth > 0,   // only the depth prefix is ever repeated (other tokens are random)
        });
    }

    /// <param name="onRun">Called after the warm-up run (0) and after each timed repetition (1..repetitions).</param>
    public BenchmarkResult Run(int nPrompt, int nGen, int repetitions, Action<int>? onRun = null, int depth = 0)
    {
        int V = _engine.Model.Config.VocabSize;
        var prefix = new int[depth];
        for (int i = 0; i < depth; i++) prefix[i] = _rng.Next(V);
        Once(prefix, nPrompt, nGen);   // warm-up (JIT, page-in of the weights, the depth prefix into the cache)
        onRun?.Invoke(0);
        var samples = new double[repetitions];
        for (int r = 0; r < repetitions; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Once(prefix, nPrompt, nGen);
            samples[r] = (Stopwatch.GetTimestamp() - t0) * 1e9 / Stopwatch.Frequency;
            onRun?.Invoke(r + 1);
        }
        return new BenchmarkResult(nPrompt, nGen, Threads, samples, depth);
    }

    private void Once(int[] prefix, int nPrompt, int nGen)
    {
        int V = _engine.Model.Config.VocabSize;
        if (nPrompt > 0)
        {
            var prompt = new int[prefix.Length + nPrompt];
            prefix.CopyTo(prompt, 0);
            for (int i = prefix.Length; i < prompt.Length; i++) prompt[i] = _rng.Next(V);
            Drain(prompt, 1);
        }
        if (nGen > 0)
        {
            var prompt = new int[prefix.Length + 1];
            prefix.CopyTo(prompt, 0);
            prompt[^1] = _engine.Model.Vocabulary.BosId >= 0 ? _engine.Model.Vocabulary.BosId : 0;
            Drain(prompt, nGen);
        }
    }

    private void Drain(int[] prompt, int maxTokens)
    {
        var request = new EngineRequest { PromptTokens = prompt, Sampling = SamplingParams.Greedy(maxTokens) with { IgnoreEos = true } };
        foreach (var o in _engine.Generate(request))
            if (o.Error != null) throw new SharpInferException(o.Error);
    }

    public void Dispose() => _engine.Dispose();
}
