using SharpInfer.Engine;
using SharpInfer.Models;

namespace SharpInfer.Server;

/// <summary>Options of the HTTP server (<c>sharpinfer serve</c>), with the engine's options inside.</summary>
public sealed record ServerOptions
{
    /// <summary>The GGUF file to serve (-m).</summary>
    public string ModelPath { get; init; } = "";
    /// <summary>Interface to listen on (--host); "0.0.0.0" or "::" for all.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>TCP port (--port); 0 picks a free one.</summary>
    public int Port { get; init; } = 8080;
    /// <summary>A second TCP port on <see cref="Host"/> for Ollama's clients (--ollama-port, Ollama's default is 11434);
    /// null = none. Both ports serve every route, Ollama's /api/* included.</summary>
    public int? OllamaPort { get; init; }
    /// <summary>When set, /v1/* and /tokenize, /detokenize require <c>Authorization: Bearer &lt;key&gt;</c> (--api-key).</summary>
    public string? ApiKey { get; init; }
    /// <summary>The model id clients use (--served-model-name); null = the file name without .gguf.</summary>
    public string? ServedModelName { get; init; }
    /// <summary>Every name the model answers to (llama-server's comma-separated <c>--alias</c>); listed as <c>aliases</c> by
    /// /v1/models, and a request's <c>model</c> may name any of them. Empty: only <see cref="ModelId"/>.</summary>
    public IReadOnlyList<string> ModelAliases { get; init; } = [];
    /// <summary>llama-server's <c>--tags</c>: informational labels listed as <c>tags</c> by /v1/models.</summary>
    public IReadOnlyList<string> ModelTags { get; init; } = [];
    /// <summary>How long in-flight requests may run after SIGTERM/Ctrl-C before they are aborted (--shutdown-timeout).</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Largest accepted request body in bytes; larger bodies get 413 (--max-body-size).</summary>
    public long MaxRequestBodyBytes { get; init; } = 16L << 20;
    /// <summary>Origins browsers may call from (--cors-origin, repeatable or comma-separated; "*" = any). Empty = CORS
    /// off: no CORS headers, preflights are not answered.</summary>
    public IReadOnlyList<string> CorsOrigins { get; init; } = [];
    /// <summary>Serve requests naming any <c>model</c> with the one loaded model, as llama-server does (off: another
    /// name is OpenAI's and vLLM's 404 model_not_found).</summary>
    public bool AnyModelName { get; init; }
    /// <summary><c>--sampling-defaults llama-server</c>: the OpenAI routes (chat/completions, completions) fill the
    /// sampling fields a request omits with llama-server's defaults (<see cref="DefaultTemperature"/> or 0.8, top_k 40,
    /// top_p 0.95, min_p 0.05, <see cref="DefaultSeed"/>, <see cref="DefaultNPredict"/>) and sample with llama.cpp's
    /// chain, so a seeded request gives llama-server's text. Off (vllm, the default): vLLM's defaults and order.</summary>
    public bool LlamaServerSampling { get; init; }
    /// <summary>How long a stored /v1/responses result can be continued (previous_response_id) or fetched
    /// (--responses-ttl); zero keeps none.</summary>
    public TimeSpan ResponsesTtl { get; init; } = TimeSpan.FromHours(1);
    /// <summary>Most stored /v1/responses results (--responses-max-entries); the oldest goes first. Zero keeps none.</summary>
    public int ResponsesMaxEntries { get; init; } = 1000;
    /// <summary>Most memory the stored /v1/responses results may take together (their conversations' text).</summary>
    public long ResponsesMaxBytes { get; init; } = 256L << 20;
    /// <summary>llama-server's <c>--n-predict</c>: the most tokens a native <c>/completion</c> generates when the request
    /// sets no <c>n_predict</c> or -1 (null or negative = until the context is full); a request's own value wins.</summary>
    public int? DefaultNPredict { get; init; }
    /// <summary>llama-server's <c>--seed</c>: the seed native requests use when they set none (null = random).</summary>
    public ulong? DefaultSeed { get; init; }
    /// <summary>llama-server's <c>--temp</c>: the temperature native requests use when they set none (null = 0.8).</summary>
    public float? DefaultTemperature { get; init; }
    /// <summary>llama-server's <c>--slots</c>/<c>--no-slots</c>: whether <c>GET /slots</c> answers (else 501).</summary>
    public bool SlotsEndpoint { get; init; } = true;
    /// <summary>llama-server's <c>--context-shift</c>: a native <c>/completion</c> whose <c>n_predict</c> runs past the
    /// context keeps its first <c>n_keep</c> tokens (and BOS), drops half of the rest and goes on, instead of stopping
    /// at the context's end.</summary>
    public bool ContextShift { get; init; }
    /// <summary>llama-server's <c>--sleep-idle-seconds</c>: after this many seconds without any request the engine
    /// (KV cache, compute threads) is released until the next request needs it; null or ≤ 0 = never.</summary>
    public int? SleepIdleSeconds { get; init; }
    /// <summary>Serve the web page at <c>/</c> and its files (llama-server's web UI; off with <c>--no-ui</c>: 404).</summary>
    public bool WebUi { get; init; } = true;
    /// <summary>A Jinja chat template used instead of the model's (<c>--chat-template</c>, <c>--chat-template-file</c>).</summary>
    public string? ChatTemplate { get; init; }
    /// <summary>llama-server's <c>--tools</c>: built-in tools served on <c>/tools</c> (names, or <c>all</c>). Empty = none
    /// (the default): they give any client that reaches the server file and shell access.</summary>
    public IReadOnlyList<string> Tools { get; init; } = [];
    /// <summary>llama-server's <c>--mcp-servers-config</c>: a file of <c>{"mcpServers": {...}}</c> whose tools /tools serves.</summary>
    public string? McpServersConfig { get; init; }
    /// <summary>llama-server's <c>--mcp-servers-json</c>: the same configuration inline.</summary>
    public string? McpServersJson { get; init; }
    /// <summary>llama-server's <c>--ui-mcp-proxy</c>: serve <c>/cors-proxy?url=</c> (else 403).</summary>
    public bool UiMcpProxy { get; init; }
    /// <summary>Whether /tools serves anything (built-ins or MCP servers).</summary>
    public bool ToolsEnabled => Tools.Count > 0 || !string.IsNullOrEmpty(McpServersConfig) || !string.IsNullOrEmpty(McpServersJson);
    /// <summary>The CORS origins in force: <see cref="CorsOrigins"/>, or only loopback origins when tools are on and
    /// none were given (llama-server's narrowing: a web page elsewhere must not drive the tools).</summary>
    public IReadOnlyList<string> EffectiveCorsOrigins => CorsOrigins.Count == 0 && ToolsEnabled ? ["localhost"] : CorsOrigins;
    /// <summary>Template variables every chat request gets unless it sets them (<c>--chat-template-kwargs</c>, and
    /// <c>enable_thinking</c> from <c>--reasoning on|off</c>), as llama-server's default template kwargs.</summary>
    public IReadOnlyDictionary<string, System.Text.Json.Nodes.JsonNode?>? ChatTemplateKwargs { get; init; }
    /// <summary>llama-server's <c>--verbose</c>: responses carry the <c>__verbose</c> debug object unless a request
    /// sets <c>"verbose": false</c> (a request can also ask for it with <c>"verbose": true</c>).</summary>
    public bool Verbose { get; init; }
    public EngineOptions Engine { get; init; } = new();
    /// <summary>Loads the model (default: <see cref="Model.Load"/> of <see cref="ModelPath"/>). Runs in the background
    /// after the server starts listening; until it returns, requests get 503.</summary>
    internal Func<CancellationToken, Task<Model>>? ModelLoader { get; init; }
    /// <summary>Dispose the model when the server stops (false when the caller shares a loaded model).</summary>
    internal bool DisposeModel { get; init; } = true;

