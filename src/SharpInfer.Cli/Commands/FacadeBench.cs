using System.Diagnostics;
using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;

namespace SharpInfer.Cli.Commands;

/// <summary>
/// <c>sharpinfer bench --via-facade</c>: the generation test (tgN) through the in-process API —
/// <see cref="Llm.GenerateStreamingAsync"/> with greedy sampling and end-of-sequence ignored, so every run makes exactly
/// N tokens — on the same model, threads and KV type as the direct test, to show what the facade costs per token
/// (text prompt tokenization, the engine's async request stream, detokenized text chunks, the request's trace span).
/// </summary>
internal static class FacadeBench
{
    public static BenchmarkResult Run(Model model, int threads, int nGen, int repetitions, KvDataType kv, Action<int>? onRun = null)
    {
        using var llm = Llm.FromModel(model, new LlmOptions
        {
            Threads = threads,
            ContextLength = nGen + 64,
            ParallelSequences = 1,   // as the direct test: one sequence, nothing else in the batch
            KvCacheType = kv,
            PrefixCaching = false,
        });
        var options = new GenerationOptions { MaxTokens = nGen, Temperature = 0, IgnoreEos = true };
        Once(llm, options);   // warm-up (JIT, page-in of the weights)
        onRun?.Invoke(0);
        var samples = new double[repetitions];
        for (int r = 0; r < repetitions; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Once(llm, options);
            samples[r] = (Stopwatch.GetTimestamp() - t0) * 1e9 / Stopwatch.Frequency;
            onRun?.Invoke(r + 1);
        }
        long generated = llm.Engine.Stats.GenerationTokens;
        if (generated != (long)nGen * (repetitions + 1))
            throw new SharpInferException($"the facade run generated {generated} tokens, expected {nGen} per run");
        return new BenchmarkResult(0, nGen, threads, samples);
    }

    private static void Once(Llm llm, GenerationOptions options)
    {
        // the empty prompt is the BOS token alone where the vocabulary adds one (the direct test's prompt), else one word
        string prompt = llm.Model.Tokenizer.Encode("", addSpecial: true, parseSpecial: true).Length > 0 ? "" : "Once";
        var stream = llm.GenerateStreamingAsync(prompt, options).GetAsyncEnumerator();
        try
        {
            while (stream.MoveNextAsync().AsTask().GetAwaiter().GetResult()) { }
        }
        finally
        {
            stream.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}
