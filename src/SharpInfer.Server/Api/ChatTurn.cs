using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using SharpInfer.Engine;
using SharpInfer.Engine.Tools;

namespace SharpInfer.Server.Api;

/// <summary>
/// A chat request made ready for the engine: the reply plan (tools, reasoning, template variables), the rendered and
/// tokenized prompt, the sampling parameters with any grammar, and one engine request per choice. Chat completions
/// and the APIs translated onto it (<c>/v1/responses</c>, <c>/v1/messages</c>) share this one request path.
/// </summary>
internal sealed class ChatTurn
{
    public required GenerationParams Params { get; init; }
    public required List<EngineRequest> Requests { get; init; }
    public required int PromptTokens { get; init; }
    public required ResponseMeta Meta { get; init; }
    /// <summary>A parser for one reply when it holds tool calls or reasoning; null when the text is plain content.</summary>
    public Func<ChatOutputParser>? NewParser { get; init; }

    /// <summary>Reads a chat-completions body (already size-checked) into a turn; 400 naming the field for anything
    /// wrong. <paramref name="idPrefix"/> starts the response id. <paramref name="serverSamplingDefaults"/>: omitted
    /// sampling fields take llama-server's defaults when the server runs with <c>--sampling-defaults llama-server</c>
    /// (the OpenAI, Anthropic and Responses routes, as llama-server's; Ollama's route fills in Ollama's own).</summary>
    public static ChatTurn Prepare(JsonBody body, ModelHost host, string idPrefix = "chatcmpl-", bool serverSamplingDefaults = true)
    {
        var engine = host.RequireEngine();
        var messages = GenerationEndpoints.ReadMessages(body);
        var tools = ToolSet.Read(body.Array("tools"), body["tool_choice"], body.Bool("parallel_tool_calls"));
        var variables = host.Prompts!.RequestVariables(body.Object("chat_template_kwargs"), body.String("reasoning_effort"));
        bool addGenerationPrompt = body.Bool("add_generation_prompt") ?? true;
        (messages, string? continuation) = ChatPrefill.Split(messages, body, ref addGenerationPrompt);
        var plan = ChatReplyPlan.Create(host.Prompts!.Formatter.Template.Source, messages, tools, body.String("reasoning_format"),
                                        variables, StructuredOutput.IsRequested(body));

        var (text, tokens) = host.Prompts!.Build(plan.Messages, body.Array("tools"), addGenerationPrompt, plan.Variables, continuation);
        bool opensThinking = plan.TemplateThinks && ChatReplyPlan.PromptOpensThinking(text);
        var tokenizer = engine.Model.Tokenizer;
        int vocab = engine.Model.Config.VocabSize;
        // the format's markers (gpt-oss's harmony headers) reach the reply's text, and grammars can match them
        var preserved = plan.PreservedTokenIds(tokenizer.Vocabulary);
        var p = GenerationParams.Parse(body, chat: true, vocab, tokenizer, g => plan.WrapGrammar(g, opensThinking), preserved,
                                       serverSamplingDefaults && host.Options.LlamaServerSampling ? host.Options : null);
        if (plan.ToolGrammar(opensThinking) is { } toolGrammar)
            p = p with { Sampling = p.Sampling with { LogitsProcessor = StructuredOutput.Compile(() => toolGrammar, "tools", tokenizer, vocab, preserved) } };
        var meta = new ResponseMeta(idPrefix + Guid.NewGuid().ToString("N"), p.Stream ? "chat.completion.chunk" : "chat.completion",
                                    DateTimeOffset.UtcNow.ToUnixTimeSeconds(), host.ModelId);
        bool parse = plan.ParsesToolCalls || plan.ParseReasoning;
        return new ChatTurn
        {
            Params = p,
            Requests = p.EngineRequests(tokens, engine.MaxModelLen, defaultMaxTokens: null, meta.Id, EngineTelemetry.Chat).ConvertAll(r => r with { PreservedTokens = preserved }),
            PromptTokens = tokens.Length,
            Meta = meta,
            NewParser = parse ? () => plan.NewParser(opensThinking) : null,
        };
    }

    private static string? Role(JsonNode? message) =>
        message is JsonObject o && o["role"] is JsonValue v && v.TryGetValue<string>(out var role) ? role : null;

    /// <summary>While <see cref="RunSingleAsync"/> runs: the prompt tokens the prefix cache served and the tokens
    /// generated so far (for timings sent with each piece).</summary>
    public (int Cached, int Generated) Progress { get; private set; }

    /// <summary>How a single-choice turn ended.</summary>
    public sealed record Result(FinishReason Finish, int CompletionTokens, int CachedTokens, int[] TokenIds, RequestTimings? Timings = null);

    /// <summary>Runs a single-choice turn, handing each parsed piece of the reply (content, reasoning, whole tool
    /// calls) to <paramref name="onEvent"/> as it is released. The client going away cancels <paramref name="aborted"/>
    /// (an <see cref="OperationCanceledException"/> here) and disposing the choice set aborts the engine request.
    /// <paramref name="keepTokens"/>: collect the generated token ids for the result. <paramref name="onStarted"/> runs
    /// once the engine accepted the request (a stream's headers go out then, so a refusal is still a plain 4xx/5xx).
    /// <paramref name="onProgress"/> gets the prompt's progress when the request asked for it (<c>return_progress</c>).</summary>
    public async Task<Result> RunSingleAsync(ModelHost host, Func<ChatOutputEvent, ValueTask> onEvent, string promptParam,
                                             CancellationToken aborted, bool keepTokens = false, Func<ValueTask>? onStarted = null,
                                             Func<PromptProgress, ValueTask>? onProgress = null)
    {
        if (Requests.Count != 1) throw new InvalidOperationException("a single-choice turn has one request");
        ChoiceSet set;
        try
        {
            set = ChoiceSet.Start(host.Engine!, Requests, aborted);
        }
        catch (Exception e) when (e is not ApiException)
        {
            throw ApiErrors.Map(e, promptParam);
        }
        await using var _ = set.ConfigureAwait(false);
        if (onStarted != null) await onStarted().ConfigureAwait(false);
        var state = new ChoiceState { Parser = NewParser?.Invoke() ?? new ChatOutputParser(null, reasoning: false) };
        var tokens = keepTokens ? new List<int>() : null;
        await foreach (var (_, o) in set.ReadAllAsync(aborted).ConfigureAwait(false))
        {
            if (o.Progress is { } progress)
            {
                if (onProgress != null) await onProgress(progress).ConfigureAwait(false);
                continue;
            }
            GenerationEndpoints.Accumulate(state, o);
            Progress = (state.CachedTokens, state.CompletionTokens);
            tokens?.AddRange(o.TokenIds);
            state.Events.Clear();
            state.Parser.Push(o.Text, state.Events);
            if (o.IsFinal) state.Parser.Finish(state.Events);
            foreach (var e in state.Events) await onEvent(e).ConfigureAwait(false);
        }
        if (state.Finish is not { } finish || finish == FinishReason.Abort) throw GenerationEndpoints.AbortError(host, state);
        return new Result(finish, state.CompletionTokens, state.CachedTokens, tokens?.ToArray() ?? [], state.Timings);
    }
}
