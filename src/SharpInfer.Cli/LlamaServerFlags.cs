using System.CommandLine;

namespace SharpInfer.Cli;

/// <summary>
/// llama-server's flags on <c>sharpinfer serve</c>, so scripts written for it start SharpInfer unchanged. Flags that
/// mean the same thing as one of ours are aliases on it (<c>-c</c>, <c>-np</c>, <c>-b</c>, <c>-a</c>, ...); these are
/// the rest: the ones with a meaning of their own here, and the hardware and build switches llama-server takes that
/// have no counterpart (accepted and ignored, so a script passing them still starts; docs/server.md lists them).
/// </summary>
internal sealed class LlamaServerFlags
{
    public readonly Option<int?> NPredict = new("--n-predict", "-n", "--predict") { Description = "Most tokens a native /completion generates when it sets no n_predict (-1 = until the context is full)" };
    public readonly Option<long?> Seed = new("--seed", "-s") { Description = "Seed of native /completion requests that set none (-1 = random)" };
    public readonly Option<float?> Temperature = new("--temp") { Description = "Default temperature of native /completion requests (llama-server's default 0.8)" };
    public readonly Option<string?> Tags = new("--tags") { Description = "Comma-separated model tags, listed by /v1/models (informational)" };
    public readonly Option<bool> NoUi = new("--no-ui", "--no-webui") { Description = "Do not serve the web page at / (and its files)" };
    public readonly Option<bool> ContextShift = new("--context-shift") { Description = "A native /completion whose n_predict runs past the context drops half of its tokens after n_keep and goes on (llama-server's context shift)" };
    public readonly Option<int?> SleepIdleSeconds = new("--sleep-idle-seconds") { Description = "Release the engine (KV cache, threads) after this many idle seconds; the next request wakes it (-1 = never)" };
    public readonly Option<bool> Slots = new("--slots") { Description = "Serve GET /slots (the default)" };
    public readonly Option<bool> NoSlots = new("--no-slots") { Description = "Answer GET /slots with 501" };
    public readonly Option<string?> ChatTemplate = new("--chat-template") { Description = "Chat template used instead of the model's: a llama.cpp built-in name (chatml, llama3, command-r, ...) or Jinja source text" };
    public readonly Option<string?> ChatTemplateKwargs = new("--chat-template-kwargs") { Description = "A JSON object of template variables every chat request gets unless it sets them, e.g. '{\"enable_thinking\": false}'" };
    public readonly Option<string?> Reasoning = new("--reasoning", "-rea") { Description = "Thinking in chat templates: on, off (enable_thinking=false) or auto (the template's default; llama-server passes enable_thinking=true) [default: auto]" };
    public readonly Option<bool> Verbose = new("--verbose", "-v") { Description = "Add llama-server's __verbose debug object (the prompt as tokenized, settings, timings) to every response that does not set \"verbose\": false" };
    public readonly Option<string?> ChatTemplateFile = new("--chat-template-file") { Description = "A file holding the Jinja chat template to use instead of the model's" };

    public readonly Option<string?> Tools = new("--tools")
    {
        Description = "DANGER: serve built-in tools on /tools (read_file, file_glob_search, grep_search, exec_shell_command, write_file, edit_file, " +
                      "get_datetime, get_info; 'all' or a comma-separated list): every client that reaches the server can read and write files and run " +
                      "shell commands as this user. Only on a trusted machine; with it, CORS defaults to localhost origins. Default: none",
    };
    public readonly Option<string?> McpServersConfig = new("--mcp-servers-config") { Description = "DANGER: a JSON file {\"mcpServers\": {NAME: {command, args, env, cwd, timeout_ms}}}: each server is run and its tools served on /tools as NAME_TOOL (clients can run them)" };
    public readonly Option<string?> McpServersJson = new("--mcp-servers-json") { Description = "DANGER: the --mcp-servers-config JSON inline" };
    public readonly Option<bool> UiMcpProxy = new("--ui-mcp-proxy", "--webui-mcp-proxy") { Description = "DANGER: serve /cors-proxy?url=URL, which forwards GET/POST to any URL this machine reaches (default: off, 403)" };
    public readonly Option<bool> Agent = new("--agent", "-ag") { Description = "DANGER: --tools all and --ui-mcp-proxy together" };

    /// <summary>Flags that take no value and change nothing here (templates are always Jinja, metrics always on, ...).</summary>
    private static readonly string[] IgnoredSwitches =
    [
        "--metrics", "--jinja", "--no-jinja", "--cont-batching", "--no-cont-batching", "--kv-unified", "--no-kv-unified", "--no-mmap", "--mlock",
        "--offline", "--log-disable", "--embedding", "--embeddings", "--reranking", "--rerank",
        "--no-warmup", "--no-context-shift", "--props", "--check-tensors", "--no-perf",
    ];

