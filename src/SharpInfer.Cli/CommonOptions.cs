using System.CommandLine;
using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Sampling;
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

    public string ModelPath(ParseResult r) => ModelFileCheck.Resolve(r.GetValue(Model));

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

/// <summary>Sampling options shared by <c>run</c> and <c>chat</c>, with llama.cpp's names and defaults.</summary>
public sealed class SamplingOptions
{
    public readonly Option<int> MaxTokens;
    public readonly Option<float> Temp = new("--temp") { Description = "Temperature (0 = greedy)", DefaultValueFactory = _ => 0.8f };
    public readonly Option<int> TopK = new("--top-k") { Description = "Top-k (0 = off)", DefaultValueFactory = _ => 40 };
    public readonly Option<float> TopP = new("--top-p") { Description = "Top-p (1 = off)", DefaultValueFactory = _ => 0.95f };
    public readonly Option<float> MinP = new("--min-p") { Description = "Min-p (0 = off)", DefaultValueFactory = _ => 0.05f };
    public readonly Option<float> Repeat = new("--repeat-penalty") { Description = "Repetition penalty (1 = off)", DefaultValueFactory = _ => 1.0f };
    public readonly Option<int> RepeatN = new("--repeat-last-n") { Description = "Tokens the repetition penalty looks back over (-1 = all)", DefaultValueFactory = _ => 64 };
    public readonly Option<float> Presence = new("--presence-penalty") { Description = "Presence penalty" };
    public readonly Option<float> Frequency = new("--frequency-penalty") { Description = "Frequency penalty" };
    public readonly Option<long> Seed = new("--seed", "-s") { Description = "Random seed (-1 = random)", DefaultValueFactory = _ => -1 };
    public readonly Option<string[]> Stop = new("--stop") { Description = "Stop string (repeatable)", AllowMultipleArgumentsPerToken = false };
    public readonly Option<bool> IgnoreEos = new("--ignore-eos") { Description = "Keep generating after end-of-generation tokens" };

    /// <param name="defaultMaxTokens">Default of <c>-n</c>; -1 means until an end-of-generation token or a full context.</param>
    public SamplingOptions(int defaultMaxTokens)
    {
        MaxTokens = new("--n-predict", "-n")
        {
            Description = defaultMaxTokens < 0 ? "Most tokens per reply (-1 = until the end of the turn or a full context)" : "Tokens to generate",
            DefaultValueFactory = _ => defaultMaxTokens,
        };
    }

    public void AddTo(Command c)
    {
        foreach (var o in new Option[] { MaxTokens, Temp, TopK, TopP, MinP, Repeat, RepeatN, Presence, Frequency, Seed, Stop, IgnoreEos })
            c.Options.Add(o);
    }

    /// <summary>The sampling parameters the options give (not yet validated against a vocabulary).</summary>
    public SamplingParams Params(ParseResult r)
    {
        int n = r.GetValue(MaxTokens);
        return new SamplingParams
        {
            Temperature = r.GetValue(Temp),
            TopK = r.GetValue(TopK),
            TopP = r.GetValue(TopP),
            MinP = r.GetValue(MinP),
            RepetitionPenalty = r.GetValue(Repeat),
            PenaltyLastN = r.GetValue(RepeatN),
            PresencePenalty = r.GetValue(Presence),
            FrequencyPenalty = r.GetValue(Frequency),
            Seed = r.GetValue(Seed) is var s && s >= 0 ? (ulong)s : null,
            MaxTokens = n < 0 ? int.MaxValue : n,
            Stop = r.GetValue(Stop) ?? [],
            IgnoreEos = r.GetValue(IgnoreEos),
        };
    }
}
