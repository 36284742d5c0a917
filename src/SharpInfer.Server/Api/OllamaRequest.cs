using System.Text.Json;
using System.Text.Json.Nodes;
using static SharpInfer.Server.Api.TranslatedRequest;

namespace SharpInfer.Server.Api;

/// <summary>
/// An Ollama <c>/api/chat</c> or <c>/api/generate</c> request translated into a chat-completions body, so it runs on
/// the one chat path (<see cref="ChatTurn"/>): messages (Ollama's <c>tool_calls</c> with object arguments become
/// OpenAI's, <c>thinking</c> becomes <c>reasoning_content</c>, <c>tool_name</c> the tool message's <c>name</c>),
/// generate's <c>system</c> + <c>prompt</c> as a two-message chat (or the bare prompt when <c>raw</c>), <c>format</c>
/// (<c>"json"</c> or a JSON schema) as <c>response_format</c>, <c>think</c> as the template's <c>enable_thinking</c>,
/// and <c>options</c> as the sampling fields, with Ollama's defaults for those not given. Images are refused.
/// </summary>
internal sealed class OllamaRequest
{
    /// <summary>The translated chat-completions body.</summary>
    public required JsonBody Chat { get; init; }
    /// <summary>Ollama streams unless <c>stream</c> is false.</summary>
    public bool Stream { get; init; } = true;
    /// <summary>generate with <c>raw</c>: the prompt is tokenized as it is, no template.</summary>
    public string? RawPrompt { get; init; }
    /// <summary>generate's <c>context</c>: token ids of an earlier exchange, put before this prompt.</summary>
    public int[]? Context { get; init; }
    /// <summary>False when <c>think</c> is false: any reasoning the model still produces is dropped, as Ollama does.</summary>
    public bool KeepThinking { get; init; } = true;
    /// <summary><c>options.num_ctx</c>: the request's own context size (at most the server's).</summary>
    public int? NumCtx { get; init; }
    /// <summary>No messages (chat) or an empty prompt (generate): Ollama's way to load (or, with keep_alive 0,
    /// unload) a model, answered at once with <c>done_reason</c> "load" or "unload".</summary>
    public string? LoadOnly { get; init; }

    /// <summary>Chat-completions names → the names in Ollama's request, for errors raised by the shared chat path.</summary>
    public static readonly (string Chat, string Api)[] Names =
    [
        ("temperature", "options.temperature"), ("top_p", "options.top_p"), ("top_k", "options.top_k"), ("min_p", "options.min_p"),
        ("seed", "options.seed"), ("max_tokens", "options.num_predict"), ("stop", "options.stop"),
        ("repetition_penalty", "options.repeat_penalty"), ("repeat_last_n", "options.repeat_last_n"),
        ("presence_penalty", "options.presence_penalty"), ("frequency_penalty", "options.frequency_penalty"),
        ("response_format", "format"), ("tools", "tools"),
    ];

    /// <summary>Ollama's defaults (its <c>api.DefaultOptions</c>) for the sampling options a request leaves out.</summary>
    private static readonly (string Option, string Chat, double Value)[] Defaults =
    [
        ("temperature", "temperature", 0.8), ("top_k", "top_k", 40), ("top_p", "top_p", 0.9), ("min_p", "min_p", 0.0),
        ("repeat_penalty", "repetition_penalty", 1.1), ("repeat_last_n", "repeat_last_n", 64),
        ("presence_penalty", "presence_penalty", 0.0), ("frequency_penalty", "frequency_penalty", 0.0),
    ];

    public static OllamaRequest ReadChat(JsonBody b)
    {
        var chat = new JsonObject();
        var messages = new JsonArray();
        var input = b["messages"] switch
        {
            null => new JsonArray(),
            JsonArray a => a,
            var other => throw ApiException.BadRequest($"'messages' must be a list of messages, got {JsonBody.Describe(other)}.", "messages"),
        };
        for (int i = 0; i < input.Count; i++) messages.Add((JsonNode)Message(AsObject(input[i], $"messages[{i}]"), $"messages[{i}]"));
        chat["messages"] = messages;
        if (b["tools"] is { } tools)
        {
            if (tools is not JsonArray) throw ApiException.BadRequest($"'tools' must be a list of tools, got {JsonBody.Describe(tools)}.", "tools");
            if (((JsonArray)tools).Count > 0) chat["tools"] = tools.DeepClone();
        }
        return Common(b, chat, messages.Count == 0, rawPrompt: null, context: null);
    }

