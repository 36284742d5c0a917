using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpInfer.Cli.Commands;

/// <summary>
/// <c>sharpinfer bench serve</c>: a load generator for any OpenAI-compatible server (ours, vLLM, llama-server), after
/// vLLM's benchmark_serving: N streamed requests (temperature 0, ignore_eos, max_tokens = the output length,
/// usage requested) arriving as a Poisson process at --request-rate (or all at once), at most --max-concurrency in
/// flight; reports request and token throughput and TTFT / TPOT / ITL / E2E latency mean, median and p99.
/// Prompts are text of random common words (about one token each), so the server tokenizes; the prompt token counts
/// reported are the server's (usage) when it sends them.
/// </summary>
internal static class BenchServeCommand
{
    public static Command Create()
    {
        var baseUrl = new Option<string>("--base-url") { Description = "Server URL (without /v1)", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var model = new Option<string?>("--model") { Description = "Model id to request (default: the first of GET /v1/models)" };
        var numPrompts = new Option<int>("--num-prompts") { Description = "Requests to send", DefaultValueFactory = _ => 100 };
        var rate = new Option<string>("--request-rate") { Description = "Requests per second (Poisson arrivals), or inf to send all at once", DefaultValueFactory = _ => "inf" };
        var concurrency = new Option<int?>("--max-concurrency") { Description = "Most requests in flight at once (default: unlimited)" };
        var dataset = new Option<string>("--dataset")
        {
            Description = "random | shared-prefix (every prompt starts with the same --prefix-len words) | multi-turn (--num-prompts conversations of " +
                          "--turns turns; each turn sends the whole history plus a new --input-len message; the first message opens with " +
                          "the --prefix-len words all conversations share and --conversation-prefix-len words of its own, as vLLM's " +
                          "multi-turn benchmark's common_prefix_num_tokens and prefix_num_tokens)",
            DefaultValueFactory = _ => "random",
        };
        var turns = new Option<int>("--turns") { Description = "Turns per conversation of the multi-turn dataset", DefaultValueFactory = _ => 6 };
        var inputLen = new Option<string>("--input-len") { Description = "Prompt words (≈ tokens) per request: N or MIN:MAX (uniform)", DefaultValueFactory = _ => "128" };
        var outputLen = new Option<string>("--output-len") { Description = "Tokens to generate per request: N or MIN:MAX (uniform)", DefaultValueFactory = _ => "32" };
        var prefixLen = new Option<int?>("--prefix-len") { Description = "Shared prefix words before each prompt (default 0; 256 for shared-prefix)" };
        var conversationPrefixLen = new Option<string?>("--conversation-prefix-len")
        {
            Description = "Multi-turn: words of a conversation's own context (a document, a persona) that open its first message: N or MIN:MAX (default none)",
        };
        var endpoint = new Option<string>("--endpoint") { Description = "/v1/completions or /v1/chat/completions", DefaultValueFactory = _ => "/v1/completions" };
        var seed = new Option<int>("--seed") { Description = "Random seed for prompts and arrivals", DefaultValueFactory = _ => 0 };
        var apiKey = new Option<string?>("--api-key") { Description = "Bearer key (default: $OPENAI_API_KEY)" };
        var timeout = new Option<double>("--timeout") { Description = "Seconds one request may take before it counts as failed", DefaultValueFactory = _ => 600 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object with every number" };
        var cmd = new Command("serve", "Load-test an OpenAI-compatible server (like vLLM's benchmark_serving)")
        {
            baseUrl, model, numPrompts, rate, concurrency, dataset, turns, inputLen, outputLen, prefixLen, conversationPrefixLen, endpoint, seed, apiKey, timeout, json,
        };
        cmd.SetAction(r =>
        {
            var options = new BenchServeOptions
            {
                BaseUrl = r.GetValue(baseUrl)!,
                Model = r.GetValue(model),
                NumPrompts = r.GetValue(numPrompts),
                RequestRate = ParseRate(r.GetValue(rate)!),
                MaxConcurrency = r.GetValue(concurrency),
                Dataset = r.GetValue(dataset)!,
                Turns = r.GetValue(turns),
                InputLen = ParseRange(r.GetValue(inputLen)!, "input-len"),
                OutputLen = ParseRange(r.GetValue(outputLen)!, "output-len"),
                PrefixLen = r.GetValue(prefixLen),
                ConversationPrefixLen = r.GetValue(conversationPrefixLen) is { } cp ? ParseRange(cp, "conversation-prefix-len") : null,
                Endpoint = r.GetValue(endpoint)!,
                Seed = r.GetValue(seed),
                ApiKey = r.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("OPENAI_API_KEY"),
                Timeout = TimeSpan.FromSeconds(r.GetValue(timeout)),
            };
            var result = ProgressDisplay.IsTerminal(Console.Error)
                ? ProgressDisplay.Run(ProgressDisplay.StandardError(), "bench serve", report =>
                    BenchServe.RunAsync(options, onDone: (d, t) => report($"bench serve: {d}/{t} requests", (double)d / t)).GetAwaiter().GetResult())
                : BenchServe.RunAsync(options, progress: r.GetValue(json) ? null : Console.Error).GetAwaiter().GetResult();
            if (r.GetValue(json)) Console.Out.WriteLine(result.ToJson().ToJsonString(CliJson.Indented));
            else result.Print(Console.Out);
            return result.Completed > 0 ? 0 : 1;
        });
        return cmd;
    }

    public static double ParseRate(string s) =>
        s.Equals("inf", StringComparison.OrdinalIgnoreCase) ? double.PositiveInfinity
        : double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var r) && r > 0 ? r
        : throw new InvalidRequestException($"--request-rate must be a positive number or inf, got '{s}'", "request_rate");

    /// <summary>"N" or "MIN:MAX".</summary>
    public static (int Min, int Max) ParseRange(string s, string name)
    {
        var parts = s.Split(':');
        if (parts.Length is 1 or 2 && parts.All(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
        {
            int a = int.Parse(parts[0], CultureInfo.InvariantCulture), b = int.Parse(parts[^1], CultureInfo.InvariantCulture);
            if (a >= 1 && b >= a) return (a, b);
        }
        throw new InvalidRequestException($"--{name} must be N or MIN:MAX with 1 <= MIN <= MAX, got '{s}'", name.Replace('-', '_'));
    }
}

internal sealed record BenchServeOptions
{
    public string BaseUrl { get; init; } = "http://127.0.0.1:8080";
    public string? Model { get; init; }
    public int NumPrompts { get; init; } = 100;
    public double RequestRate { get; init; } = double.PositiveInfinity;
    public int? MaxConcurrency { get; init; }
    public string Dataset { get; init; } = "random";
    /// <summary>Turns per conversation (multi-turn dataset; --num-prompts is then the number of conversations).</summary>
    public int Turns { get; init; } = 6;
    public (int Min, int Max) InputLen { get; init; } = (128, 128);
    public (int Min, int Max) OutputLen { get; init; } = (32, 32);
    public int? PrefixLen { get; init; }
    /// <summary>Multi-turn: words of each conversation's own opening context (vLLM's prefix_num_tokens), or none.</summary>
    public (int Min, int Max)? ConversationPrefixLen { get; init; }
    public string Endpoint { get; init; } = "/v1/completions";
    public int Seed { get; init; }
    public string? ApiKey { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);

    public BenchServeOptions Validate()
    {
        if (NumPrompts < 1) throw new InvalidRequestException("--num-prompts must be at least 1", "num_prompts");
        if (MaxConcurrency is < 1) throw new InvalidRequestException("--max-concurrency must be at least 1", "max_concurrency");
        if (Dataset is not ("random" or "shared-prefix" or "multi-turn"))
            throw new InvalidRequestException($"--dataset must be random, shared-prefix or multi-turn, got '{Dataset}'", "dataset");
        if (Turns is < 1 or > 1000) throw new InvalidRequestException($"--turns must be between 1 and 1000, got {Turns}", "turns");
        if (PrefixLen is < 0) throw new InvalidRequestException("--prefix-len must not be negative", "prefix_len");
        if (ConversationPrefixLen is { } cp && (cp.Min < 1 || cp.Max < cp.Min))
            throw new InvalidRequestException("--conversation-prefix-len must be N or MIN:MAX with 1 <= MIN <= MAX", "conversation_prefix_len");
        if (ConversationPrefixLen != null && !IsMultiTurn)
            throw new InvalidRequestException("--conversation-prefix-len applies to --dataset multi-turn only", "conversation_prefix_len");
        if (!Uri.TryCreate(BaseUrl, UriKind.Absolute, out var u) || (u.Scheme != "http" && u.Scheme != "https"))
            throw new InvalidRequestException($"--base-url must be an http(s) URL, got '{BaseUrl}'", "base_url");
        if (!(RequestRate > 0)) throw new InvalidRequestException("--request-rate must be positive", "request_rate");
        return this;
    }

    public int EffectivePrefixLen => PrefixLen ?? (Dataset == "shared-prefix" ? 256 : 0);
    public bool IsChat => Endpoint.TrimEnd('/').EndsWith("chat/completions", StringComparison.Ordinal);
    public bool IsMultiTurn => Dataset == "multi-turn";
    /// <summary>Requests the run sends.</summary>
    public int TotalRequests => IsMultiTurn ? NumPrompts * Turns : NumPrompts;
}

/// <summary>One request's measurements (seconds).</summary>
internal sealed record BenchRequestResult
{
    public bool Success { get; init; }
    public string? Error { get; init; }
    public int PromptWords { get; init; }
    public int? PromptTokens { get; init; }
    /// <summary>Prompt tokens the server served from its prefix cache (usage.prompt_tokens_details.cached_tokens, or
    /// llama-server's timings.cache_n), when it says.</summary>
    public int? CachedTokens { get; init; }
    public int OutputTokens { get; init; }
    public double Ttft { get; init; }
    public double Latency { get; init; }
    public IReadOnlyList<double> Itl { get; init; } = [];
    public string Text { get; init; } = "";
}

internal sealed record BenchServeResult
{
    public required BenchServeOptions Options { get; init; }
    public required string Model { get; init; }
    public required IReadOnlyList<BenchRequestResult> Requests { get; init; }
    public double Duration { get; init; }
    public int MaxConcurrencyObserved { get; init; }

    private IEnumerable<BenchRequestResult> Ok => Requests.Where(r => r.Success);
    public int Completed => Ok.Count();
    public int Failed => Requests.Count - Completed;
    /// <summary>Prompt tokens as the server counted them (usage), else the word count.</summary>
    public long TotalInputTokens => Ok.Sum(r => (long)(r.PromptTokens ?? r.PromptWords));
    public bool InputTokensFromServer => Ok.Any() && Ok.All(r => r.PromptTokens != null);
    public long TotalOutputTokens => Ok.Sum(r => (long)r.OutputTokens);
    /// <summary>Prompt tokens served from the server's prefix cache, when every response said (else null).</summary>
    public long? TotalCachedTokens => Ok.Any() && Ok.All(r => r.CachedTokens != null && r.PromptTokens != null) ? Ok.Sum(r => (long)r.CachedTokens!.Value) : null;
    /// <summary>Cached share of the prompt tokens (the prefix-cache hit rate as the client sees it).</summary>
    public double? CacheHitRate => TotalCachedTokens is { } c && TotalInputTokens > 0 ? (double)c / TotalInputTokens : null;
    public double RequestThroughput => Duration > 0 ? Completed / Duration : 0;
    public double OutputThroughput => Duration > 0 ? TotalOutputTokens / Duration : 0;
    public double TotalTokenThroughput => Duration > 0 ? (TotalInputTokens + TotalOutputTokens) / Duration : 0;
    public double[] TtftMs => [.. Ok.Select(r => r.Ttft * 1000)];
    public double[] TpotMs => [.. Ok.Where(r => r.OutputTokens > 1).Select(r => (r.Latency - r.Ttft) / (r.OutputTokens - 1) * 1000)];
    public double[] ItlMs => [.. Ok.SelectMany(r => r.Itl).Select(x => x * 1000)];
    public double[] E2elMs => [.. Ok.Select(r => r.Latency * 1000)];

    public static double Mean(double[] xs) => xs.Length == 0 ? 0 : xs.Average();

    /// <summary>Linear-interpolation percentile (numpy's default).</summary>
    public static double Percentile(double[] xs, double p)
    {
        if (xs.Length == 0) return 0;
        var s = xs.Order().ToArray();
        double pos = p / 100 * (s.Length - 1);
        int lo = (int)Math.Floor(pos), hi = (int)Math.Ceiling(pos);
        return s[lo] + (s[hi] - s[lo]) * (pos - lo);
    }

    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["base_url"] = Options.BaseUrl,
            ["endpoint"] = Options.Endpoint,
            ["model"] = Model,
            ["dataset"] = Options.Dataset,
            ["num_prompts"] = Options.NumPrompts,
            ["request_rate"] = double.IsInfinity(Options.RequestRate) ? "inf" : Options.RequestRate,
            ["max_concurrency"] = Options.MaxConcurrency,
            ["input_len"] = $"{Options.InputLen.Min}:{Options.InputLen.Max}",
            ["output_len"] = $"{Options.OutputLen.Min}:{Options.OutputLen.Max}",
            ["prefix_len"] = Options.EffectivePrefixLen,
            ["turns"] = Options.IsMultiTurn ? Options.Turns : null,
            ["conversation_prefix_len"] = Options.ConversationPrefixLen is { } cp ? $"{cp.Min}:{cp.Max}" : null,
            ["completed"] = Completed,
            ["failed"] = Failed,
            ["duration"] = Math.Round(Duration, 6),
            ["total_input_tokens"] = TotalInputTokens,
            ["input_tokens_from_server"] = InputTokensFromServer,
            ["total_output_tokens"] = TotalOutputTokens,
            ["total_cached_tokens"] = TotalCachedTokens,
            ["cache_hit_rate"] = CacheHitRate is { } hr ? Math.Round(hr, 6) : null,
            ["request_throughput"] = Math.Round(RequestThroughput, 6),
            ["output_throughput"] = Math.Round(OutputThroughput, 6),
            ["total_token_throughput"] = Math.Round(TotalTokenThroughput, 6),
            ["max_concurrency_observed"] = MaxConcurrencyObserved,
        };
        foreach (var (name, xs) in new[] { ("ttft", TtftMs), ("tpot", TpotMs), ("itl", ItlMs), ("e2el", E2elMs) })
        {
            o[$"mean_{name}_ms"] = Math.Round(Mean(xs), 4);
            o[$"median_{name}_ms"] = Math.Round(Percentile(xs, 50), 4);
            o[$"p99_{name}_ms"] = Math.Round(Percentile(xs, 99), 4);
        }
        o["errors"] = new JsonArray([.. Requests.Where(r => !r.Success).Select(r => r.Error).Distinct().Take(5).Select(e => (JsonNode?)JsonValue.Create(e))]);
        return o;
    }

    public void Print(TextWriter w)
    {
        static string L(string label) => label.PadRight(40);
        w.WriteLine("============ Serving Benchmark Result ============");
        w.WriteLine($"{L("Successful requests:")}{Completed}");
        w.WriteLine($"{L("Failed requests:")}{Failed}");
        w.WriteLine($"{L("Benchmark duration (s):")}{Duration:F2}");
        w.WriteLine($"{L(InputTokensFromServer ? "Total input tokens:" : "Total input tokens (words, estimated):")}{TotalInputTokens}");
        w.WriteLine($"{L("Total generated tokens:")}{TotalOutputTokens}");
        if (TotalCachedTokens is { } cached)
        {
            w.WriteLine($"{L("Cached input tokens:")}{cached}");
            w.WriteLine($"{L("Prefix cache hit rate:")}{CacheHitRate:P1}");
        }
        w.WriteLine($"{L("Request throughput (req/s):")}{RequestThroughput:F2}");
        w.WriteLine($"{L("Output token throughput (tok/s):")}{OutputThroughput:F2}");
        w.WriteLine($"{L("Total Token throughput (tok/s):")}{TotalTokenThroughput:F2}");
        w.WriteLine($"{L("Peak concurrent requests:")}{MaxConcurrencyObserved}");
        foreach (var (title, name, xs) in new[] { ("Time to First Token", "TTFT", TtftMs), ("Time per Output Token (excl. 1st token)", "TPOT", TpotMs),
                                                 ("Inter-token Latency", "ITL", ItlMs), ("End-to-end Latency", "E2EL", E2elMs) })
        {
            w.WriteLine(("-" + title + "-").PadLeft(25 + title.Length / 2, '-').PadRight(50, '-'));
            w.WriteLine($"{L($"Mean {name} (ms):")}{Mean(xs):F2}");
            w.WriteLine($"{L($"Median {name} (ms):")}{Percentile(xs, 50):F2}");
            w.WriteLine($"{L($"P99 {name} (ms):")}{Percentile(xs, 99):F2}");
        }
        w.WriteLine("==================================================");
        foreach (var e in Requests.Where(r => !r.Success).Select(r => r.Error).Distinct().Take(5)) w.WriteLine($"error: {e}");
    }
}

/// <summary>The load generator behind <c>bench serve</c>.</summary>
internal static class BenchServe
{
    /// <summary>Common English words, most of them one token in BPE and SentencePiece vocabularies.</summary>
    public static readonly string[] Words =
    [
        "the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are", "as", "with", "his", "they", "at", "be",
        "this", "have", "from", "or", "one", "had", "by", "word", "but", "not", "what", "all", "were", "we", "when", "your", "can", "said",
        "there", "use", "an", "each", "which", "she", "do", "how", "their", "if", "will", "up", "other", "about", "out", "many", "then",
        "them", "these", "so", "some", "her", "would", "make", "like", "him", "into", "time", "has", "look", "two", "more", "write", "go",
        "see", "number", "no", "way", "could", "people", "my", "than", "first", "water", "been", "call", "who", "oil", "its", "now", "find",
        "long", "down", "day", "did", "get", "come", "made", "may", "part", "over", "new", "sound", "take", "only", "little", "work", "know",
        "place", "year", "live", "me", "back", "give", "most", "very", "after", "thing", "our", "just", "name", "good", "sentence", "man",
        "think", "say", "great", "where", "help", "through", "much", "before", "line", "right", "too", "mean", "old", "any", "same", "tell",
        "boy", "follow", "came", "want", "show", "also", "around", "form", "three", "small", "set", "put", "end", "does", "another", "well",
        "large", "must", "big", "even", "such", "because", "turn", "here", "why", "ask", "went", "men", "read", "need", "land", "different",
        "home", "us", "move", "try", "kind", "hand", "picture", "again", "change", "off", "play", "spell", "air", "away", "animal", "house",
        "point", "page", "letter", "mother", "answer", "found", "study", "still", "learn", "should", "world", "high", "every", "near", "add",
        "food", "between", "own", "below", "country", "plant", "last", "school", "father", "keep", "tree", "never", "start", "city", "earth",
        "eye", "light", "thought", "head", "under", "story", "saw", "left", "few", "while", "along", "might", "close", "something", "seem",
    ];

