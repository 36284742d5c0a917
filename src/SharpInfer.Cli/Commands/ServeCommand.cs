using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SharpInfer.Engine;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Scheduling;
using SharpInfer.Server;
using SharpInfer.Tensors;

namespace SharpInfer.Cli.Commands;

/// <summary>
/// <c>sharpinfer serve -m model.gguf</c>: the OpenAI-compatible HTTP server (vLLM's and llama-server's endpoints).
/// Prints its options, starts listening at once, loads the model in the background (/health is 503 until it is
/// loaded), and on SIGTERM/Ctrl-C refuses new requests, lets in-flight ones finish within --shutdown-timeout, then
/// aborts the rest.
/// </summary>
internal static class ServeCommand
{
    public const string ApiKeyEnvironmentVariable = "SHARPINFER_API_KEY";

    /// <summary>The command. <paramref name="run"/> replaces starting the server with the parsed options (tests check
    /// how flags map onto <see cref="ServerOptions"/>).</summary>
    public static Command Create(Func<ServerOptions, int>? run = null)
    {
        var model = new Option<string?>("--model", "-m") { Description = "GGUF model file (default: $SHARPINFER_MODEL, else ../shared/models/stories260K.gguf)" };
        var host = new Option<string>("--host") { Description = "Interface to listen on (0.0.0.0 for all)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0 = any free port)", DefaultValueFactory = _ => 8080 };
        var ollamaPort = new Option<int?>("--ollama-port") { Description = "Also listen on this port (Ollama's is 11434) for Ollama's clients; every port answers Ollama's /api/* routes" };
        var apiKey = new Option<string?>("--api-key") { Description = $"Require 'Authorization: Bearer KEY' on /v1/*, /tokenize and /detokenize (default: ${ApiKeyEnvironmentVariable})" };
        var served = new Option<string?>("--served-model-name", "--alias", "-a") { Description = "Model id in the API (default: the file name without .gguf); comma-separated names are aliases, the first in sorted order the id (llama-server's --alias)" };
        var maxSeqs = new Option<int>("--max-num-seqs", "--parallel", "-np") { Description = "Most requests running at once", DefaultValueFactory = _ => 16 };
        var maxBatched = new Option<int>("--max-num-batched-tokens", "--batch-size", "-b") { Description = "Token budget of one engine step", DefaultValueFactory = _ => 512 };
        var maxQueued = new Option<int>("--max-queued-requests") { Description = "Requests allowed to wait for a seat; more get 429", DefaultValueFactory = _ => 256 };
        var kvMemory = new Option<string?>("--kv-cache-memory") { Description = "KV cache size, e.g. 2GiB or 512MiB (default: a share of free memory, capped at what max-num-seqs × max-model-len need)" };
        var maxModelLen = new Option<int>("--max-model-len", "-c", "--ctx-size") { Description = "Longest sequence (prompt + output) in tokens, capped by the model's", DefaultValueFactory = _ => 4096 };
        var threads = new Option<int>("--threads", "-t") { Description = "Compute threads", DefaultValueFactory = _ => ComputePool.DefaultThreads };
        var cacheType = new KvCacheTypeOptions();
        var blockSize = new Option<int>("--block-size") { Description = "Tokens per KV block: 8, 16 or 32", DefaultValueFactory = _ => 16 };
        var scheduling = new Option<string>("--scheduling") { Description = "continuous (iteration-level batching) or static (batch runs to completion)", DefaultValueFactory = _ => "continuous" };
        var shutdown = new Option<double>("--shutdown-timeout") { Description = "Seconds in-flight requests may run after SIGTERM/Ctrl-C before they are aborted", DefaultValueFactory = _ => 30 };
        var maxBody = new Option<string>("--max-body-size") { Description = "Largest request body; larger ones get 413", DefaultValueFactory = _ => "16MiB" };
        var exact = new Option<bool>("--exact") { Description = "Keep activations in float for quantized weights (slower, matches llama.cpp on F32 weights)" };
        var noPrefixCaching = new Option<bool>("--no-prefix-caching") { Description = "Turn off automatic prefix caching (on by default: prompts reuse the KV of earlier requests' shared prefixes)" };
        var swaFull = new Option<bool>("--swa-full") { Description = "Keep every position of sliding-window layers in the KV cache (llama.cpp's flag; by default those layers free the blocks their window has passed)" };
        var prefixDir = new Option<string?>("--prefix-cache-dir") { Description = "Directory for the prefix cache's disk tier: blocks evicted from memory are kept there (survives restarts)" };
        var prefixDisk = new Option<string>("--prefix-cache-disk-size") { Description = "Most bytes the disk tier keeps; the oldest files go first", DefaultValueFactory = _ => "8GiB" };
        var pooling = new Option<string?>("--pooling") { Description = "Pooling of /v1/embeddings and /embedding: none, mean, cls, last or rank (default: the model's pooling_type, else mean)" };
        var speculative = new SpeculativeOptions();
        var cors = new Option<string[]>("--cors-origin", "--cors-origins")
        {
            Description = "Allow browsers from this origin (repeatable or comma-separated; * for any): answers CORS preflights and adds the headers",
            AllowMultipleArgumentsPerToken = false,
        };
        var cmd = new Command("serve", "Serve a model over an OpenAI-compatible HTTP API (chat/completions, completions, models, tokenize, metrics)")
        {
            model, host, port, apiKey, served, maxSeqs, maxBatched, maxQueued, kvMemory, maxModelLen, threads, cacheType.Both, cacheType.Keys, cacheType.Values, blockSize, scheduling,
            shutdown, maxBody, exact, noPrefixCaching, swaFull, prefixDir, prefixDisk, pooling,
        };
        var anyModel = new Option<bool>("--any-model-name") { Description = "Answer requests naming any model with the served one, as llama-server does (default: another name is a 404)" };
        cmd.Options.Add(anyModel);
        var samplingDefaults = new Option<string>("--sampling-defaults")
        {
            Description = "Defaults of the OpenAI routes' sampling fields a request omits: vllm (temperature 1, no top-k/top-p/min-p, vLLM's order) or llama-server (--temp, top_k 40, top_p 0.95, min_p 0.05, --seed, --n-predict and llama.cpp's chain, as llama-server)",
            DefaultValueFactory = _ => "vllm",
        };
        samplingDefaults.AcceptOnlyFromAmong("vllm", "llama-server");
        cmd.Options.Add(samplingDefaults);
        var responsesTtl = new Option<double>("--responses-ttl") { Description = "Seconds a /v1/responses result stays available to previous_response_id and GET (0 = keep none)", DefaultValueFactory = _ => 3600 };
        var responsesMax = new Option<int>("--responses-max-entries") { Description = "Most /v1/responses results kept in memory; the oldest go first (0 = keep none)", DefaultValueFactory = _ => 1000 };
        var otlpEndpoint = new Option<string?>("--otlp-endpoint")
        {
            Description = $"Export traces (a span per request), metrics and logs over OTLP to this base URL, e.g. http://localhost:4317 (default: ${OtlpSettings.EndpointVariable}; none = off)",
        };
        var otlpProtocol = new Option<string?>("--otlp-protocol")
        {
            Description = $"OTLP transport: grpc or http/protobuf (default: ${OtlpSettings.ProtocolVariable}, else grpc)",
        };
        speculative.AddTo(cmd);
        cmd.Options.Add(otlpEndpoint);
        cmd.Options.Add(otlpProtocol);
        var llama = new LlamaServerFlags();
        llama.AddTo(cmd);
        cmd.Options.Add(cors);
        cmd.Options.Add(responsesTtl);
        cmd.Options.Add(responsesMax);
        cmd.Options.Add(ollamaPort);
        cmd.SetAction(r =>
        {
            var kv = r.GetValue(kvMemory);
            var options = new ServerOptions
            {
                ModelPath = ModelFileCheck.Resolve(r.GetValue(model)),
                Host = r.GetValue(host)!,
                Port = r.GetValue(port),
                OllamaPort = r.GetValue(ollamaPort),
                ApiKey = r.GetValue(apiKey) ?? NullIfEmpty(Environment.GetEnvironmentVariable(ApiKeyEnvironmentVariable)),
                // llama-server's --alias takes comma-separated names: the first in sorted order is the id
                ServedModelName = r.GetValue(served) is { } names && names.Contains(',') ? ServerOptions.SplitNames(names).FirstOrDefault() : r.GetValue(served),
                ModelAliases = ServerOptions.SplitNames(r.GetValue(served)),
                ModelTags = ServerOptions.SplitNames(r.GetValue(llama.Tags)),
                ShutdownTimeout = TimeSpan.FromSeconds(r.GetValue(shutdown)),
                MaxRequestBodyBytes = ByteSize.Parse(r.GetValue(maxBody)!, "max_body_size"),
                ResponsesTtl = TimeSpan.FromSeconds(r.GetValue(responsesTtl)),
                ResponsesMaxEntries = r.GetValue(responsesMax),
                DefaultNPredict = r.GetValue(llama.NPredict),
                DefaultSeed = llama.DefaultSeed(r),
                DefaultTemperature = r.GetValue(llama.Temperature),
                SlotsEndpoint = !r.GetValue(llama.NoSlots),
                WebUi = !r.GetValue(llama.NoUi),
                ContextShift = r.GetValue(llama.ContextShift),
                SleepIdleSeconds = r.GetValue(llama.SleepIdleSeconds),
                ChatTemplate = llama.TemplateSource(r),
                Tools = llama.ToolNames(r),
                McpServersConfig = r.GetValue(llama.McpServersConfig),
                McpServersJson = r.GetValue(llama.McpServersJson),
                UiMcpProxy = llama.CorsProxy(r),
                ChatTemplateKwargs = llama.TemplateKwargs(r),
                Verbose = r.GetValue(llama.Verbose),
                AnyModelName = r.GetValue(anyModel),
                LlamaServerSampling = r.GetValue(samplingDefaults) == "llama-server",
                CorsOrigins = (r.GetValue(cors) ?? []).SelectMany(o => o.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToArray(),
                Engine = new EngineOptions
                {
                    Threads = r.GetValue(threads),
                    MaxModelLen = r.GetValue(maxModelLen),
                    MaxNumSeqs = r.GetValue(maxSeqs),
                    MaxNumBatchedTokens = r.GetValue(maxBatched),
                    MaxQueuedRequests = r.GetValue(maxQueued),
                    KvCacheMemoryBytes = kv is null ? null : ByteSize.Parse(kv),
                    BlockSize = r.GetValue(blockSize),
                    KvType = cacheType.Get(r).Keys,
                    KvValueType = cacheType.Get(r).Values,
                    Mode = ParseScheduling(r.GetValue(scheduling)!),
                    Precision = r.GetValue(exact) ? MatMulPrecision.Exact : MatMulPrecision.Fast,
                    EnablePrefixCaching = !r.GetValue(noPrefixCaching),
                    SwaFull = r.GetValue(swaFull),
                    PrefixCacheDir = r.GetValue(prefixDir),
                    PrefixCacheDiskBytes = ByteSize.Parse(r.GetValue(prefixDisk)!, "prefix_cache_disk_size"),
                    Speculative = speculative.Config(r),
                    Pooling = r.GetValue(pooling) is { } pl ? SharpInfer.Engine.Pooling.PoolingTypes.Parse(pl) : null,
                },
            };
            var otlp = OtlpSettings.Resolve(r.GetValue(otlpEndpoint), r.GetValue(otlpProtocol), Environment.GetEnvironmentVariable);
            return run != null ? run(options) : Run(options, Console.Out, Console.Error, otlp);
        });
        return cmd;
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    public static SchedulingMode ParseScheduling(string s) => s.ToLowerInvariant() switch
    {
        "continuous" => SchedulingMode.Continuous,
        "static" => SchedulingMode.Static,
        _ => throw new InvalidRequestException($"--scheduling must be continuous or static, got '{s}'", "scheduling"),
    };

    /// <summary>Runs the server until SIGTERM/Ctrl-C (exit 0) or a failed model load (exit 1). <paramref name="otlp"/>:
    /// where to export telemetry (null = nowhere); stopping flushes what is still buffered.</summary>
    public static int Run(ServerOptions options, TextWriter stdout, TextWriter stderr, OtlpSettings? otlp = null)
    {
        options.Validate();
        PrintOptions(options, otlp, stdout);
        var app = ServerApp.Build(options, otlp == null ? null : b => OtlpTelemetry.AddTo(b, otlp));
        try
        {
            try
            {
                app.StartAsync().GetAwaiter().GetResult();
            }
            catch (IOException e)
            {
                throw new SharpInferException($"cannot listen on {string.Join(" and ", options.ListenUrls)}: {e.Message}", e);
            }
            foreach (var url in app.Urls) stdout.WriteLine($"listening on {url}  (model loading in the background; /health answers 503 until it is ready)");
            stdout.Flush();
            var modelHost = app.Services.GetRequiredService<ModelHost>();
            bool failed = false;
            modelHost.Loaded.ContinueWith(t =>
            {
                if (t.IsCompletedSuccessfully)
                {
                    var e = modelHost.Engine!;
                    stdout.WriteLine($"model loaded: {Path.GetFileName(options.ModelPath)} ({e.Model.Config.Architecture}, vocab {e.Model.Config.VocabSize}), served as '{modelHost.ModelId}'");
                    stdout.WriteLine($"KV cache: {ByteSize.Format(e.KvCacheBytes)}, {e.KvCapacityTokens} tokens ({e.Stats.KvBlocksTotal} blocks of {e.Options.BlockSize}); " +
                                     $"max_model_len {e.MaxModelLen}, max_num_seqs {e.Options.MaxNumSeqs}, threads {e.Options.Threads}");
                    var urls = app.Urls.ToArray();
                    stdout.WriteLine($"ready: {urls[0]}/v1");
                    // the Ollama port is bound second (ServerOptions.ListenUrls)
                    if (options.OllamaPort != null && urls.Length > 1) stdout.WriteLine($"Ollama API: {urls[1]}/api");
                    stdout.Flush();
                }
                else if (modelHost.State != ServerState.Stopping && modelHost.State != ServerState.Stopped)
                {
                    failed = true;
                    stderr.WriteLine($"error: {t.Exception?.InnerException?.Message ?? "the model failed to load"}");
                    app.Lifetime.StopApplication();
                }
            }, TaskScheduler.Default);
            app.WaitForShutdownAsync().GetAwaiter().GetResult();
            stdout.WriteLine("server stopped");
            return failed ? 1 : 0;
        }
        finally
        {
            app.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static void PrintOptions(ServerOptions o, OtlpSettings? otlp, TextWriter w)
    {
        var e = o.Engine;
        w.WriteLine("sharpinfer serve");
        w.WriteLine($"  model                  {o.ModelPath}");
        w.WriteLine($"  served_model_name      {o.ModelId}");
        w.WriteLine($"  host:port              {o.Host}:{o.Port}");
        if (o.OllamaPort is { } op) w.WriteLine($"  ollama_port            {op}");
        w.WriteLine($"  api_key                {(o.ApiKey is null ? "none" : "set")}");
        w.WriteLine($"  threads                {e.Threads}");
        // The effective length is known only after loading (capped by the model's context): the summary prints it.
        w.WriteLine($"  max_model_len          {e.MaxModelLen} requested (capped by the model's context)");
        w.WriteLine($"  max_num_seqs           {e.MaxNumSeqs}");
        w.WriteLine($"  max_num_batched_tokens {e.MaxNumBatchedTokens}");
        w.WriteLine($"  max_queued_requests    {e.MaxQueuedRequests}");
        w.WriteLine($"  kv_cache_memory        {(e.KvCacheMemoryBytes is { } b ? ByteSize.Format(b) : $"auto ({e.KvCacheFraction:P0} of free memory at most)")}");
        w.WriteLine($"  cache_type_k           {KvCacheTypeOptions.Name(e.KvType)}");
        w.WriteLine($"  cache_type_v           {KvCacheTypeOptions.Name(e.ValueType)}");
        w.WriteLine($"  block_size             {e.BlockSize}");
        w.WriteLine($"  scheduling             {e.Mode.ToString().ToLowerInvariant()}");
        w.WriteLine($"  precision              {e.Precision.ToString().ToLowerInvariant()}");
        w.WriteLine($"  speculative            {(e.Speculative is { } sc ? $"{sc.Method}, up to {sc.NumSpeculativeTokens} tokens (lookup {sc.PromptLookupMin}..{sc.PromptLookupMax}), off above {sc.DisableByBatchSize} decoding sequences" : "off")}");
        w.WriteLine($"  prefix_caching         {(e.EnablePrefixCaching ? "on" : "off")}" +
                    (e.EnablePrefixCaching && e.PrefixCacheDir != null ? $" (disk tier {e.PrefixCacheDir}, {ByteSize.Format(e.PrefixCacheDiskBytes)})" : ""));
        w.WriteLine($"  swa_full               {(e.SwaFull ? "on" : "off")}");
        w.WriteLine($"  shutdown_timeout       {o.ShutdownTimeout.TotalSeconds:0.###} s");
        w.WriteLine($"  max_body_size          {ByteSize.Format(o.MaxRequestBodyBytes)}");
        if (o.ToolsEnabled || o.UiMcpProxy)
        {
            bool mcp = !string.IsNullOrEmpty(o.McpServersConfig) || !string.IsNullOrEmpty(o.McpServersJson);
            w.WriteLine($"  tools                  {(o.Tools.Count > 0 ? string.Join(",", o.Tools) : "none")}{(mcp ? " + MCP servers" : "")}");
            w.WriteLine($"  cors_proxy             {(o.UiMcpProxy ? "on" : "off")}");
            w.WriteLine("  WARNING: /tools and /cors-proxy give every client that reaches this server file, shell and network access as this user;");
            w.WriteLine($"           CORS origins: {string.Join(",", o.EffectiveCorsOrigins)}{(o.ApiKey is null ? "; no --api-key" : "")}");
        }
        w.WriteLine($"  otlp                   {(otlp is null ? "off" : $"{otlp.Endpoint} ({otlp.ProtocolName})")}");
        w.Flush();
    }
}
