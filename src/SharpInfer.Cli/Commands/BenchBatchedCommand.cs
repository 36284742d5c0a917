using System.CommandLine;
using System.Text.Json;
using SharpInfer.Engine;
using SharpInfer.Models;
using SharpInfer.Runtime;

namespace SharpInfer.Cli.Commands;

/// <summary>
/// <c>sharpinfer bench batched</c>: llama-batched-bench's table — for each parallelism B, prefill B prompts of PP
/// tokens, then TG steps that decode one token for every sequence in one pass; prints T_PP, S_PP, T_TG, S_TG.
/// </summary>
internal static class BenchBatchedCommand
{
    /// <summary>Most parallel sequences (the logits of one step are parallel × vocabulary floats).</summary>
    public const int MaxParallel = 512;

    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "GGUF model file" };
        var npp = new Option<int>("--n-prompt", "-npp") { Description = "Prompt tokens per sequence", DefaultValueFactory = _ => 128 };
        var ntg = new Option<int>("--n-gen", "-ntg") { Description = "Generated tokens per sequence", DefaultValueFactory = _ => 64 };
        var npl = IntListOption.Create("--parallel", "-npl", "Numbers of parallel sequences, e.g. 1,4,16 (like llama-batched-bench)", [1, 4, 16]);
        var threads = new Option<int>("--threads", "-t") { Description = "Threads", DefaultValueFactory = _ => ComputePool.DefaultThreads };
        var ubatch = new Option<int>("--ubatch-size", "-ub") { Description = "Tokens per forward pass", DefaultValueFactory = _ => 512 };
        var cacheType = new Option<string>("--cache-type") { Description = "KV cache type f16|f32", DefaultValueFactory = _ => "f16" };
        var json = new Option<bool>("--json") { Description = "Print one JSON record per row" };
        var cmd = new Command("batched", "Batched decoding speed at several parallelisms, like llama-batched-bench")
        {
            model, npp, ntg, npl, threads, ubatch, cacheType, json,
        };
        cmd.SetAction(r => Run(ModelFileCheck.Resolve(r.GetValue(model)), r.GetValue(npp), r.GetValue(ntg), r.GetValue(npl)!,
            r.GetValue(threads), r.GetValue(ubatch), r.GetValue(cacheType)!, r.GetValue(json), Console.Out, Console.Error));
        return cmd;
    }

    public static int Run(string path, int npp, int ntg, int[] parallel, int threads, int ubatch, string cacheType, bool json, TextWriter stdout,
                          TextWriter? stderr = null)
    {
        if (npp < 1 || ntg < 1) throw new InvalidRequestException("-npp and -ntg must be at least 1", "n-prompt");
        if (parallel.Length == 0 || parallel.Any(b => b < 1 || b > MaxParallel))
            throw new InvalidRequestException($"-npl values must be between 1 and {MaxParallel}", "parallel");
        if (ubatch < 1) throw new InvalidRequestException("-ub must be at least 1", "ubatch-size");
        using var model = LoadProgress.LoadModel(path, stderr ?? TextWriter.Null);
        using var bench = new BatchedBenchmark(model, threads, parallel.Max(), npp + ntg, ubatch, CommonOptions.ParseKv(cacheType));
        if (!json)
        {
            stdout.WriteLine($"model {Path.GetFileName(path)}, {threads} threads, {Isa.Describe()}, ubatch {ubatch}, KV {cacheType}");
            stdout.WriteLine("|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |");
            stdout.WriteLine("|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|");
        }
        foreach (int b in parallel)
        {
            var r = bench.Run(npp, ntg, b);
            if (json)
                stdout.WriteLine(CliJson.Serialize(new Dictionary<string, object>
                {
                    ["model_filename"] = Path.GetFileName(path),
                    ["n_threads"] = threads,
                    ["pp"] = npp,
                    ["tg"] = ntg,
                    ["pl"] = b,
                    ["n_kv"] = r.KvTokens,
                    ["t_pp"] = Math.Round(r.PromptSeconds, 6),
                    ["speed_pp"] = Math.Round(r.PromptTps, 3),
                    ["t_tg"] = Math.Round(r.GenSeconds, 6),
                    ["speed_tg"] = Math.Round(r.GenTps, 3),
                    ["t"] = Math.Round(r.TotalSeconds, 6),
                    ["speed"] = Math.Round(r.TotalTps, 3),
                }, CliJson.Compact));
            else
                stdout.WriteLine($"| {npp,5} | {ntg,6} | {b,4} | {r.KvTokens,6} | {r.PromptSeconds,8:F3} | {r.PromptTps,8:F2} | {r.GenSeconds,8:F3} | {r.GenTps,8:F2} | {r.TotalSeconds,8:F3} | {r.TotalTps,8:F2} |");
            stdout.Flush();
        }
        return 0;
    }
}
