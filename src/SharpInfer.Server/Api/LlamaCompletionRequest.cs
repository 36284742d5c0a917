using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Sampling;

namespace SharpInfer.Server.Api;

/// <summary>
/// A llama-server native <c>/completion</c> (or <c>/infill</c>) body, read into the engine's terms: the prompts (a
/// string, token ids, ids and strings mixed, or a list of those), <see cref="GenerationParams"/> with llama-server's
/// sampling defaults (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05) and the response options. Anything wrong is
/// a 400 naming the field; samplers the engine does not have are refused unless their value is the neutral one.
/// </summary>
internal sealed class LlamaCompletionRequest
{
    /// <summary>llama.cpp's LLAMA_DEFAULT_SEED: what generation_settings.seed reports for "random".</summary>
    public const uint RandomSeed = 0xFFFFFFFF;

    public required List<int[]> Prompts { get; init; }
    public required GenerationParams Params { get; init; }
    /// <summary>n_predict, or the server's when the request has none (-1 = until the context is full).</summary>
    public int NPredict { get; init; }
    public int NProbs { get; init; }
    public bool PostSamplingProbs { get; init; }
    public bool ReturnTokens { get; init; }
    public bool ReturnProgress { get; init; }
    public bool TimingsPerToken { get; init; }
    public bool CachePrompt { get; init; } = true;
    public int IdSlot { get; init; } = -1;
    public IReadOnlyList<string>? ResponseFields { get; init; }
    public required IReadOnlyList<string> Samplers { get; init; }
    public int NKeep { get; init; }
    /// <summary>The end-of-generation tokens <c>ignore_eos</c> banned (reported with a -inf bias, as llama-server).</summary>
    public int[] EogBans { get; init; } = [];

    public static readonly string[] DefaultSamplers = ["penalties", "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p", "xtc", "temperature"];

