using System.Diagnostics;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Engine;

/// <summary>One llama-batched-bench row: B sequences each prefilled with PP tokens, then TG decode steps that each
/// advance all B sequences by one token in one forward pass. Times in seconds.</summary>
internal sealed record BatchedBenchmarkResult(int PromptTokens, int GenTokens, int Sequences, double PromptSeconds, double GenSeconds)
{
    public int KvTokens => Sequences * (PromptTokens + GenTokens);
    /// <summary>Prompt tokens per second over all sequences.</summary>
    public double PromptTps => Sequences * PromptTokens / PromptSeconds;
    /// <summary>Generated tokens per second summed over the sequences (llama-batched-bench's S_TG).</summary>
    public double GenTps => Sequences * GenTokens / GenSeconds;
    public double TotalSeconds => PromptSeconds + GenSeconds;
    public double TotalTps => KvTokens / TotalSeconds;
}

/// <summary>
/// Measures batched decoding the way llama.cpp's llama-batched-bench does: for each parallelism B, prefill B
/// independent prompts of random tokens (in passes of at most <c>ubatch</c> tokens, several sequences per pass),
/// then decode TG steps in which every sequence contributes one token and gets logits. This is the engine's
/// continuous-batching step without scheduling, so its S_TG is the ceiling of serving throughput at B streams. It
/// drives the engine's <see cref="ModelRunner"/> directly (fixed batch shapes, no sampling or per-token logic), as
/// llama-batched-bench drives llama_decode.
/// </summary>
internal sealed class BatchedBenchmark : IDisposable
{
    private const int BlockSize = 16;
    private readonly Model _model;
    private readonly ModelRunner _runner;
    private readonly BlockManager _blocks;
    private readonly int _ubatch;
    private readonly Random _rng = new(42);

    public int Threads { get; }

    public BatchedBenchmark(Model model, int threads, int maxSequences, int maxTokensPerSequence, int ubatch = 512,
                            KvDataType kv = KvDataType.F16)
    {
        _model = model;
        Threads = threads;
        _ubatch = Math.Max(ubatch, maxSequences);
        var c = model.Config;
        int blocks = maxSequences * BlockTable.BlocksFor(maxTokensPerSequence + 1, BlockSize);
        _runner = new ModelRunner(model, threads, _ubatch, BlockSize, blocks, kv);
        _blocks = _runner.Blocks;
    }

    public BatchedBenchmarkResult Run(int nPrompt, int nGen, int sequences)
    {
        // warm-up at this batch shape for at least 2 s: page-in, and the JIT's tier-up of the hot methods (which
        // happens in the background after a delay) must be finished before the measured run
        long start = Stopwatch.GetTimestamp();
        do Once(nPrompt, nGen, sequences);
        while (Stopwatch.GetElapsedTime(start).TotalSeconds < 2);
        return Once(nPrompt, nGen, sequences);
    }

    private BatchedBenchmarkResult Once(int nPrompt, int nGen, int B)
    {
        int V = _model.Config.VocabSize;
        var tables = new BlockTable[B];
        for (int s = 0; s < B; s++) tables[s] = new BlockTable();
        var batch = new ForwardBatch(_ubatch, B);
        var logits = new float[(long)B * V];
        try
        {
            long t0 = Stopwatch.GetTimestamp();
            // prefill: fill passes of up to ubatch tokens with whole or partial prompts, logits for each prompt's last token
            int seq = 0, done = 0;
            while (seq < B)
            {
                batch.Clear();
                while (seq < B && batch.TokenCount < _ubatch)
                {
                    int n = Math.Min(nPrompt - done, _ubatch - batch.TokenCount);
                    Grow(tables[seq], done + n);
                    int si = batch.AddSequence(tables[seq]);
                    for (int i = 0; i < n; i++) batch.AddToken(si, _rng.Next(V), done + i, wantLogits: done + i == nPrompt - 1);
                    done += n;
                    if (done == nPrompt) { seq++; done = 0; }
                }
                _runner.Forward(batch, logits);
            }
            long t1 = Stopwatch.GetTimestamp();
            for (int g = 0; g < nGen; g++)
            {
                batch.Clear();
                for (int s = 0; s < B; s++)
                {
                    Grow(tables[s], nPrompt + g + 1);
                    int si = batch.AddSequence(tables[s]);
                    batch.AddToken(si, _rng.Next(V), nPrompt + g, wantLogits: true);
                }
                _runner.Forward(batch, logits);
            }
            long t2 = Stopwatch.GetTimestamp();
            double f = Stopwatch.Frequency;
            return new BatchedBenchmarkResult(nPrompt, nGen, B, (t1 - t0) / f, (t2 - t1) / f);
        }
        finally
        {
            foreach (var t in tables) _blocks.Free(t);
        }
    }

    private void Grow(BlockTable table, int tokens)
    {
        if (!_blocks.TryGrow(table, tokens)) throw new InvalidOperationException("benchmark KV cache too small");
    }

    public void Dispose()
    {
        _runner.Dispose();
    }
}
