using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using SharpInfer.Engine;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Sampling;
using SharpInfer.Scheduling;
using SharpInfer.Server;

namespace SharpInfer.Cli.Commands;

/// <summary>
/// <c>sharpinfer bench throughput</c>: offline serving throughput like vLLM's benchmark_throughput — all requests
/// (random prompt tokens, random lengths in the given ranges, ignore_eos) are submitted at once and the engine
/// serves them; <c>--mode</c> compares continuous batching, static batching and one request at a time.
/// </summary>
internal static class BenchThroughputCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "GGUF model file" };
        var numPrompts = new Option<int>("--num-prompts") { Description = "Requests", DefaultValueFactory = _ => 64 };
        var inputLen = new Option<string>("--input-len") { Description = "Prompt length A or range A:B (tokens)", DefaultValueFactory = _ => "128" };
        var outputLen = new Option<string>("--output-len") { Description = "Output length C or range C:D (tokens)", DefaultValueFactory = _ => "128" };
        var mode = new Option<string>("--mode") { Description = "continuous | static | sequential", DefaultValueFactory = _ => "continuous" };
        var maxSeqs = new Option<int>("--max-num-seqs") { Description = "Most sequences per step", DefaultValueFactory = _ => 16 };
        var maxTokens = new Option<int>("--max-num-batched-tokens") { Description = "Token budget per step", DefaultValueFactory = _ => 512 };
        var blockSize = new Option<int>("--block-size") { Description = "KV block size (8, 16, 32)", DefaultValueFactory = _ => 16 };
        var kvMem = new Option<string?>("--kv-cache-memory") { Description = "KV cache size, e.g. 2GiB (default: what max-num-seqs × longest request needs)" };
        var threads = new Option<int>("--threads", "-t") { Description = "Threads", DefaultValueFactory = _ => ComputePool.DefaultThreads };
        var cacheType = new KvCacheTypeOptions();
        var seed = new Option<int>("--seed") { Description = "Seed for prompt lengths and tokens", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var swaFull = new Option<bool>("--swa-full") { Description = "Keep every position of sliding-window layers in the KV cache (by default they free what their window has passed)" };
        var cmd = new Command("throughput", "Offline serving throughput (continuous vs static vs sequential batching)")
        {
            model, numPrompts, inputLen, outputLen, mode, maxSeqs, maxTokens, blockSize, kvMem, threads, cacheType.Both, cacheType.Keys, cacheType.Values, seed, json, swaFull,
        };
        cmd.SetAction(r =>
        {
            var (inA, inB) = Range(r.GetValue(inputLen)!, "--input-len");
            var (outA, outB) = Range(r.GetValue(outputLen)!, "--output-len");
            string m = r.GetValue(mode)!.ToLowerInvariant();
            if (m is not ("continuous" or "static" or "sequential"))
                throw new InvalidRequestException($"--mode must be continuous, static or sequential, got '{m}'", "mode");
            using var loaded = LoadProgress.LoadModel(ModelFileCheck.Resolve(r.GetValue(model)), Console.Error);
            var options = new EngineOptions
            {
                Threads = r.GetValue(threads),
                MaxNumSeqs = m == "sequential" ? 1 : r.GetValue(maxSeqs),
                MaxNumBatchedTokens = Math.Max(r.GetValue(maxTokens), m == "sequential" ? 1 : r.GetValue(maxSeqs)),
                MaxQueuedRequests = int.MaxValue / 2,
                MaxModelLen = Math.Min(loaded.Config.TrainedContextLength, inB + outB + 1),
                BlockSize = r.GetValue(blockSize),
                KvType = cacheType.Get(r).Keys,
                KvValueType = cacheType.Get(r).Values,
                KvCacheMemoryBytes = r.GetValue(kvMem) is { } s ? ByteSize.Parse(s) : null,
                KvCacheFraction = 0.5,
                Mode = m == "static" ? SchedulingMode.Static : SchedulingMode.Continuous,
                SwaFull = r.GetValue(swaFull),
            };
            var result = ProgressDisplay.IsTerminal(Console.Error)
                ? ProgressDisplay.Run(ProgressDisplay.StandardError(), "bench throughput", report =>
                    Run(loaded, options, r.GetValue(numPrompts), inA, inB, outA, outB, r.GetValue(seed), m, (d, t) => report($"bench throughput: {d}/{t} requests", (double)d / t)))
                : Run(loaded, options, r.GetValue(numPrompts), inA, inB, outA, outB, r.GetValue(seed), m);
            if (r.GetValue(json)) Console.Out.WriteLine(CliJson.Serialize(result, CliJson.Indented));
            else Print(result, Console.Out);
            return 0;
        });
        return cmd;
    }

    public static (int, int) Range(string s, string name)
    {
        var parts = s.Split(':');
        if (parts.Length is < 1 or > 2 || !int.TryParse(parts[0], out int a) || a < 1)
            throw new InvalidRequestException($"{name} must be N or A:B with positive integers, got '{s}'", name);
        int b = a;
        if (parts.Length == 2 && (!int.TryParse(parts[1], out b) || b < a))
            throw new InvalidRequestException($"{name} must be N or A:B with A <= B, got '{s}'", name);
        return (a, b);
    }

    /// <param name="onDone">Called with (requests finished, n) as each request finishes, from any thread.</param>
    public static Dictionary<string, object> Run(Model model, EngineOptions options, int n, int inA, int inB, int outA, int outB, int seed, string mode,
                                                 Action<int, int>? onDone = null)
    {
        var rng = new Random(seed);
        int V = model.Config.VocabSize;
        var requests = Enumerable.Range(0, n).Select(_ =>
        {
            var prompt = new int[rng.Next(inA, inB + 1)];
            for (int i = 0; i < prompt.Length; i++) prompt[i] = rng.Next(V);
            int outLen = rng.Next(outA, outB + 1);
            return new EngineRequest
            {
                PromptTokens = prompt,
                Sampling = new SamplingParams { Temperature = 0, MaxTokens = outLen, IgnoreEos = true },
            };
        }).ToArray();
        using var engine = new LlmEngine(model, options);
        Console.Error.WriteLine($"engine: {options.MaxNumSeqs} seqs, {options.MaxNumBatchedTokens} batched tokens, KV cache {ByteSize.Format(engine.KvCacheBytes)} " +
                                $"({engine.KvCapacityTokens} tokens in blocks of {options.BlockSize}), mode {mode}, {options.Threads} threads, {Isa.Describe()}");
        var sw = Stopwatch.StartNew();
        int finished = 0;
        var tasks = requests.Select(async r =>
        {
            int prompt = 0, output = 0;
            await foreach (var o in engine.AddRequest(r)) { prompt = o.PromptTokens; output = o.CompletionTokens; }
            onDone?.Invoke(Interlocked.Increment(ref finished), n);
            return (prompt, output);
        }).ToArray();
        var done = Task.WhenAll(tasks).GetAwaiter().GetResult();
        double seconds = sw.Elapsed.TotalSeconds;
        long promptTokens = done.Sum(d => (long)d.prompt), outputTokens = done.Sum(d => (long)d.output);
        var st = engine.Stats;
        return new Dictionary<string, object>
        {
            ["mode"] = mode,
            ["num_prompts"] = n,
            ["elapsed_s"] = Math.Round(seconds, 3),
            ["requests_per_s"] = Math.Round(n / seconds, 4),
            ["output_tokens_per_s"] = Math.Round(outputTokens / seconds, 3),
            ["total_tokens_per_s"] = Math.Round((promptTokens + outputTokens) / seconds, 3),
            ["prompt_tokens"] = promptTokens,
            ["output_tokens"] = outputTokens,
            ["max_concurrency"] = st.MaxConcurrency,
            ["mean_concurrency"] = Math.Round(st.TimeAveragedConcurrency, 3),
            ["max_num_seqs"] = options.MaxNumSeqs,
            ["block_size"] = options.BlockSize,
            ["kv_cache_tokens"] = engine.KvCapacityTokens,
            ["kv_cache_bytes"] = engine.KvCacheBytes,
            ["kv_peak_bytes"] = engine.KvCacheBytes / Math.Max(1, st.KvBlocksTotal) * st.KvBlocksPeak,
            ["swa_full"] = options.SwaFull,
            ["kv_waste_time_averaged"] = Math.Round(st.TimeAveragedKvWaste, 5),
            ["preemptions"] = st.Preemptions,
            ["steps"] = st.Steps,
            ["threads"] = options.Threads,
            ["model"] = Path.GetFileName(model.Path),
        };
    }

    private static void Print(Dictionary<string, object> r, TextWriter o)
    {
        o.WriteLine($"mode {r["mode"]}: {r["num_prompts"]} requests in {r["elapsed_s"]} s");
        o.WriteLine($"  throughput: {r["requests_per_s"]} requests/s, {r["output_tokens_per_s"]} output tokens/s, {r["total_tokens_per_s"]} total tokens/s");
        o.WriteLine($"  tokens: {r["prompt_tokens"]} prompt, {r["output_tokens"]} output");
        o.WriteLine($"  concurrency: max {r["max_concurrency"]} of {r["max_num_seqs"]}, mean {r["mean_concurrency"]}; {r["steps"]} steps; {r["preemptions"]} preemptions");
        o.WriteLine($"  KV cache: {r["kv_cache_tokens"]} tokens in blocks of {r["block_size"]}; time-averaged internal waste {(double)r["kv_waste_time_averaged"] * 100:F2}%");
        o.WriteLine($"  KV held at most: {ByteSize.Format((long)r["kv_peak_bytes"])} of {ByteSize.Format((long)r["kv_cache_bytes"])}{((bool)r["swa_full"] ? " (--swa-full)" : "")}");
    }
}
