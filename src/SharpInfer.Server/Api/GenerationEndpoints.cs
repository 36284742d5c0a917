using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SharpInfer.Engine;
using SharpInfer.Engine.Tools;

namespace SharpInfer.Server.Api;

/// <summary><c>POST /v1/chat/completions</c> and <c>POST /v1/completions</c>.</summary>
internal static class GenerationEndpoints
{
    /// <summary>OpenAI's default max_tokens for legacy completions.</summary>
    public const int CompletionsDefaultMaxTokens = 16;
    /// <summary>Most choices (prompts × n) one completions request may ask for.</summary>
    public const int MaxChoices = 1024;

    public static async Task ChatAsync(HttpContext ctx, ModelHost host, ILogger<ModelHost> log)
    {
        var engine = host.RequireEngine();
        var body = await ReadBodyAsync(ctx, host, engine).ConfigureAwait(false);
        CheckModel(body, host);
        PromptLimits.CheckChatMessages(body, engine.Model.Tokenizer, engine.MaxModelLen);
        var turn = ChatTurn.Prepare(body, host);
        await RunAsync(ctx, host, log, chat: true, turn.Params, turn.Requests, turn.PromptTokens, echo: null, turn.Meta, "messages", turn.NewParser)
            .ConfigureAwait(false);
    }

    public static async Task CompletionsAsync(HttpContext ctx, ModelHost host, ILogger<ModelHost> log)
    {
        var engine = host.RequireEngine();
        var body = await JsonBody.ReadAsync(ctx.Request, host.Options.MaxRequestBodyBytes, ctx.RequestAborted, MaxArrayLength(engine)).ConfigureAwait(false);
        CheckModel(body, host);
        PromptLimits.CheckCompletionPrompt(body, engine.Model.Tokenizer, engine.MaxModelLen);
        var p = GenerationParams.Parse(body, chat: false, engine.Model.Config.VocabSize, engine.Model.Tokenizer,
                                       llamaServer: host.Options.LlamaServerSampling ? host.Options : null);
        if (body.String("suffix") is { Length: > 0 })
            throw ApiException.BadRequest("'suffix' is not supported.", "suffix");
        if (p.Echo && p.Logprobs != null)
            throw ApiException.BadRequest("'echo' together with 'logprobs' is not supported (prompt log-probs are not computed).", "echo");
        var prompts = ReadPrompts(body, host);
        if ((long)prompts.Count * p.N > MaxChoices)
            throw ApiException.BadRequest($"{prompts.Count} prompts × n = {p.N} is more than {MaxChoices} choices in one request.", "prompt");
        var meta = new ResponseMeta("cmpl-" + Guid.NewGuid().ToString("N"), "text_completion", DateTimeOffset.UtcNow.ToUnixTimeSeconds(), host.ModelId);
        var requests = new List<EngineRequest>();
        string[]? echo = p.Echo ? new string[prompts.Count * p.N] : null;
        int promptTokens = 0;
        for (int i = 0; i < prompts.Count; i++)
        {
            requests.AddRange(p.EngineRequests(prompts[i].Tokens, engine.MaxModelLen, CompletionsDefaultMaxTokens, meta.Id, EngineTelemetry.TextCompletion, i * p.N));
            promptTokens += prompts[i].Tokens.Length;
            if (echo != null)
                for (int j = 0; j < p.N; j++) echo[i * p.N + j] = prompts[i].Text;
        }
        await RunAsync(ctx, host, log, chat: false, p, requests, promptTokens, echo, meta, "prompt").ConfigureAwait(false);
    }

    /// <summary>Reads a generation request's body with the size, array-length and decoding limits every generation
    /// endpoint applies.</summary>
    public static Task<JsonBody> ReadBodyAsync(HttpContext ctx, ModelHost host, LlmEngine engine) =>
        JsonBody.ReadAsync(ctx.Request, host.Options.MaxRequestBodyBytes, ctx.RequestAborted, MaxArrayLength(engine));