    public static LlamaCompletionRequest Parse(JsonBody b, ModelHost host, List<int[]> prompts)
    {
        var engine = host.Engine!;
        var tokenizer = engine.Model.Tokenizer;
        int vocab = engine.Model.Config.VocabSize;

        // n_predict (max_tokens as an alias); -1 or none falls back to the server's --n-predict (a default, not a cap,
        // as llama-server's)
        long nPredict = b.Long("n_predict") ?? b.Long("max_tokens") ?? -1;
        if (nPredict < -1 || nPredict > int.MaxValue) throw ApiException.BadRequest($"'n_predict' must be -1 (unlimited) or at least 0, got {nPredict}.", "n_predict");
        if (nPredict == -1 && host.Options.DefaultNPredict is int serverDefault and >= 0) nPredict = serverDefault;

        int nProbs = b.Int("n_probs", 0, SamplingParams.MaxLogprobs) ?? 0;
        var samplers = ReadSamplers(b);
        bool Uses(string name) => samplers.Contains(name);

        RefuseUnlessNeutral(b, "mirostat", 0);
        RefuseUnlessNeutral(b, "dry_multiplier", 0);
        RefuseUnlessNeutral(b, "xtc_probability", 0);
        RefuseUnlessNeutral(b, "typical_p", 1);
        RefuseUnlessNeutral(b, "dynatemp_range", 0);
        if (b.Number("top_n_sigma") is { } sigma && sigma > 0)
            throw ApiException.BadRequest("'top_n_sigma' is not supported by this server (use -1 to disable it).", "top_n_sigma");
        if (b["multimodal_data"] is not null) throw ApiException.BadRequest("Multimodal data provided, but the model does not support multimodal requests.", "multimodal_data");

        float temperature = F(b, "temperature") ?? host.Options.DefaultTemperature ?? 0.8f;
        if (temperature < 0) temperature = 0;   // llama.cpp: a negative temperature is greedy
        var seed = b.Long("seed") is { } s && s >= 0 && s != RandomSeed ? (ulong)s : host.Options.DefaultSeed;
        var constraint = StructuredOutput.Read(b, tokenizer, vocab);
        bool ignoreEos = b.Bool("ignore_eos") ?? false;
        var logitBias = LogitBias(b, tokenizer, vocab);
        // llama-server's ignore_eos bans the end-of-generation tokens (a -inf bias on each, which outweighs any bias the
        // request gives them), so they are never sampled; the engine's strongest bias, -100, does the same here
        int[] eogBans = ignoreEos ? [.. engine.Model.Vocabulary.EndOfGenerationIds] : [];
        if (eogBans.Length > 0)
        {
            logitBias ??= new Dictionary<int, float>();
            foreach (var id in eogBans) logitBias[id] = -100f;
        }
        var sampling = new SamplingParams
        {
            Temperature = Uses("temperature") || temperature == 0 ? temperature : 1.0f,
            TopK = Uses("top_k") ? Math.Max(0, b.Int("top_k") ?? 40) : 0,
            TopP = Uses("top_p") ? F(b, "top_p") ?? 0.95f : 1.0f,
            MinP = Uses("min_p") ? F(b, "min_p") ?? 0.05f : 0f,
            RepetitionPenalty = Uses("penalties") ? F(b, "repeat_penalty") ?? 1.0f : 1.0f,
            PenaltyLastN = PenaltyWindow(b.Int("repeat_last_n") ?? 64),
            PresencePenalty = Uses("penalties") ? F(b, "presence_penalty") ?? 0f : 0f,
            FrequencyPenalty = Uses("penalties") ? F(b, "frequency_penalty") ?? 0f : 0f,
            Seed = seed,
            LlamaCppChain = true,   // llama-server's own chain and RNG: the same seed gives llama-server's text
            MaxTokens = int.MaxValue,
            Stop = b.StringOrList("stop"),
            LogitBias = logitBias,
            IgnoreEos = ignoreEos,
            Logprobs = nProbs > 0 ? nProbs : null,
            LogitsProcessor = constraint,
        };
        try
        {
            sampling.Validate(vocab);
        }
        catch (InvalidRequestException e)
        {
            var field = e.Field switch
            {
                "repetition_penalty" => "repeat_penalty",
                "top_logprobs" => "n_probs",
                var f => f,
            };
            throw ApiException.BadRequest(e.Message, field);
        }

        bool cachePrompt = b.Bool("cache_prompt") ?? true;
        int idSlot = b.Int("id_slot") ?? -1;
        if (idSlot < -1 || idSlot >= engine.Options.MaxNumSeqs)
            throw ApiException.BadRequest($"'id_slot' must be -1 (any) or a slot id between 0 and {engine.Options.MaxNumSeqs - 1}, got {idSlot}.", "id_slot");
        IReadOnlyList<string>? fields = b["response_fields"] is null ? null : b.StringOrList("response_fields");
        if (fields is { Count: 0 }) fields = null;
        b.Int("n_keep");
        b.Int("n_discard");
        b.Int("min_keep", 0);
        b.Bool("post_sampling_probs");

        return new LlamaCompletionRequest
        {
            Prompts = prompts,
            Params = new GenerationParams
            {
                Sampling = sampling,
                MaxTokens = null,
                MaxTokensField = "n_predict",
                Stream = b.Bool("stream") ?? false,
                Logprobs = sampling.Logprobs,
                // cache_prompt false: a salt of its own keeps this request from reusing (or seeding) cached prefixes
                CacheSalt = cachePrompt ? null : "no-cache-" + Guid.NewGuid().ToString("N"),
                ReturnProgress = (b.Bool("stream") ?? false) && (b.Bool("return_progress") ?? false),
            },
            NPredict = (int)nPredict,
            NProbs = nProbs,
            PostSamplingProbs = b.Bool("post_sampling_probs") ?? false,
            ReturnTokens = b.Bool("return_tokens") ?? false,
            ReturnProgress = b.Bool("return_progress") ?? false,
            TimingsPerToken = b.Bool("timings_per_token") ?? false,
            CachePrompt = cachePrompt,
            IdSlot = idSlot,
            ResponseFields = fields,
            Samplers = samplers,
            NKeep = b.Int("n_keep") ?? 0,
            EogBans = eogBans,
        };
    }

    /// <summary>llama.cpp's repeat_last_n: -1 = the whole context, 0 = off (the penalty then has no window).</summary>
    private static int PenaltyWindow(int n)
    {
        if (n < -1) throw ApiException.BadRequest($"'repeat_last_n' must be -1 (the context), 0 (off) or positive, got {n}.", "repeat_last_n");
        return n;
    }

    private static void RefuseUnlessNeutral(JsonBody b, string field, double neutral)
    {
        if (b.Number(field) is { } v && v != neutral)
            throw ApiException.BadRequest($"'{field}' is not supported by this server (only {neutral.ToString(CultureInfo.InvariantCulture)}, which disables it, is accepted).", field);
    }