    public static string RandomWords(Random rng, int count)
    {
        var sb = new StringBuilder(count * 6);
        for (int i = 0; i < count; i++)
        {
            if (i > 0) sb.Append(' ');
            sb.Append(Words[rng.Next(Words.Length)]);
        }
        return sb.ToString();
    }

    /// <summary>The words every prompt (every conversation, for multi-turn) starts with: "" without --prefix-len.</summary>
    public static string CommonPrefix(BenchServeOptions o) => o.EffectivePrefixLen > 0 ? RandomWords(new Random(o.Seed), o.EffectivePrefixLen) : "";

    /// <summary>The prompts and output lengths of a run (deterministic for a seed).</summary>
    public static List<(string Prompt, int Words, int OutputLen)> BuildDataset(BenchServeOptions o)
    {
        var rng = new Random(o.Seed);
        int prefixLen = o.EffectivePrefixLen;
        // the same words as CommonPrefix: drawn first from the same generator, which then goes on to the suffixes
        string prefix = prefixLen > 0 ? RandomWords(rng, prefixLen) : "";
        var list = new List<(string, int, int)>(o.NumPrompts);
        for (int i = 0; i < o.NumPrompts; i++)
        {
            int inLen = rng.Next(o.InputLen.Min, o.InputLen.Max + 1);
            int outLen = rng.Next(o.OutputLen.Min, o.OutputLen.Max + 1);
            var suffix = RandomWords(rng, inLen);
            list.Add((prefix.Length > 0 ? prefix + " " + suffix : suffix, prefixLen + inLen, outLen));
        }
        return list;
    }