    /// <summary>The id of the served model.</summary>
    public string ModelId => ServedModelName is { Length: > 0 } n ? n
        : Path.GetFileName(ModelPath) is var f && f.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? f[..^5] : Path.GetFileName(ModelPath);

    public ServerOptions Validate()
    {
        if (Port is < 0 or > 65535) throw new InvalidRequestException($"--port must be between 0 and 65535, got {Port}", "port");
        if (OllamaPort is < 0 or > 65535) throw new InvalidRequestException($"--ollama-port must be between 0 and 65535, got {OllamaPort}", "ollama_port");
        if (OllamaPort is { } op && op != 0 && op == Port) throw new InvalidRequestException($"--ollama-port must differ from --port ({Port})", "ollama_port");
        if (string.IsNullOrWhiteSpace(Host)) throw new InvalidRequestException("--host must not be empty", "host");
        if (ShutdownTimeout < TimeSpan.Zero) throw new InvalidRequestException("--shutdown-timeout must not be negative", "shutdown_timeout");
        if (MaxRequestBodyBytes < 1024) throw new InvalidRequestException("--max-body-size must be at least 1 KiB", "max_body_size");
        if (ResponsesTtl < TimeSpan.Zero) throw new InvalidRequestException("--responses-ttl must not be negative", "responses_ttl");
        if (ResponsesMaxEntries < 0) throw new InvalidRequestException("--responses-max-entries must not be negative", "responses_max_entries");
        if (ResponsesMaxBytes < 0) throw new InvalidRequestException("the responses store's byte budget must not be negative", "responses_max_bytes");
        if (ApiKey is { Length: 0 }) throw new InvalidRequestException("--api-key must not be empty", "api_key");
        if (string.IsNullOrEmpty(ModelId)) throw new InvalidRequestException("a model file (-m) or --served-model-name is required", "model");
        Engine.Validate();
        return this;
    }