    private static float? F(JsonBody b, string name) => b.Number(name) is { } d ? (float)d : null;

    /// <summary><c>samplers</c>: a list of llama.cpp sampler names, or a string of their one-letter codes. The engine's
    /// chain has a fixed order; the list selects which samplers run (the ones left out are neutral).</summary>
    private static IReadOnlyList<string> ReadSamplers(JsonBody b)
    {
        var node = b["samplers"];
        if (node is null) return DefaultSamplers;
        var names = new List<string>();
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String)
        {
            foreach (char c in v.GetValue<string>())
                names.Add(c switch
                {
                    'e' => "penalties",
                    'd' => "dry",
                    's' => "top_n_sigma",
                    'k' => "top_k",
                    'y' => "typ_p",
                    'p' => "top_p",
                    'm' => "min_p",
                    'x' => "xtc",
                    't' => "temperature",
                    _ => throw ApiException.BadRequest($"'samplers': unknown sampler code '{c}' (known: e d s k y p m x t).", "samplers"),
                });
            return names;
        }
        foreach (var name in b.StringOrList("samplers"))
            names.Add(name switch
            {
                "penalties" or "dry" or "top_n_sigma" or "top_k" or "top_p" or "min_p" or "xtc" or "temperature" => name,
                "typ_p" or "typical_p" or "typical" => "typ_p",
                "nucleus" => "top_p",
                "temp" => "temperature",
                _ => throw ApiException.BadRequest($"'samplers': unknown sampler \"{name}\" (known: {string.Join(", ", DefaultSamplers)}).", "samplers"),
            });
        return names;
    }

    /// <summary><c>logit_bias</c> in both of llama-server's forms: OpenAI's object (<c>{"15043": -1}</c>, a key that is
    /// not a token id is a text whose tokens all get the bias) or a list of <c>[token id or text, bias]</c> pairs.
    /// A bias of <c>false</c> bans the token (the strongest bias, -100).</summary>
    private static Dictionary<int, float>? LogitBias(JsonBody b, SharpInfer.Tokenization.Tokenizer tokenizer, int vocab)
    {
        var node = b["logit_bias"];
        if (node is null) return null;
        var result = new Dictionary<int, float>();
        void Add(JsonNode? key, JsonNode? value)
        {
            float bias = value switch
            {
                JsonValue jv when jv.GetValueKind() == JsonValueKind.False => -100f,
                JsonValue jv when jv.GetValueKind() == JsonValueKind.Number => (float)jv.GetValue<double>(),
                _ => throw ApiException.BadRequest($"'logit_bias' values must be numbers or false, got {JsonBody.Describe(value)}.", "logit_bias"),
            };
            if (!(bias >= -100 && bias <= 100))
                throw ApiException.BadRequest($"'logit_bias' values must be between -100 and 100, got {bias.ToString(CultureInfo.InvariantCulture)}.", "logit_bias");
            if (key is JsonValue kv && kv.GetValueKind() == JsonValueKind.Number)
            {
                long id = JsonBody.AsLong(kv, "logit_bias");
                if (id < 0 || id >= vocab) throw ApiException.BadRequest($"'logit_bias' token id {id} is outside the vocabulary (0..{vocab - 1}).", "logit_bias");
                result[(int)id] = bias;
            }
            else if (key is JsonValue ks && ks.GetValueKind() == JsonValueKind.String)
            {
                var text = ks.GetValue<string>();
                if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int id) && id < vocab)
                    result[id] = bias;
                else
                    foreach (var t in tokenizer.Encode(text, addSpecial: false, parseSpecial: false)) result[t] = bias;
            }
            else throw ApiException.BadRequest("'logit_bias' entries must be [token id or text, bias].", "logit_bias");
        }
        switch (node)
        {
            case JsonObject obj:
                foreach (var (k, v) in obj) Add(JsonValue.Create(k), v);
                break;
            case JsonArray arr:
                foreach (var item in arr)
                {
                    if (item is not JsonArray { Count: 2 } pair) throw ApiException.BadRequest("'logit_bias' as a list must hold [token id or text, bias] pairs.", "logit_bias");
                    Add(pair[0], pair[1]);
                }
                break;
            default:
                throw ApiException.BadRequest($"'logit_bias' must be an object or a list of pairs, got {JsonBody.Describe(node)}.", "logit_bias");
        }
        return result.Count == 0 ? null : result;
    }
}