    /// <param name="progress">Plain progress lines (the header and every tenth of the requests).</param>
    /// <param name="onDone">Called with (requests finished, total) as each request finishes, from any thread.</param>
    public static async Task<BenchServeResult> RunAsync(BenchServeOptions options, TextWriter? progress = null, HttpClient? client = null,
                                                        CancellationToken ct = default, Action<int, int>? onDone = null)
    {
        options.Validate();
        var ownClient = client == null;
        client ??= new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = int.MaxValue, PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        try
        {
            var baseUrl = options.BaseUrl.TrimEnd('/');
            var model = options.Model ?? await FirstModelAsync(client, baseUrl, options.ApiKey, ct).ConfigureAwait(false);
            var dataset = BuildDataset(options);
            var commonPrefix = CommonPrefix(options);
            var arrivals = new Random(options.Seed + 1);
            using var gate = options.MaxConcurrency is { } c ? new SemaphoreSlim(c, c) : null;
            int inFlight = 0, peak = 0, done = 0, total = options.TotalRequests;
            progress?.WriteLine($"bench serve: {total} requests" + (options.IsMultiTurn ? $" ({options.NumPrompts} conversations × {options.Turns} turns)" : "") +
                                $" to {baseUrl}{options.Endpoint} (model {model}), rate {(double.IsInfinity(options.RequestRate) ? "inf" : options.RequestRate.ToString(CultureInfo.InvariantCulture))}/s" +
                                (options.MaxConcurrency is { } mc ? $", max concurrency {mc}" : ""));

            // one request under the concurrency limit
            async Task<BenchRequestResult> Send(string prompt, JsonArray? messages, int words, int outLen)
            {
                if (gate != null) await gate.WaitAsync(ct).ConfigureAwait(false);
                InterlockedMax(ref peak, Interlocked.Increment(ref inFlight));
                try
                {
                    return await SendAsync(client, baseUrl, options, model, prompt, words, outLen, ct, messages).ConfigureAwait(false);
                }
                finally
                {
                    Interlocked.Decrement(ref inFlight);
                    gate?.Release();
                    int d = Interlocked.Increment(ref done);
                    onDone?.Invoke(d, total);
                    if (progress != null && (d % Math.Max(1, total / 10) == 0 || d == total)) progress.WriteLine($"  {d}/{total} done");
                }
            }

            // a conversation: each turn sends the history (earlier messages and the answers received) plus a new message
            async Task<BenchRequestResult[]> Converse(int index)
            {
                // a seed of its own per conversation, the same in every process (HashCode.Combine is randomized per
                // process, which made the conversations differ between the runs a comparison pairs)
                var rng = new Random(unchecked(options.Seed * 1_000_003 + index * 7919 + 7));
                var messages = new JsonArray();
                var transcript = new StringBuilder();
                var results = new BenchRequestResult[options.Turns];
                int words = 0;
                // the first message opens with the shared words and then the conversation's own context (vLLM's
                // multi-turn generator: common prefix, per-conversation prefix, then the turn's text)
                var opening = commonPrefix;
                words += options.EffectivePrefixLen;
                if (options.ConversationPrefixLen is { } cp)
                {
                    int n = rng.Next(cp.Min, cp.Max + 1);
                    opening = opening.Length > 0 ? opening + " " + RandomWords(rng, n) : RandomWords(rng, n);
                    words += n;
                }
                for (int t = 0; t < options.Turns; t++)
                {
                    int inLen = rng.Next(options.InputLen.Min, options.InputLen.Max + 1);
                    int outLen = rng.Next(options.OutputLen.Min, options.OutputLen.Max + 1);
                    var user = RandomWords(rng, inLen);
                    if (t == 0 && opening.Length > 0) user = opening + " " + user;
                    words += inLen;
                    messages.Add((JsonNode)new JsonObject { ["role"] = "user", ["content"] = user });
                    transcript.Append("User: ").Append(user).Append("\nAssistant:");
                    var r = await Send(transcript.ToString(), options.IsChat ? (JsonArray)messages.DeepClone() : null, words, outLen).ConfigureAwait(false);
                    results[t] = r;
                    // a failed turn still goes on with an empty answer, so every conversation sends all its turns
                    messages.Add((JsonNode)new JsonObject { ["role"] = "assistant", ["content"] = r.Text });
                    transcript.Append(r.Text).Append('\n');
                }
                return results;
            }

            var start = Stopwatch.GetTimestamp();
            var tasks = new List<Task<BenchRequestResult[]>>(dataset.Count);
            for (int i = 0; i < (options.IsMultiTurn ? options.NumPrompts : dataset.Count); i++)
            {
                // arrivals (of requests, or of conversations) follow the Poisson clock whatever the concurrency limit; a
                // request that arrives while the limit is reached waits here, on the client, and its latencies start
                // when it is sent (as vLLM)
                int index = i;
                tasks.Add(options.IsMultiTurn
                    ? Task.Run(() => Converse(index), ct)
                    : Task.Run(async () => new[] { await Send(dataset[index].Prompt, null, dataset[index].Words, dataset[index].OutputLen).ConfigureAwait(false) }, ct));
                if (!double.IsInfinity(options.RequestRate))
                {
                    double delay = -Math.Log(1 - arrivals.NextDouble()) / options.RequestRate;
                    await Task.Delay(TimeSpan.FromSeconds(delay), ct).ConfigureAwait(false);
                }
            }
            var results = (await Task.WhenAll(tasks).ConfigureAwait(false)).SelectMany(r => r).ToArray();
            double duration = Stopwatch.GetElapsedTime(start).TotalSeconds;
            return new BenchServeResult { Options = options, Model = model, Requests = results, Duration = duration, MaxConcurrencyObserved = peak };
        }
        finally
        {
            if (ownClient) client.Dispose();
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int cur;
        while (value > (cur = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, cur) != cur) { }
    }

    private static HttpRequestMessage Request(HttpMethod method, string url, string? apiKey, JsonObject? body = null)
    {
        var req = new HttpRequestMessage(method, url);
        // one connection per request: servers that close kept-alive connections after a few requests (cpp-httplib in
        // llama-server does after 5) would otherwise fail a POST sent on a connection the server is closing
        req.Headers.ConnectionClose = true;
        if (apiKey != null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        if (body != null) req.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        return req;
    }

    private static async Task<string> FirstModelAsync(HttpClient client, string baseUrl, string? apiKey, CancellationToken ct)
    {
        using var res = await client.SendAsync(Request(HttpMethod.Get, baseUrl + "/v1/models", apiKey), ct).ConfigureAwait(false);
        var text = await res.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        if (!res.IsSuccessStatusCode) throw new SharpInferException($"GET {baseUrl}/v1/models answered {(int)res.StatusCode}: {text}");
        var id = JsonNode.Parse(text)?["data"]?[0]?["id"]?.GetValue<string>();
        return id ?? throw new SharpInferException($"GET {baseUrl}/v1/models listed no model; pass --model");
    }

    /// <summary>Sends one streamed request and times its chunks: TTFT at the first chunk with text, ITL between
    /// text chunks, latency at the end of the stream; tokens from the usage chunk when the server sends one.</summary>
    public static async Task<BenchRequestResult> SendAsync(HttpClient client, string baseUrl, BenchServeOptions o, string model, string prompt,
                                                           int words, int outputLen, CancellationToken ct, JsonArray? messages = null)
    {
        var body = new JsonObject
        {
            ["model"] = model,
            ["max_tokens"] = outputLen,
            ["temperature"] = 0,
            ["ignore_eos"] = true,
            ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
        };
        if (o.IsChat) body["messages"] = messages ?? new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompt });
        else body["prompt"] = prompt;

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(o.Timeout);
        long start = Stopwatch.GetTimestamp(), last = 0;
        double ttft = 0;
        var itl = new List<double>();
        var text = new StringBuilder();
        int chunks = 0;
        int? promptTokens = null, completionTokens = null, cachedTokens = null;
        try
        {
            using var req = Request(HttpMethod.Post, baseUrl + o.Endpoint, o.ApiKey, body);
            using var res = await client.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            if (!res.IsSuccessStatusCode)
            {
                var err = await res.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
                return new BenchRequestResult { Error = $"HTTP {(int)res.StatusCode}: {Truncate(err)}", PromptWords = words };
            }
            using var stream = await res.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            bool sawDone = false;
            while (await reader.ReadLineAsync(timeout.Token).ConfigureAwait(false) is { } line)
            {
                if (!line.StartsWith("data:", StringComparison.Ordinal)) continue;
                var data = line[5..].Trim();
                if (data == "[DONE]") { sawDone = true; break; }
                long now = Stopwatch.GetTimestamp();
                var node = JsonNode.Parse(data);
                if (node?["error"] is { } error)
                    return new BenchRequestResult { Error = "stream error: " + Truncate(error.ToJsonString()), PromptWords = words };
                if (node?["usage"] is JsonObject usage)
                {
                    promptTokens = usage["prompt_tokens"]?.GetValue<int>();
                    completionTokens = usage["completion_tokens"]?.GetValue<int>();
                    if (usage["prompt_tokens_details"]?["cached_tokens"] is JsonValue ct1) cachedTokens = ct1.GetValue<int>();
                }
                if (node?["timings"]?["cache_n"] is JsonValue cacheN && cachedTokens == null) cachedTokens = cacheN.GetValue<int>();   // llama-server
                if (node?["choices"] is JsonArray { Count: > 0 } choices)
                {
                    var c0 = choices[0];
                    var piece = o.IsChat ? c0?["delta"]?["content"]?.GetValue<string>() : c0?["text"]?.GetValue<string>();
                    if (!string.IsNullOrEmpty(piece))
                    {
                        if (chunks == 0) ttft = Stopwatch.GetElapsedTime(start, now).TotalSeconds;
                        else itl.Add(Stopwatch.GetElapsedTime(last, now).TotalSeconds);
                        last = now;
                        chunks++;
                        text.Append(piece);
                    }
                }
            }
            double latency = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (!sawDone && completionTokens == null)
                return new BenchRequestResult { Error = "the stream ended without [DONE]", PromptWords = words };
            if (chunks == 0 && (completionTokens ?? 0) == 0)
                return new BenchRequestResult { Error = "no tokens were generated", PromptWords = words };
            return new BenchRequestResult
            {
                Success = true,
                PromptWords = words,
                PromptTokens = promptTokens,
                CachedTokens = cachedTokens,
                OutputTokens = completionTokens ?? chunks,
                Ttft = ttft,
                Latency = latency,
                Itl = itl,
                Text = text.ToString(),
            };
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException or InvalidOperationException
                                  || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            return new BenchRequestResult { Error = e is OperationCanceledException ? $"timed out after {o.Timeout.TotalSeconds:0} s" : e.Message, PromptWords = words };
        }
    }

    private static string Truncate(string s) => s.Length > 300 ? s[..300] + "..." : s;
}