    public static OllamaRequest ReadGenerate(JsonBody b)
    {
        string prompt = b.String("prompt") ?? "";
        if (b.String("suffix") is { Length: > 0 })
            throw ApiException.BadRequest("'suffix' (fill-in-the-middle) is not supported by this server's Ollama API.", "suffix");
        if (b.String("template") is { Length: > 0 })
            throw ApiException.BadRequest("'template' is not supported: Ollama's Go templates cannot run here; the model's own chat template renders the prompt (or use raw).", "template");
        Images(b["images"], "images");
        bool raw = b.Bool("raw") ?? false;
        string? system = b.String("system");
        if (raw && system is { Length: > 0 }) throw ApiException.BadRequest("'system' cannot be used with 'raw': a raw prompt is not templated.", "system");
        int[]? context = null;
        if (b.Array("context") is { Count: > 0 } ctx)
        {
            context = new int[ctx.Count];
            for (int i = 0; i < ctx.Count; i++)
                context[i] = (int)Math.Clamp(JsonBody.AsLong(ctx[i] ?? throw ApiException.BadRequest($"'context[{i}]' must be a token id.", "context"), "context"), -1, int.MaxValue);
        }
        var chat = new JsonObject();
        var messages = new JsonArray();
        if (system is { Length: > 0 }) messages.Add((JsonNode)new JsonObject { ["role"] = "system", ["content"] = system });
        messages.Add((JsonNode)new JsonObject { ["role"] = "user", ["content"] = prompt });
        chat["messages"] = messages;
        return Common(b, chat, prompt.Length == 0 && context is null, raw ? prompt : null, context);
    }

    private static OllamaRequest Common(JsonBody b, JsonObject chat, bool loadOnly, string? rawPrompt, int[]? context)
    {
        if (b["model"] is null) throw ApiException.BadRequest("model is required", "model");
        bool stream = b.Bool("stream") ?? true;
        chat["stream"] = stream;
        if (b.Bool("logprobs") == true || b.Int("top_logprobs") is > 0)
            throw ApiException.BadRequest("'logprobs' is not supported by this server's Ollama API (the OpenAI routes return log-probs).", "logprobs");
        KeepAlive(b["keep_alive"]);
        // Ollama's load request: nothing to generate; keep_alive 0 asks for an unload (the model stays: it is the server's)
        string? load = loadOnly ? (IsZero(b["keep_alive"]) ? "unload" : "load") : null;

        switch (b["format"])
        {
            case null:
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                string f = v.GetValue<string>();
                if (f == "json") chat["response_format"] = new JsonObject { ["type"] = "json_object" };
                else if (f.Length > 0) throw ApiException.BadRequest($"invalid format: \"{f}\": use \"json\" or a JSON schema object", "format");
                break;
            case JsonObject schema:
                chat["response_format"] = new JsonObject
                {
                    ["type"] = "json_schema",
                    ["json_schema"] = new JsonObject { ["name"] = "ollama", ["schema"] = schema.DeepClone() },
                };
                break;
            case var other:
                throw ApiException.BadRequest($"invalid format: {JsonBody.Describe(other)}: use \"json\" or a JSON schema object", "format");
        }

        bool keepThinking = true;
        var kwargs = new JsonObject();
        switch (b["think"])
        {
            case null:
                break;   // the template's default; reasoning, when the model produces it, still goes to "thinking"
            case JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False:
                keepThinking = v.GetValue<bool>();
                kwargs["enable_thinking"] = keepThinking;
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String && v.GetValue<string>() is "high" or "medium" or "low":
                kwargs["enable_thinking"] = true;
                kwargs["reasoning_effort"] = v.GetValue<string>();   // gpt-oss's templates read it
                break;
            case var other:
                throw ApiException.BadRequest($"invalid think value: {JsonBody.Describe(other)}: use true, false, \"high\", \"medium\" or \"low\"", "think");
        }
        if (kwargs.Count > 0) chat["chat_template_kwargs"] = kwargs;

        int? numCtx = Options(b, chat);
        return new OllamaRequest
        {
            Chat = new JsonBody(chat),
            Stream = stream,
            RawPrompt = rawPrompt,
            Context = context,
            KeepThinking = keepThinking,
            NumCtx = numCtx,
            LoadOnly = load,
        };
    }

    /// <summary><c>options</c> → the sampling fields (types and ranges checked by the chat path, errors renamed back);
    /// returns <c>num_ctx</c>.</summary>
    private static int? Options(JsonBody b, JsonObject chat)
    {
        var o = b.Object("options") ?? new JsonObject();
        var opts = new JsonBody(o);
        foreach (var (option, name, value) in Defaults)
            chat[name] = o[option] is { } v ? v.DeepClone() : JsonValue.Create(value);
        if (opts.Long("seed") is { } seed && seed >= 0) chat["seed"] = seed;   // a negative seed is Ollama's "random"
        if (o["stop"] is { } stop) chat["stop"] = stop.DeepClone();
        if (opts.Int("num_predict") is { } n)
        {
            // -1: until the model stops (or the context is full), -2: fill the context; both are the default here
            if (n > 0) chat["max_tokens"] = (long)n;   // a long: the chat path reads integers as long
            else if (n is not (-1 or -2))
                throw ApiException.BadRequest($"'options.num_predict' must be a positive number of tokens, -1 (no limit) or -2 (fill the context), got {n}.", "options.num_predict");
        }
        // the runner's options (num_thread, num_gpu, num_batch, use_mmap, ...), the samplers this engine lacks (typical_p,
        // mirostat*, tfs_z) and unknown options are ignored: Ollama too ignores options it does not know
        return opts.Int("num_ctx", 1);
    }

