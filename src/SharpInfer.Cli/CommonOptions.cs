using System.CommandLine;
using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Sampling;
using SharpInfer.Tensors;

namespace SharpInfer.Cli;

/// <summary>Options shared by the commands that load a model, with llama.cpp's names.</summary>
internal sealed class CommonOptions
{
    public readonly Option<string?> Model = new("--model", "-m") { Description = "GGUF model file (default: $SHARPINFER_MODEL, else ../shared/models/stories260K.gguf)" };
    public readonly Option<int> Threads = new("--threads", "-t") { Description = "Compute threads", DefaultValueFactory = _ => ComputePool.DefaultThreads };
    public readonly Option<int> Context = new("--ctx-size", "-c") { Description = "Context size in tokens (capped by the model's)", DefaultValueFactory = _ => 4096 };
    public readonly Option<int> Batch = new("--batch-size", "-b") { Description = "Largest number of tokens per forward pass", DefaultValueFactory = _ => 512 };
    public readonly KvCacheTypeOptions CacheType = new();
    public readonly Option<bool> Exact = new("--exact") { Description = "Keep activations in float for quantized weights (matches llama.cpp on F32-converted weights; slower)" };
    public readonly SpeculativeOptions Speculative = new();

    public void AddTo(Command c)
    {
        c.Options.Add(Model); c.Options.Add(Threads); c.Options.Add(Context); c.Options.Add(Batch); CacheType.AddTo(c); c.Options.Add(Exact);
        Speculative.AddTo(c);
    }

    public string ModelPath(ParseResult r) => ModelFileCheck.Resolve(r.GetValue(Model));

    public SessionOptions Session(ParseResult r) => new SessionOptions
    {
        Threads = r.GetValue(Threads),
        ContextLength = r.GetValue(Context),
        BatchSize = r.GetValue(Batch),
        KvType = CacheType.Get(r).Keys,
        KvValueType = CacheType.Get(r).Values,
        Precision = r.GetValue(Exact) ? MatMulPrecision.Exact : MatMulPrecision.Fast,
        Speculative = Speculative.Config(r),
    }.Validate();

    public static KvDataType ParseKv(string s, string option = "--cache-type") => s.ToLowerInvariant() switch
    {
        "f16" => KvDataType.F16,
        "f32" => KvDataType.F32,
        "q8_0" => KvDataType.Q8_0,
        "q4_0" => KvDataType.Q4_0,
        _ => throw new InvalidRequestException($"{option} must be f16, f32, q8_0 or q4_0, got '{s}'", option.TrimStart('-').Replace('-', '_')),
    };
}

/// <summary>The KV cache's element types with llama.cpp's names: <c>--cache-type-k/-ctk</c> and
/// <c>--cache-type-v/-ctv</c>, and <c>--cache-type</c> for both (the specific ones win).</summary>
internal sealed class KvCacheTypeOptions
{
    public readonly Option<string> Both = new("--cache-type") { Description = "KV cache type for keys and values: f16, f32, q8_0 or q4_0", DefaultValueFactory = _ => "f16" };
    public readonly Option<string?> Keys = new("--cache-type-k", "-ctk") { Description = "KV cache type for keys (overrides --cache-type)" };
    public readonly Option<string?> Values = new("--cache-type-v", "-ctv") { Description = "KV cache type for values (overrides --cache-type)" };

    public void AddTo(Command c)
    {
        c.Options.Add(Both); c.Options.Add(Keys); c.Options.Add(Values);
    }

    /// <summary>(key type, value type) — the value type is null when it equals the key type.</summary>
    public (KvDataType Keys, KvDataType? Values) Get(ParseResult r)
    {
        var both = CommonOptions.ParseKv(r.GetValue(Both)!);
        var k = r.GetValue(Keys) is { } ks ? CommonOptions.ParseKv(ks, "--cache-type-k") : both;
        var v = r.GetValue(Values) is { } vs ? CommonOptions.ParseKv(vs, "--cache-type-v") : both;
        return (k, v == k ? null : v);
    }

    public static string Name(KvDataType t) => KvFormat.Of(t).Name;
}

/// <summary>Speculative decoding: vLLM's <c>--speculative-config</c> JSON, and llama.cpp's <c>--draft-max</c> as a short form
/// (n-gram proposals of at most N tokens).</summary>
internal sealed class SpeculativeOptions
{
    public readonly Option<string?> Json = new("--speculative-config")
    {
        Description = "Speculative decoding, vLLM's JSON: {\"method\": \"ngram\", \"num_speculative_tokens\": 5, \"prompt_lookup_max\": 4, \"prompt_lookup_min\": 2}",
    };
    public readonly Option<int?> DraftMax = new("--draft-max", "--draft") { Description = "Speculative decoding: propose at most N tokens per step (n-gram proposals unless --model-draft is given)" };
    public readonly Option<string?> ModelDraft = new("--model-draft", "-md") { Description = "Speculative decoding with this draft model (same vocabulary as the model)" };

    public void AddTo(Command c)
    {
        c.Options.Add(Json);
        c.Options.Add(DraftMax);
        c.Options.Add(ModelDraft);
    }

    public SharpInfer.Engine.Speculation.SpeculativeConfig? Config(ParseResult r)
    {
        var json = r.GetValue(Json);
        var max = r.GetValue(DraftMax);
        var draft = r.GetValue(ModelDraft);
        if (json == null && max == null && draft == null) return null;
        var c = json != null ? SharpInfer.Engine.Speculation.SpeculativeConfig.Parse(json) : new SharpInfer.Engine.Speculation.SpeculativeConfig();
        if (draft != null) c = c with { Method = "draft_model", Model = draft };
        return (max is { } m ? c with { NumSpeculativeTokens = m } : c).Validate();
    }
}

/// <summary>Sampling options shared by <c>run</c> and <c>chat</c>, with llama.cpp's names and defaults.</summary>
internal sealed class SamplingOptions
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
