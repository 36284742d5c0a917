using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Sampling;

namespace SharpInfer.Server.Api;

/// <summary>The parameters shared by <c>/v1/chat/completions</c> and <c>/v1/completions</c>, read and validated from
/// the request body (400 naming the field for anything wrong), and turned into one engine request per choice.</summary>
internal sealed record GenerationParams
{
    public required SamplingParams Sampling { get; init; }
    /// <summary>max_tokens as the client gave it (null = the default).</summary>
    public int? MaxTokens { get; init; }
    /// <summary>The field max_tokens came from ("max_tokens" or "max_completion_tokens").</summary>
    public string MaxTokensField { get; init; } = "max_tokens";
    public int N { get; init; } = 1;
    public bool Stream { get; init; }
    public bool IncludeUsage { get; init; }
    /// <summary>Alternatives per token when log-probs are wanted (0 = the chosen token only); null = no log-probs.</summary>
    public int? Logprobs { get; init; }
    public bool Echo { get; init; }
    public int Priority { get; init; }
    /// <summary>vLLM's <c>cache_salt</c>: requests share prefix-cache blocks only with requests of the same salt.</summary>
    public string? CacheSalt { get; init; }
    /// <summary>llama-server's <c>verbose</c>: add the <c>__verbose</c> debug object (null = the server's <c>--verbose</c>).</summary>
    public bool? Verbose { get; init; }
    /// <summary>llama-server's <c>return_progress</c> (streaming only): chunks with <c>prompt_progress</c> while the
    /// prompt is computed.</summary>
    public bool ReturnProgress { get; init; }
    /// <summary>The server's <c>--n-predict</c> under <c>--sampling-defaults llama-server</c>: max_tokens when the
    /// request has none (null = the route's own default).</summary>
    public int? DefaultMaxTokens { get; init; }
    /// <summary>Parsed with llama-server's sampling defaults: no max_tokens and no <c>--n-predict</c> generates until
    /// the context is full, as llama-server's n_predict -1 (rather than the route's own default).</summary>
    public bool LlamaServerDefaults { get; init; }

    public const int MaxN = 128;
    /// <summary>Longest accepted <c>cache_salt</c> (it is hashed, so its length only costs a little hashing).</summary>
    public const int MaxCacheSaltLength = 1024;