    /// <summary>Flags that take a value that changes nothing here (GPU offload, physical batch, host RAM cache, ...).</summary>
    private static readonly string[][] IgnoredValues =
    [
        ["--n-gpu-layers", "-ngl", "--gpu-layers"], ["--ubatch-size", "-ub"], ["--split-mode", "-sm"], ["--main-gpu", "-mg"],
        ["--tensor-split", "-ts"], ["--numa"], ["--threads-batch", "-tb"], ["--cache-ram", "-cram"], ["--slot-save-path"],
        ["--timeout", "-to"], ["--cache-reuse"], ["--device", "-dev"], ["--reasoning-format"], ["--log-file"],
    ];

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(NPredict);
        cmd.Options.Add(Seed);
        cmd.Options.Add(Temperature);
        cmd.Options.Add(Tags);
        cmd.Options.Add(NoUi);
        cmd.Options.Add(ContextShift);
        cmd.Options.Add(SleepIdleSeconds);
        cmd.Options.Add(Slots);
        cmd.Options.Add(NoSlots);
        cmd.Options.Add(ChatTemplate);
        cmd.Options.Add(ChatTemplateFile);
        cmd.Options.Add(Tools);
        cmd.Options.Add(McpServersConfig);
        cmd.Options.Add(McpServersJson);
        cmd.Options.Add(UiMcpProxy);
        cmd.Options.Add(Agent);
        cmd.Options.Add(new Option<bool>("--no-ui-mcp-proxy", "--no-webui-mcp-proxy") { Description = "Do not serve /cors-proxy (the default)", Hidden = true });
        cmd.Options.Add(ChatTemplateKwargs);
        cmd.Options.Add(Reasoning);
        cmd.Options.Add(Verbose);
        foreach (var name in IgnoredSwitches) cmd.Options.Add(new Option<bool>(name) { Description = "llama-server flag, accepted and ignored", Hidden = true });
        foreach (var names in IgnoredValues)
            cmd.Options.Add(new Option<string?>(names[0], names[1..]) { Description = "llama-server flag, accepted and ignored", Hidden = true });
        // llama-server's -fa takes on/off/auto (older builds: no value)
        cmd.Options.Add(new Option<string?>("--flash-attn", "-fa") { Description = "llama-server flag, accepted and ignored", Hidden = true, Arity = ArgumentArity.ZeroOrOne });
    }

    /// <summary>The chat template from <c>--chat-template</c> (a built-in name or Jinja source, resolved by
    /// <see cref="SharpInfer.Tokenization.ChatTemplate.ForModel"/>) or <c>--chat-template-file</c>; null = the model's.</summary>
    public string? TemplateSource(ParseResult r) =>
        r.GetValue(ChatTemplateFile) is { } path ? ChatTemplateOptions.ReadFile(path, "chat template file") : r.GetValue(ChatTemplate);

    /// <summary>The server's template variables: <c>--chat-template-kwargs</c>, then <c>enable_thinking</c> from
    /// <c>--reasoning on|off</c> (as llama-server: the flag wins over the kwargs).</summary>
    public Dictionary<string, System.Text.Json.Nodes.JsonNode?>? TemplateKwargs(ParseResult r)
    {
        var vars = new Dictionary<string, System.Text.Json.Nodes.JsonNode?>(StringComparer.Ordinal);
        if (r.GetValue(ChatTemplateKwargs) is { } text)
        {
            var node = ChatTemplateOptions.ParseValue(text);
            if (node is not System.Text.Json.Nodes.JsonObject obj)
                throw new InvalidRequestException($"--chat-template-kwargs must be a JSON object, got '{text}'", "chat_template_kwargs");
            foreach (var (k, v) in obj) vars[k] = v?.DeepClone();
        }
        switch (r.GetValue(Reasoning)?.ToLowerInvariant())
        {
            case null or "auto" or "-1": break;
            case "on" or "true" or "1" or "enabled": vars["enable_thinking"] = true; break;
            case "off" or "false" or "0" or "disabled": vars["enable_thinking"] = false; break;
            case var v: throw new InvalidRequestException($"--reasoning must be on, off or auto, got '{v}'", "reasoning");
        }
        return vars.Count > 0 ? vars : null;
    }

    /// <summary>The built-in tools <c>--tools</c> (or <c>--agent</c>) enables.</summary>
    public IReadOnlyList<string> ToolNames(ParseResult r)
    {
        var names = (r.GetValue(Tools) ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
        if (r.GetValue(Agent) && !names.Contains("all")) names.Add("all");
        return names;
    }

    public bool CorsProxy(ParseResult r) => r.GetValue(UiMcpProxy) || r.GetValue(Agent);

    /// <summary>The default seed: null for none or llama.cpp's -1 (random).</summary>
    public ulong? DefaultSeed(ParseResult r) => r.GetValue(Seed) is { } s && s >= 0 && s != 0xFFFFFFFF ? (ulong)s : null;
}
