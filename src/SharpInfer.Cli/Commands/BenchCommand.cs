using System.CommandLine;
using System.Text.Json;
using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Cli.Commands;

/// <summary>
/// <c>sharpinfer bench</c>: llama-bench's pp/tg measurements (mean ± sd over repetitions, plus peak RSS); with
/// <c>--json</c> the same records llama-bench -o json prints. Subcommands: <c>throughput</c> (offline serving
/// benchmark) and <c>serve</c> (load generator against an OpenAI-compatible server).
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "GGUF model file" };
        var nPrompt = IntListOption.Create("--n-prompt", "-p", "Prompt lengths to test (pp), e.g. 128,512; 0 skips", [512]);
        var nGen = IntListOption.Create("--n-gen", "-n", "Generation lengths to test (tg), e.g. 32,128; 0 skips", [128]);
        var threads = new Option<int>("--threads", "-t") { Description = "Threads", DefaultValueFactory = _ => ComputePool.DefaultThreads };
        var depth = IntListOption.Create("--n-depth", "-d", "Tokens already in the KV cache when each test runs, e.g. 0,4096 (like llama-bench -d)", [0]);
        var reps = new Option<int>("--repetitions", "-r") { Description = "Repetitions of each test", DefaultValueFactory = _ => 5 };
        var ubatch = new Option<int>("--ubatch-size", "-ub") { Description = "Tokens per forward pass", DefaultValueFactory = _ => 512 };
        var cacheType = new KvCacheTypeOptions();
        var exact = new Option<bool>("--exact") { Description = "Float activations for quantized weights (slower, exact)" };
        var json = new Option<bool>("--json") { Description = "Print llama-bench's JSON records" };
        var viaFacade = new Option<bool>("--via-facade") { Description = "Run the generation tests (tg) through the in-process Llm API (GenerateStreamingAsync), to compare with the direct run" };
        var cmd = new Command("bench", "Measure prompt processing (pp) and generation (tg) speed, like llama-bench")
        {
            model, nPrompt, nGen, depth, threads, reps, ubatch, cacheType.Both, cacheType.Keys, cacheType.Values, exact, json, viaFacade,
        };
        cmd.Subcommands.Add(BenchServeCommand.Create());
        cmd.SetAction(r => Run(ModelFileCheck.Resolve(r.GetValue(model)), r.GetValue(nPrompt)!, r.GetValue(nGen)!, r.GetValue(threads),
            r.GetValue(reps), r.GetValue(ubatch), cacheType.Get(r), r.GetValue(exact), r.GetValue(json), Console.Out, Console.Error, r.GetValue(depth), r.GetValue(viaFacade)));
        return cmd;
    }

    public static int Run(string path, int[] prompts, int[] gens, int threads, int reps, int ubatch, (KvDataType Keys, KvDataType? Values) kv, bool exact, bool json,
                          TextWriter stdout, TextWriter stderr, int[]? depths = null, bool viaFacade = false)
    {
        if (reps < 1) throw new InvalidRequestException("--repetitions must be at least 1", "repetitions");
        depths = depths is { Length: > 0 } ? depths : [0];
        if (prompts.Any(p => p < 0) || gens.Any(g => g < 0)) throw new InvalidRequestException("--n-prompt and --n-gen values must not be negative", "n-prompt");
        if (depths.Any(d => d < 0 || d > 1 << 20)) throw new InvalidRequestException("--n-depth values must be between 0 and 1048576", "n-depth");
        using var model = LoadProgress.LoadModel(path, stderr, exact ? MatMulPrecision.Exact : MatMulPrecision.Fast);
        int maxTokens = Math.Max(prompts.DefaultIfEmpty(0).Max(), 1) + Math.Max(gens.DefaultIfEmpty(0).Max(), 1);
        using var bench = new ModelBenchmark(model, threads, maxTokens, ubatch, kv.Keys, exact ? MatMulPrecision.Exact : MatMulPrecision.Fast, valueType: kv.Values,
                                          maxDepth: depths.Max());
        var results = new List<BenchmarkResult>();
        if (!json)
        {
            stdout.WriteLine($"| model | size | params | isa | threads | test | t/s |");
            stdout.WriteLine($"| --- | ---: | ---: | --- | ---: | ---: | ---: |");
        }
        var tests = prompts.Where(p => p > 0).Select(p => (p, 0)).Concat(gens.Where(g => g > 0).Select(g => (0, g))).ToArray();
        if (viaFacade && depths.Any(d => d > 0)) throw new InvalidRequestException("--via-facade runs without --n-depth", "via-facade");
        foreach (var (p, g, d) in depths.SelectMany(d => tests.Select(t => (t.Item1, t.Item2, d))))
        {
            string test = (p > 0 ? $"pp{p}" : $"tg{g}") + (d > 0 ? $" @ d{d}" : "");
            BenchmarkResult Measure(Action<int>? onRun) => viaFacade && g > 0
                ? FacadeBench.Run(model, threads, g, reps, kv.Keys, onRun)
                : bench.Run(p, g, reps, onRun, d);
            var res = ProgressDisplay.IsTerminal(stderr)
                ? ProgressDisplay.Run(ProgressDisplay.StandardError(), test, report =>
                    Measure(run => report(run == 0 ? $"{test}: warm-up done" : $"{test}: {run}/{reps}", (run + 1.0) / (reps + 1))), clearWhenDone: true)
                : Measure(null);
            results.Add(res);
            if (!json)
            {
                stdout.WriteLine($"| {Describe(model)} | {model.File.FileSize / 1048576.0:F2} MiB | {Params(model) / 1e6:F2} M | {Isa.Describe()} | {threads} | {res.TestName}{(viaFacade && res.GenTokens > 0 ? " via Llm" : "")} | {res.AvgTs:F2} ± {res.StdDevTs:F2} |");
                stdout.Flush();
            }
        }
        long rss = MemoryInfo.PeakRssBytes();
        if (json)
        {
            var records = results.Select(res => new Dictionary<string, object?>
            {
                ["build_commit"] = BuildInfo.Commit,
                ["cpu_info"] = Environment.GetEnvironmentVariable("PROCESSOR_IDENTIFIER") ?? System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString(),
                ["backends"] = "CPU",
                ["model_filename"] = Path.GetFileName(path),
                ["model_type"] = Describe(model),
                ["model_size"] = model.File.FileSize,
                ["model_n_params"] = Params(model),
                ["n_batch"] = ubatch,
                ["n_ubatch"] = ubatch,
                ["n_threads"] = threads,
                ["type_k"] = KvCacheTypeOptions.Name(kv.Keys),
                ["type_v"] = KvCacheTypeOptions.Name(kv.Values ?? kv.Keys),
                ["isa"] = Isa.Describe(),
                ["precision"] = exact ? "exact" : "fast",
                ["n_prompt"] = res.PromptTokens,
                ["n_gen"] = res.GenTokens,
                ["n_depth"] = res.Depth,
                ["test_time"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ"),
                ["avg_ns"] = (long)res.AvgNs,
                ["stddev_ns"] = (long)res.StdDevNs,
                ["avg_ts"] = Math.Round(res.AvgTs, 6),
                ["stddev_ts"] = Math.Round(res.StdDevTs, 6),
                ["samples_ns"] = res.SamplesNs.Select(x => (long)x).ToArray(),
                ["samples_ts"] = res.SamplesTs.Select(x => Math.Round(x, 3)).ToArray(),
                ["peak_rss_bytes"] = rss,
            }).ToList();
            stdout.WriteLine(CliJson.Serialize(records, CliJson.Indented));
        }
        else stdout.WriteLine($"\npeak RSS: {rss / 1048576.0:F0} MiB (model file {model.File.FileSize / 1048576.0:F0} MiB)");
        return 0;
    }

    private static long Params(Model m) => m.File.Tensors.Sum(t => t.ElementCount);

    private static string Describe(Model m)
    {
        var ft = m.File.GetInteger("general.file_type");
        // Files without general.file_type are named after their most common weight type (llama.cpp guesses too).
        string type = ft is null ? GgmlTypeInfo.Name(m.File.Tensors.GroupBy(t => t.Type).OrderByDescending(g => g.Sum(t => t.ElementCount)).First().Key) : ft switch { 0 => "F32", 1 => "F16", 2 => "Q4_0", 3 => "Q4_1", 7 => "Q8_0", 8 => "Q5_0", 15 => "Q4_K - Medium", 14 => "Q4_K - Small", 17 => "Q5_K - Medium", 18 => "Q6_K", 32 => "BF16", _ => $"ftype {ft}" };
        long n = Params(m);
        string size = n >= 1_000_000_000 ? $"{n / 1e9:F1}B" : n >= 1_000_000 ? $"{n / 1e6:F0}M" : $"{n / 1e3:F0}K";
        return $"{m.Config.Architecture} {size} {type}";
    }
}