    /// <summary>No array of a generation request can be longer than this (each element is at least one token, or one choice).</summary>
    private static int MaxArrayLength(LlmEngine engine) => Math.Max(engine.MaxModelLen, MaxChoices);

    public static void CheckModel(JsonBody body, ModelHost host)
    {
        var model = body.String("model");
        if (host.Options.AnyModelName) return;
        if (model != null && !host.Options.Serves(model))
            throw new ApiException(StatusCodes.Status404NotFound, $"The model `{model}` does not exist. This server serves `{host.ModelId}`.",
                                   ApiErrorTypes.NotFound, "model", "model_not_found");
    }

    public static JsonArray ReadMessages(JsonBody body)
    {
        var messages = body.Array("messages") ?? throw ApiException.BadRequest("'messages' is required.", "messages");
        if (messages.Count == 0) throw ApiException.BadRequest("'messages' must contain at least one message.", "messages");
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i] is not JsonObject m)
                throw ApiException.BadRequest($"'messages[{i}]' must be an object, got {JsonBody.Describe(messages[i])}.", $"messages[{i}]");
            var mb = new JsonBody(m);
            if (mb["role"] is null) throw ApiException.BadRequest($"'messages[{i}].role' is required.", $"messages[{i}].role");
            if (mb["role"] is not JsonValue r || r.GetValueKind() != JsonValueKind.String)
                throw ApiException.BadRequest($"'messages[{i}].role' must be a string.", $"messages[{i}].role");
            switch (mb["content"])
            {
                case null:
                case JsonValue cv when cv.GetValueKind() == JsonValueKind.String:
                    break;
                case JsonArray parts:
                    foreach (var part in parts)
                    {
                        if (part is not JsonObject po || !(po["type"] is null || (po["type"] is JsonValue tv && tv.GetValueKind() == JsonValueKind.String && tv.GetValue<string>() == "text")))
                            throw ApiException.BadRequest($"'messages[{i}].content': only text content parts are supported.", $"messages[{i}].content");
                    }
                    break;
                default:
                    throw ApiException.BadRequest($"'messages[{i}].content' must be a string or a list of content parts.", $"messages[{i}].content");
            }
        }
        return messages;
    }

    /// <summary><c>prompt</c>: a string, a list of strings, a list of token ids, or a list of lists of token ids.</summary>
    private static List<(string Text, int[] Tokens)> ReadPrompts(JsonBody body, ModelHost host)
    {
        var node = body["prompt"] ?? throw ApiException.BadRequest("'prompt' is required.", "prompt");
        var prompts = host.Prompts!;
        var tok = host.Model!.Tokenizer;
        var list = new List<(string, int[])>();
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String)
        {
            var s = v.GetValue<string>();
            list.Add((s, PromptLimits.Tokenize(prompts, s, host.Engine!.MaxModelLen)));
            return list;
        }
        if (node is not JsonArray arr || arr.Count == 0)
            throw ApiException.BadRequest("'prompt' must be a string, a list of strings or a list of token ids.", "prompt");
        if (arr.All(x => x is JsonValue xv && xv.GetValueKind() == JsonValueKind.String))
        {
            foreach (var x in arr) list.Add((x!.GetValue<string>(), PromptLimits.Tokenize(prompts, x.GetValue<string>(), host.Engine!.MaxModelLen)));
            return list;
        }
        if (arr.All(x => x is JsonValue xv && xv.GetValueKind() == JsonValueKind.Number))
        {
            var ids = TokenIds(arr, "prompt", host.Model!.Config.VocabSize);
            list.Add((tok.Decode(ids, renderSpecial: true), ids));
            return list;
        }
        if (arr.All(x => x is JsonArray))
        {
            foreach (var x in arr)
            {
                var ids = TokenIds((JsonArray)x!, "prompt", host.Model!.Config.VocabSize);
                list.Add((tok.Decode(ids, renderSpecial: true), ids));
            }
            return list;
        }
        throw ApiException.BadRequest("'prompt' must be a string, a list of strings, a list of token ids or a list of lists of token ids.", "prompt");
    }

    /// <summary>A JSON list of token ids, each checked against the vocabulary.</summary>
    public static int[] TokenIds(JsonArray arr, string field, int vocabSize)
    {
        var ids = new int[arr.Count];
        for (int i = 0; i < ids.Length; i++)
        {
            long id = arr[i] is null ? -1 : JsonBody.AsLong(arr[i]!, field);
            if (id < 0 || id >= vocabSize)
                throw ApiException.BadRequest($"'{field}' contains token id {id}, outside the vocabulary (0..{vocabSize - 1}).", field);
            ids[i] = (int)id;
        }
        return ids;
    }

    private static async Task RunAsync(HttpContext ctx, ModelHost host, ILogger log, bool chat, GenerationParams p, List<EngineRequest> requests,
                                       int promptTokens, string[]? echo, ResponseMeta meta, string promptParam,
                                       Func<ChatOutputParser>? newParser = null)
    {
        var engine = host.Engine!;
        var tokenizer = engine.Model.Tokenizer;
        var aborted = ctx.RequestAborted;
        ChoiceSet set;
        try
        {
            set = ChoiceSet.Start(engine, requests, aborted);
        }
        catch (Exception e) when (e is not ApiException)
        {
            throw ApiErrors.Map(e, promptParam);
        }
        await using var _ = set.ConfigureAwait(false);
        var states = new ChoiceState[requests.Count];
        for (int i = 0; i < states.Length; i++)
        {
            states[i] = new ChoiceState { Parser = newParser?.Invoke() };
            if (echo != null)
            {
                states[i].Text.Append(echo[i]);
                states[i].TextOffset = echo[i].Length;
            }
        }

        if (!p.Stream)
        {
            try
            {
                await foreach (var (i, o) in set.ReadAllAsync(aborted).ConfigureAwait(false)) Accumulate(states[i], o);
            }
            catch (OperationCanceledException) when (aborted.IsCancellationRequested)
            {
                return;   // the client is gone; its requests were aborted
            }
            if (states.FirstOrDefault(s => s.Finish == FinishReason.Abort) is { } abortedChoice)
                throw AbortError(host, states.FirstOrDefault(s => s.Error != null) ?? abortedChoice);
            await JsonResponse.WriteAsync(ctx, w =>
            {
                w.WriteStartObject();
                meta.WriteHeader(w);
                w.WriteStartArray("choices");
                for (int i = 0; i < states.Length; i++)
                {
                    var s = states[i];
                    w.WriteStartObject();
                    w.WriteNumber("index", i);
                    ChatOutputParser.Reply? reply = null;
                    if (s.Parser != null)
                    {
                        var events = new List<ChatOutputEvent>();
                        s.Parser.Push(s.Text.ToString(), events);
                        s.Parser.Finish(events);
                        reply = ChatOutputParser.Reply.From(events);
                        ChatReplyJson.WriteMessage(w, reply);
                    }
                    else if (chat)
                    {
                        w.WriteStartObject("message");
                        w.WriteString("role", "assistant");
                        w.WriteString("content", s.Text.ToString());
                        w.WriteNull("refusal");
                        w.WriteEndObject();
                    }
                    else w.WriteString("text", s.Text.ToString());
                    if (p.Logprobs == null) w.WriteNull("logprobs");
                    else if (chat) ResponseJson.WriteChatLogprobs(w, tokenizer, s.LogProbs);
                    else
                    {
                        int offset = 0;
                        ResponseJson.WriteCompletionLogprobs(w, tokenizer, s.LogProbs, ref offset);
                    }
                    if (reply != null && s.Finish is { } f) w.WriteString("finish_reason", ChatReplyJson.FinishReason(f, reply.Calls.Count > 0));
                    else ResponseJson.WriteFinish(w, s.Finish);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                ResponseJson.WriteUsage(w, promptTokens, states.Sum(s => s.CompletionTokens), CachedTokens(states, requests));
                TimingsJson.Write(w, states.Select(s => s.Timings), engine.Options.Speculative != null);
                if (p.Verbose ?? host.Options.Verbose)
                    VerboseJson.Write(w, tokenizer, host.ModelId, requests[0].PromptTokens, states[0].Text.ToString(), states[0].CompletionTokens,
                                      states[0].Finish);
                w.WriteEndObject();
            }).ConfigureAwait(false);
            return;
        }

        var sse = new SseWriter(ctx);
        try
        {
            await ctx.Response.StartAsync(aborted).ConfigureAwait(false);
            for (int i = 0; i < states.Length; i++)
            {
                if (chat)
                    await sse.WriteAsync(w => Chunk(w, meta, p, i, role: true, "", null, null, tokenizer), aborted).ConfigureAwait(false);
                else if (echo != null)
                    await sse.WriteAsync(w => Chunk(w, meta, p, i, role: false, echo[i], null, null, tokenizer), aborted).ConfigureAwait(false);
            }
            await foreach (var (i, o) in set.ReadAllAsync(aborted).ConfigureAwait(false))
            {
                if (o.Progress is { } progress)
                {
                    await sse.WriteAsync(w => ProgressChunk(w, meta, p, i, progress), aborted).ConfigureAwait(false);
                    continue;
                }
                Accumulate(states[i], o);
                bool hasLogprobs = p.Logprobs != null && o.LogProbs is { Count: > 0 };
                if (states[i].Parser is { } parser)
                {
                    await StreamParsedAsync(sse, meta, p, i, states[i], parser, o, hasLogprobs, tokenizer, aborted).ConfigureAwait(false);
                    continue;
                }
                if (o.Text.Length == 0 && !hasLogprobs && !o.IsFinal) continue;
                var s = states[i];
                var logprobs = hasLogprobs ? o.LogProbs : null;
                bool splitFinish = chat && o.IsFinal && o.Text.Length > 0;
                // a chat choice's last piece, then its finish reason in a chunk with an empty delta, as OpenAI and
                // llama-server send it (and as parsed replies above)
                if (splitFinish)
                    await sse.WriteAsync(w => Chunk(w, meta, p, i, role: false, o.Text, logprobs, null, tokenizer, s), aborted).ConfigureAwait(false);
                string text = splitFinish ? "" : o.Text;
                var lastLogprobs = splitFinish ? null : logprobs;
                // the timings go on the stream's last chunk, as llama-server's: the usage chunk when there is one
                await sse.WriteAsync(w => Chunk(w, meta, p, i, role: false, text, lastLogprobs, o.Finish, tokenizer, s,
                                                 o.Timings is { } t && !p.IncludeUsage ? (t, engine.Options.Speculative != null) : null), aborted)
                         .ConfigureAwait(false);
            }
            if (p.IncludeUsage)
            {
                await sse.WriteAsync(w =>
                {
                    w.WriteStartObject();
                    meta.WriteHeader(w);
                    w.WriteStartArray("choices");
                    w.WriteEndArray();
                    ResponseJson.WriteUsage(w, promptTokens, states.Sum(s => s.CompletionTokens), CachedTokens(states, requests));
                    TimingsJson.Write(w, states.Select(s => s.Timings), engine.Options.Speculative != null);
                    w.WriteEndObject();
                }, aborted).ConfigureAwait(false);
            }
            await sse.WriteDoneAsync(aborted).ConfigureAwait(false);
        }
        catch (Exception e) when (aborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // the client disconnected: disposing the set aborts its requests
        }
        catch (Exception e) when (!aborted.IsCancellationRequested)
        {
            var error = ApiErrors.Map(e, promptParam);
            log.LogError(e, "streaming request {Id} failed", meta.Id);
            try
            {
                await sse.WriteErrorAsync(error, aborted).ConfigureAwait(false);
                await sse.WriteDoneAsync(aborted).ConfigureAwait(false);
            }
            catch (Exception) { /* nothing more can be sent */ }
        }
    }

    /// <summary>The error for a choice the engine aborted on its own: 500 with its reason, or 503 while shutting down.</summary>
    public static ApiException AbortError(ModelHost host, ChoiceState s) =>
        host.State == ServerState.Ready
            ? new ApiException(StatusCodes.Status500InternalServerError,
                "The engine aborted the request before it finished" + (s.Error is { } why ? $": {why}" : "."), ApiErrorTypes.Server)
            : ApiErrors.ShuttingDown();

    /// <summary>Streams one output of a parsed reply: a chunk per reasoning/content piece and per tool-call part, then
    /// the log-probs and the finish reason ("tool_calls" when calls were made) in a chunk with an empty delta.</summary>
    private static async Task StreamParsedAsync(SseWriter sse, ResponseMeta meta, GenerationParams p, int index, ChoiceState s,
                                                ChatOutputParser parser, RequestOutput o, bool hasLogprobs,
                                                SharpInfer.Tokenization.Tokenizer tokenizer, CancellationToken aborted)
    {
        var events = s.Events;
        events.Clear();
        parser.Push(o.Text, events);
        if (o.IsFinal) parser.Finish(events);
        foreach (var e in events)
        {
            foreach (var delta in ChatReplyJson.Deltas(e, s.ToolCalls))
                await sse.WriteAsync(w => DeltaChunk(w, meta, p, index, delta, null, null, tokenizer), aborted).ConfigureAwait(false);
            if (e.Kind == ChatOutputKind.ToolCall) s.ToolCalls++;
        }
        if (hasLogprobs || o.IsFinal)
        {
            string? finish = o.Finish is { } f ? ChatReplyJson.FinishReason(f, s.ToolCalls > 0) : null;
            await sse.WriteAsync(w => DeltaChunk(w, meta, p, index, null, hasLogprobs ? o.LogProbs : null, finish, tokenizer), aborted)
                     .ConfigureAwait(false);
        }
    }

    /// <summary>llama-server's progress chunk (<c>return_progress</c>): an empty piece (chat: the assistant role with
    /// null content, as llama-server sends it) with <c>prompt_progress</c>.</summary>
    private static void ProgressChunk(Utf8JsonWriter w, ResponseMeta meta, GenerationParams p, int index, PromptProgress progress)
    {
        w.WriteStartObject();
        meta.WriteHeader(w);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", index);
        if (meta.Object == "chat.completion.chunk")
        {
            w.WriteStartObject("delta");
            w.WriteString("role", "assistant");
            w.WriteNull("content");
            w.WriteEndObject();
        }
        else w.WriteString("text", "");
        w.WriteNull("logprobs");
        w.WriteNull("finish_reason");
        w.WriteEndObject();
        w.WriteEndArray();
        if (p.IncludeUsage) w.WriteNull("usage");
        WriteProgress(w, progress);
        w.WriteEndObject();
    }

    /// <summary><c>"prompt_progress": {"total", "cache", "processed", "time_ms"}</c>, llama-server's.</summary>
    public static void WriteProgress(Utf8JsonWriter w, PromptProgress progress)
    {
        w.WriteStartObject("prompt_progress");
        w.WriteNumber("total", progress.Total);
        w.WriteNumber("cache", progress.Cached);
        w.WriteNumber("processed", progress.Processed);
        w.WriteNumber("time_ms", Math.Round(progress.Milliseconds, 3));
        w.WriteEndObject();
    }

    private static void DeltaChunk(Utf8JsonWriter w, ResponseMeta meta, GenerationParams p, int index, Action<Utf8JsonWriter>? delta,
                                   IReadOnlyList<TokenLogProbs>? logprobs, string? finish, SharpInfer.Tokenization.Tokenizer tokenizer)
    {
        w.WriteStartObject();
        meta.WriteHeader(w);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", index);
        w.WriteStartObject("delta");
        delta?.Invoke(w);
        w.WriteEndObject();
        if (logprobs != null) ResponseJson.WriteChatLogprobs(w, tokenizer, logprobs);
        else w.WriteNull("logprobs");
        if (finish != null) w.WriteString("finish_reason", finish);
        else w.WriteNull("finish_reason");
        w.WriteEndObject();
        w.WriteEndArray();
        if (p.IncludeUsage) w.WriteNull("usage");
        w.WriteEndObject();
    }

    public static void Accumulate(ChoiceState s, RequestOutput o)
    {
        s.Text.Append(o.Text);
        if (o.LogProbs != null) s.LogProbs.AddRange(o.LogProbs);
        s.CompletionTokens = Math.Max(s.CompletionTokens, o.CompletionTokens);
        if (o.Finish != null) s.Finish = o.Finish;
        if (o.Error != null) s.Error = o.Error;
        if (o.Timings != null) s.Timings = o.Timings;
        s.CachedTokens = Math.Max(s.CachedTokens, o.CachedPromptTokens);
    }

    /// <summary>Cached prompt tokens for the usage object: the prompt is counted once per distinct prompt (like
    /// prompt_tokens), so of the n choices of one prompt the first one's hit counts.</summary>
    private static int CachedTokens(ChoiceState[] states, List<EngineRequest> requests)
    {
        int sum = 0;
        for (int i = 0; i < states.Length; i++)
            if (i == 0 || !ReferenceEquals(requests[i].PromptTokens, requests[i - 1].PromptTokens)) sum += states[i].CachedTokens;
        return sum;
    }

    /// <summary>One streamed chunk of choice <paramref name="index"/>: chat's <c>delta</c> or completions' <c>text</c>.</summary>
    private static void Chunk(Utf8JsonWriter w, ResponseMeta meta, GenerationParams p, int index, bool role, string text,
                              IReadOnlyList<TokenLogProbs>? logprobs, FinishReason? finish, SharpInfer.Tokenization.Tokenizer tokenizer,
                              ChoiceState? state = null, (RequestTimings Timings, bool Speculative)? final = null)
    {
        bool chat = meta.Object == "chat.completion.chunk";
        w.WriteStartObject();
        meta.WriteHeader(w);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", index);
        if (chat)
        {
            w.WriteStartObject("delta");
            if (role) w.WriteString("role", "assistant");
            // the role chunk carries no text yet: content null, as llama-server sends it (its clients treat "" as
            // an empty piece of content); later chunks carry content only when there is some
            if (text.Length > 0) w.WriteString("content", text);
            else if (role) w.WriteNull("content");
            w.WriteEndObject();
            if (logprobs != null) ResponseJson.WriteChatLogprobs(w, tokenizer, logprobs);
            else w.WriteNull("logprobs");
        }
        else
        {
            w.WriteString("text", text);
            if (logprobs != null && state != null)
            {
                // offsets continue from the text before this chunk
                int offset = state.TextOffset;
                ResponseJson.WriteCompletionLogprobs(w, tokenizer, logprobs, ref offset);
                state.TextOffset = offset;
            }
            else w.WriteNull("logprobs");
        }
        ResponseJson.WriteFinish(w, finish);
        w.WriteEndObject();
        w.WriteEndArray();
        if (p.IncludeUsage) w.WriteNull("usage");
        if (final is { } f) TimingsJson.Write(w, [f.Timings], f.Speculative);   // a choice's last chunk, as llama.cpp's
        w.WriteEndObject();
    }
}