    /// <summary><c>keep_alive</c>: a duration string ("5m", "1h", "-1") or a number of seconds. Accepted and checked;
    /// the server keeps its one model loaded regardless.</summary>
    private static void KeepAlive(JsonNode? v)
    {
        switch (v)
        {
            case null:
            case JsonValue n when n.GetValueKind() == JsonValueKind.Number:
                return;
            case JsonValue s when s.GetValueKind() == JsonValueKind.String && IsDuration(s.GetValue<string>()):
                return;
            default:
                throw ApiException.BadRequest($"invalid keep_alive: {JsonBody.Describe(v)}: use a duration such as \"5m\" or a number of seconds", "keep_alive");
        }
    }

    private static bool IsDuration(string s)
    {
        if (s.Length == 0) return true;
        if (double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _)) return true;
        // Go's time.ParseDuration: an optional sign, then number+unit pairs (1h30m, 1.5s, 300ms)
        int i = s[0] is '-' or '+' ? 1 : 0;
        if (i == s.Length) return false;
        while (i < s.Length)
        {
            int start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.')) i++;
            if (i == start) return false;
            int u = i;
            while (i < s.Length && char.IsAsciiLetter(s[i]) || (i < s.Length && s[i] == 'µ')) i++;
            if (s[u..i] is not ("ns" or "us" or "µs" or "ms" or "s" or "m" or "h")) return false;
        }
        return true;
    }

    private static bool IsZero(JsonNode? v) => v switch
    {
        JsonValue n when n.GetValueKind() == JsonValueKind.Number => n.GetValue<double>() == 0,
        JsonValue s when s.GetValueKind() == JsonValueKind.String => s.GetValue<string>().Trim() is "0" or "0s" or "0m" or "0h",
        _ => false,
    };

    /// <summary>Refuses images: the served models read text only.</summary>
    private static void Images(JsonNode? images, string at)
    {
        if (images is null) return;
        if (images is not JsonArray a) throw ApiException.BadRequest($"'{at}' must be a list of base64 images, got {JsonBody.Describe(images)}.", at);
        if (a.Count > 0) throw ApiException.BadRequest($"'{at}': this model does not support images (the server runs text-only models).", at);
    }

    private static JsonObject Message(JsonObject m, string at)
    {
        string role = ReqString(m, "role", at);
        if (role is not ("system" or "user" or "assistant" or "tool"))
            throw ApiException.BadRequest($"'{at}.role' must be system, user, assistant or tool, got \"{role}\".", $"{at}.role");
        Images(m["images"], $"{at}.images");
        var result = new JsonObject { ["role"] = role, ["content"] = OptString(m, "content", at) ?? "" };
        if (OptString(m, "thinking", at) is { Length: > 0 } thinking)
        {
            if (role != "assistant") throw ApiException.BadRequest($"'{at}.thinking' is only allowed in an assistant message.", $"{at}.thinking");
            result["reasoning_content"] = thinking;
        }
        if (OptString(m, "tool_name", at) is { } toolName) result["name"] = toolName;
        if (OptString(m, "tool_call_id", at) is { } callId) result["tool_call_id"] = callId;
        if (m["tool_calls"] is { } calls)
        {
            if (role != "assistant") throw ApiException.BadRequest($"'{at}.tool_calls' is only allowed in an assistant message.", $"{at}.tool_calls");
            if (calls is not JsonArray list) throw ApiException.BadRequest($"'{at}.tool_calls' must be a list, got {JsonBody.Describe(calls)}.", $"{at}.tool_calls");
            var translated = new JsonArray();
            for (int i = 0; i < list.Count; i++)
            {
                string ct = $"{at}.tool_calls[{i}]";
                var call = AsObject(list[i], ct);
                var fn = AsObject(call["function"], $"{ct}.function");
                var args = fn["arguments"] ?? new JsonObject();
                if (args is not JsonObject) throw ApiException.BadRequest($"'{ct}.function.arguments' must be an object, got {JsonBody.Describe(args)}.", $"{ct}.function.arguments");
                translated.Add((JsonNode)new JsonObject
                {
                    ["id"] = OptString(call, "id", ct) ?? $"call_{i}",
                    ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = ReqString(fn, "name", $"{ct}.function"), ["arguments"] = args.ToJsonString() },
                });
            }
            if (translated.Count > 0) result["tool_calls"] = translated;
        }
        return result;
    }
}