    /// <summary>Whether <paramref name="name"/> is the served model's id or one of its aliases.</summary>
    internal bool Serves(string name) => name == ModelId || ModelAliases.Contains(name);

    /// <summary>llama-server's <c>--alias a,b,c</c> / <c>--tags x,y</c>: the comma-separated names, trimmed, without
    /// empties and duplicates, in ordinal order (llama-server keeps them in a sorted set; its model id is the first).</summary>
    internal static string[] SplitNames(string? value) =>
        value is null ? [] : [.. value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Distinct().Order(StringComparer.Ordinal)];

    /// <summary>The URL Kestrel binds for <see cref="Host"/> and <see cref="Port"/> (IPv6 literals bracketed).</summary>
    public string ListenUrl => UrlFor(Port);

    /// <summary>The URLs Kestrel binds: <see cref="ListenUrl"/>, and the Ollama port's when one is set.</summary>
    public string[] ListenUrls => OllamaPort is { } op ? [ListenUrl, UrlFor(op)] : [ListenUrl];

    private string UrlFor(int port) => $"http://{(Host.Contains(':') && !Host.StartsWith('[') ? $"[{Host}]" : Host)}:{port}";
}

/// <summary>Parses sizes such as <c>2GiB</c>, <c>512MiB</c>, <c>1.5GB</c>, <c>4096</c> (bytes).</summary>
internal static class ByteSize
{
    public static long Parse(string text, string field = "kv_cache_memory")
    {
        var s = text.Trim();
        int i = 0;
        while (i < s.Length && (char.IsDigit(s[i]) || s[i] == '.')) i++;
        if (i == 0 || !double.TryParse(s[..i], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value))
            throw new InvalidRequestException($"'{text}' is not a size (examples: 2GiB, 512MiB, 1.5GB, 1048576)", field);
        double mult = s[i..].Trim().ToLowerInvariant() switch
        {
            "" or "b" => 1,
            "k" or "kb" => 1e3,
            "kib" => 1L << 10,
            "m" or "mb" => 1e6,
            "mib" => 1L << 20,
            "g" or "gb" => 1e9,
            "gib" => 1L << 30,
            "t" or "tb" => 1e12,
            "tib" => 1L << 40,
            var u => throw new InvalidRequestException($"'{text}': unknown unit '{u}' (use B, KiB, MiB, GiB, KB, MB, GB)", field),
        };
        double bytes = value * mult;
        if (!(bytes >= 1 && bytes < 9e18)) throw new InvalidRequestException($"'{text}' is not a positive size", field);
        return (long)bytes;
    }

    public static string Format(long bytes) =>
        bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):F2} GiB" : bytes >= 1L << 20 ? $"{bytes / (double)(1L << 20):F1} MiB" : $"{bytes / 1024.0:F1} KiB";
}