    /// <summary>Reads the parameters. <paramref name="chat"/> selects chat's log-probs fields (logprobs: bool,
    /// top_logprobs: int) over legacy completions' (logprobs: int). <paramref name="preservedTokens"/>: the control tokens
    /// the reply renders as text, which a grammar then matches by that text. <paramref name="llamaServer"/>: the
    /// server's options when it runs with <c>--sampling-defaults llama-server</c> (see <see cref="ServerOptions.LlamaServerSampling"/>);
    /// null = vLLM's defaults and order.</summary>
    public static GenerationParams Parse(JsonBody b, bool chat, int vocabSize, SharpInfer.Tokenization.Tokenizer? tokenizer = null,
                                         Func<string, string>? wrapGrammar = null, int[]? preservedTokens = null, ServerOptions? llamaServer = null)
    {
        b.String("user");
        int n = b.Int("n", 1, MaxN) ?? 1;
        if (b.Int("best_of", 1, MaxN) is { } bestOf && bestOf != n)
            throw ApiException.BadRequest("'best_of' different from 'n' is not supported.", "best_of");

        int? maxTokens = null;
        string maxField = "max_tokens";
        if (chat && b.Has("max_completion_tokens"))
        {
            maxField = "max_completion_tokens";
            maxTokens = b.Int(maxField, 1);
        }
        else maxTokens = b.Int("max_tokens", 1);

        bool stream = b.Bool("stream") ?? false;
        bool includeUsage = false;
        if (b.Object("stream_options") is { } so)
        {
            if (!stream) throw ApiException.BadRequest("'stream_options' is only allowed when 'stream' is true.", "stream_options");
            includeUsage = new JsonBody(so).Bool("include_usage") ?? false;
        }

        int? logprobs;
        if (chat)
        {
            bool want = b.Bool("logprobs") ?? false;
            int? top = b.Int("top_logprobs", 0, SamplingParams.MaxLogprobs);
            if (top != null && !want) throw ApiException.BadRequest("'top_logprobs' requires 'logprobs' to be true.", "top_logprobs");
            logprobs = want ? top ?? 0 : null;
        }
        else logprobs = b.Int("logprobs", 0, SamplingParams.MaxLogprobs);

        var constraint = tokenizer is null ? null : StructuredOutput.Read(b, tokenizer, vocabSize, wrapGrammar, preservedTokens);

        var cacheSalt = b.String("cache_salt");
        if (cacheSalt is { Length: 0 or > MaxCacheSaltLength })
            throw ApiException.BadRequest($"'cache_salt' must be a non-empty string of at most {MaxCacheSaltLength} characters.", "cache_salt");

        var seed = b.Long("seed");
        var defaults = llamaServer is null ? VllmDefaults : FromLlamaServer(llamaServer);
        // llama-server: a seed of -1 (or LLAMA_DEFAULT_SEED) is "random", which falls back to --seed
        ulong? seedValue = llamaServer is null ? (seed is { } s ? unchecked((ulong)s) : null)
            : seed is { } ls && ls >= 0 && ls != LlamaCompletionRequest.RandomSeed ? (ulong)ls : defaults.Seed;
        var sampling = new SamplingParams
        {
            // llama.cpp reads a negative temperature as greedy
            Temperature = F(b, "temperature") is { } t ? (llamaServer is not null && t < 0 ? 0 : t) : defaults.Temperature,
            TopP = F(b, "top_p") ?? defaults.TopP,
            TopK = b.Int("top_k") ?? defaults.TopK,
            MinP = F(b, "min_p") ?? defaults.MinP,
            RepetitionPenalty = F(b, "repetition_penalty") ?? (llamaServer is null ? null : F(b, "repeat_penalty")) ?? 1.0f,
            PenaltyLastN = b.Int("repeat_last_n") ?? defaults.PenaltyLastN,
            PresencePenalty = F(b, "presence_penalty") ?? 0f,
            FrequencyPenalty = F(b, "frequency_penalty") ?? 0f,
            Seed = seedValue,
            LlamaCppChain = llamaServer is not null,
            MaxTokens = maxTokens ?? int.MaxValue,
            Stop = b.StringOrList("stop"),
            LogitBias = LogitBias(b, vocabSize),
            IgnoreEos = b.Bool("ignore_eos") ?? false,
            Logprobs = logprobs,
            LogitsProcessor = constraint,
        };
        try
        {
            sampling.Validate(vocabSize);
        }
        catch (InvalidRequestException e)
        {
            var field = e.Field switch
            {
                "top_logprobs" when !chat => "logprobs",
                "max_tokens" => maxField,
                var f => f,
            };
            throw ApiException.BadRequest(e.Message, field);
        }

        return new GenerationParams
        {
            Sampling = sampling,
            MaxTokens = maxTokens,
            DefaultMaxTokens = llamaServer?.DefaultNPredict is int nPredict and >= 1 ? nPredict : null,
            LlamaServerDefaults = llamaServer is not null,
            MaxTokensField = maxField,
            N = n,
            Stream = stream,
            IncludeUsage = includeUsage,
            Logprobs = logprobs,
            Echo = !chat && (b.Bool("echo") ?? false),
            Priority = b.Int("priority") ?? 0,
            CacheSalt = cacheSalt,
            Verbose = b.Bool("verbose"),
            ReturnProgress = stream && (b.Bool("return_progress") ?? false),
        };
    }

