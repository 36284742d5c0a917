using System.CommandLine;
using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Cli;

/// <summary>Options shared by the commands that load a model, with llama.cpp's names.</summary>
public sealed class CommonOptions
{
    public readonly Option<string?> Model = new("--model", "-m") { Description = "GGUF model file (default: $SHARPINFER_MODEL, else ../shared/models/stories260K.gguf)" };
    public readonly Option<int> Threads = new("--threads", "-t") { Description = "Compute threads", DefaultValueFactory = _ => ComputePool.DefaultThreads };
    public readonly Option<int> Context = new("--ctx-size", "-c") { Description = "Context size in tokens (capped by the model's)", DefaultValueFactory = _ => 4096 };
    public readonly Option<int> Batch = new("--batch-size", "-b") { Description = "Largest number of tokens per forward pass", DefaultValueFactory = _ => 512 };
    public readonly Option<string> CacheType = new("--cache-type") { Description = "KV cache element type: f16 or f32", DefaultValueFactory = _ => "f16" };
    public readonly Option<bool> Exact = new("--exact") { Description = "Keep activations in float for quantized weights (matches llama.cpp on F32-converted weights; slower)" };

    public void AddTo(Command c)
    {
        c.Options.Add(Model); c.Options.Add(Threads); c.Options.Add(Context); c.Options.Add(Batch); c.Options.Add(CacheType); c.Options.Add(Exact);
    }

    public string ModelPath(ParseResult r) => ModelLocator.Resolve(r.GetValue(Model));

    public SessionOptions Session(ParseResult r) => new SessionOptions
    {
        Threads = r.GetValue(Threads),
        ContextLength = r.GetValue(Context),
        BatchSize = r.GetValue(Batch),
        KvType = ParseKv(r.GetValue(CacheType)!),
        Precision = r.GetValue(Exact) ? MatMulPrecision.Exact : MatMulPrecision.Fast,
    }.Validate();

    public static KvDataType ParseKv(string s) => s.ToLowerInvariant() switch
    {
        "f16" => KvDataType.F16,
        "f32" => KvDataType.F32,
        _ => throw new InvalidRequestException($"--cache-type must be f16 or f32, got '{s}'", "cache_type"),
    };
}