    /// <summary>What a request that omits a sampling field gets: vLLM's (and OpenAI's) neutral values, or llama-server's
    /// (common_params_sampling: --temp or 0.8, top_k 40, top_p 0.95, min_p 0.05, penalties over the last 64 tokens,
    /// --seed).</summary>
    private readonly record struct Defaults(float Temperature, int TopK, float TopP, float MinP, int PenaltyLastN, ulong? Seed);

    private static readonly Defaults VllmDefaults = new(1.0f, 0, 1.0f, 0f, -1, null);

    private static Defaults FromLlamaServer(ServerOptions o) => new(o.DefaultTemperature ?? 0.8f, 40, 0.95f, 0.05f, 64, o.DefaultSeed);

    /// <summary>A number field as float (ranges are checked by <see cref="SamplingParams.Validate"/>).</summary>
    private static float? F(JsonBody b, string name) => b.Number(name) is { } d ? (float)d : null;

    /// <summary><c>logit_bias</c>: an object mapping token ids (as strings) to a bias in [-100, 100].</summary>
    private static Dictionary<int, float>? LogitBias(JsonBody b, int vocabSize)
    {
        var obj = b.Object("logit_bias");
        if (obj is null || obj.Count == 0) return null;
        var result = new Dictionary<int, float>(obj.Count);
        foreach (var (key, value) in obj)
        {
            if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out int id) || id >= vocabSize)
                throw ApiException.BadRequest($"'logit_bias' keys must be token ids between 0 and {vocabSize - 1}, got \"{key}\".", "logit_bias");
            if (value is not JsonValue jv || jv.GetValueKind() != JsonValueKind.Number)
                throw ApiException.BadRequest($"'logit_bias' values must be numbers, got {JsonBody.Describe(value)} for \"{key}\".", "logit_bias");
            double bias = jv.GetValue<double>();
            if (!(bias >= -100 && bias <= 100))
                throw ApiException.BadRequest($"'logit_bias' values must be between -100 and 100, got {bias.ToString(CultureInfo.InvariantCulture)} for \"{key}\".", "logit_bias");
            result[id] = (float)bias;
        }
        return result;
    }

    /// <summary>The engine requests for one prompt: <see cref="N"/> of them, with seeds seed, seed+1, ... when a seed
    /// was given. <paramref name="defaultMaxTokens"/> applies when the client gave none; an explicit max_tokens that
    /// does not fit the context beside the prompt is a 400 (the prompt alone not fitting is the engine's
    /// <see cref="ContextLengthExceededException"/>).</summary>
    public List<EngineRequest> EngineRequests(int[] prompt, int maxModelLen, int? defaultMaxTokens, string requestId, string operation, int firstIndex = 0)
    {
        int maxTokens;
        if (MaxTokens is { } explicitMax)
        {
            if (prompt.Length < maxModelLen && (long)prompt.Length + explicitMax > maxModelLen)
                throw ApiException.ContextLength(
                    $"This model's maximum context length is {maxModelLen} tokens. However, you requested {(long)prompt.Length + explicitMax} tokens " +
                    $"({prompt.Length} in the prompt, {explicitMax} for the completion). Please reduce the length of the prompt or the completion.",
                    MaxTokensField, prompt.Length, maxModelLen);
            maxTokens = explicitMax;
        }
        else maxTokens = DefaultMaxTokens ?? (LlamaServerDefaults ? null : defaultMaxTokens) ?? Math.Max(1, maxModelLen - prompt.Length);

        var list = new List<EngineRequest>(N);
        for (int i = 0; i < N; i++)
        {
            var s = Sampling with
            {
                MaxTokens = maxTokens,
                Seed = Sampling.Seed is { } seed ? unchecked(seed + (ulong)(firstIndex + i)) : null,
            };
            list.Add(new EngineRequest
            {
                PromptTokens = prompt,
                Sampling = s,
                RequestId = $"{requestId}-{firstIndex + i}",
                ResponseId = requestId,
                Operation = operation,
                Priority = Priority,
                CacheSalt = CacheSalt,
                ReportPromptProgress = ReturnProgress,
            });
        }
        return list;
    }
}
