using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using SharpInfer.Engine;

namespace SharpInfer.Server.Api;

/// <summary>
/// Ollama's API on the one engine: <c>POST /api/chat</c> and <c>POST /api/generate</c> (translated onto the chat path
/// by <see cref="OllamaRequest"/>, answered by <see cref="OllamaOutput"/>), <c>/api/embed</c> and <c>/api/embeddings</c>
/// (<see cref="OllamaEmbed"/>), <c>/api/tags</c>, <c>/api/show</c>, <c>/api/ps</c>, <c>/api/version</c>
/// (<see cref="OllamaModelInfo"/>); <c>GET</c>/<c>HEAD /</c> on the Ollama port (<see cref="WebUiEndpoints"/>). Errors take Ollama's shape (<see cref="OllamaErrors"/>).
/// </summary>
internal static class OllamaEndpoints
{
    public static void Map(IEndpointRouteBuilder app, ModelHost host, ILogger<ModelHost> log)
    {
        app.MapPost("/api/chat", ctx => ChatAsync(ctx, host, log, generate: false));
        app.MapPost("/api/generate", ctx => ChatAsync(ctx, host, log, generate: true));
        app.MapPost("/api/embed", ctx => OllamaEmbed.EmbedAsync(ctx, host));
        app.MapPost("/api/embeddings", ctx => OllamaEmbed.LegacyAsync(ctx, host));
        app.MapGet("/api/tags", ctx => OllamaModelInfo.TagsAsync(ctx, host));
        app.MapPost("/api/show", ctx => OllamaModelInfo.ShowAsync(ctx, host));
        app.MapGet("/api/ps", ctx => OllamaModelInfo.PsAsync(ctx, host));
        app.MapGet("/api/version", ctx => OllamaModelInfo.VersionAsync(ctx));
        // Ollama's liveness check at GET / is answered by WebUiEndpoints on the --ollama-port listener
    }

    /// <summary>Whether <paramref name="name"/> names the served model: its id, with or without Ollama's default tag.</summary>
    public static bool IsServedModel(string name, ModelHost host) =>
        name == host.ModelId || name == host.ModelId + ":latest";

    /// <summary>The request's model (<c>model</c>, or the older <c>name</c>): 400 when missing, 404 when not served.</summary>
    public static string CheckModel(JsonBody body, ModelHost host)
    {
        string field = body.Has("model") || !body.Has("name") ? "model" : "name";
        string name = body.String(field) ?? throw ApiException.BadRequest("model is required", "model");
        if (name.Length == 0) throw ApiException.BadRequest("model is required", "model");
        if (!IsServedModel(name, host)) throw OllamaErrors.ModelNotFound(name);
        return name;
    }

    private static async Task ChatAsync(HttpContext ctx, ModelHost host, ILogger<ModelHost> log, bool generate)
    {
        long start = Stopwatch.GetTimestamp();
        var engine = host.RequireEngine();
        var body = await GenerationEndpoints.ReadBodyAsync(ctx, host, engine).ConfigureAwait(false);
        string model = CheckModel(body, host);
        var request = generate ? OllamaRequest.ReadGenerate(body) : OllamaRequest.ReadChat(body);
        if (request.LoadOnly is { } reason)
        {
            await OllamaOutput.WriteLoadAsync(ctx, generate, model, reason).ConfigureAwait(false);
            return;
        }
        string promptParam = generate ? "prompt" : "messages";
        var turn = Named(() => TranslatedRequest.Renaming(() => Prepare(request, host, engine), promptParam, OllamaRequest.Names));
        var prompt = turn.Requests[0].PromptTokens;
        var output = new OllamaOutput(request, generate, model, start, ctx);
        var aborted = ctx.RequestAborted;
        try
        {
            // generate returns the token ids as "context"; chat keeps them only to find nothing (cheap either way)
            var result = await turn.RunSingleAsync(host, output.OnEventAsync, promptParam, aborted, keepTokens: generate,
                                                   onStarted: output.StartedAsync).ConfigureAwait(false);
            await output.FinishAsync(result, prompt).ConfigureAwait(false);
        }
        catch (Exception e) when (aborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // the client disconnected: disposing the choice set aborted the engine request
        }
        catch (Exception e) when (!aborted.IsCancellationRequested && !ctx.Response.HasStarted)
        {
            throw ApiErrors.Map(e, promptParam);   // refused before the stream started: a plain error response
        }
        catch (Exception e) when (!aborted.IsCancellationRequested)
        {
            log.LogError(e, "streaming Ollama request {Id} failed", turn.Meta.Id);
            try
            {
                await output.ErrorAsync(ApiErrors.Map(e, promptParam)).ConfigureAwait(false);
            }
            catch (Exception) { /* nothing more can be sent */ }
        }
    }

    /// <summary>Ollama's error body has no <c>param</c>: a message that does not name its field gets the field first.</summary>
    private static T Named<T>(Func<T> prepare)
    {
        try
        {
            return prepare();
        }
        catch (ApiException a) when (a.Param is { } p && a.Code != "context_length_exceeded" && !a.Message.Contains(p, StringComparison.Ordinal))
        {
            throw new ApiException(a.Status, $"invalid {p}: {a.Message}", a.Type, p, a.Code) { RetryAfterSeconds = a.RetryAfterSeconds };
        }
    }

    /// <summary>The turn to run: the chat path's (or, for a raw prompt, the prompt tokenized as it is), with
    /// generate's <c>context</c> put before the prompt and <c>num_ctx</c> applied.</summary>
    private static ChatTurn Prepare(OllamaRequest request, ModelHost host, LlmEngine engine)
    {
        var tokenizer = engine.Model.Tokenizer;
        int vocab = engine.Model.Config.VocabSize;
        int limit = engine.MaxModelLen;
        if (request.NumCtx is { } numCtx)
        {
            if (numCtx > engine.MaxModelLen)
                throw ApiException.BadRequest($"'options.num_ctx' {numCtx} is more than this server's context of {engine.MaxModelLen} tokens (set with --max-model-len).", "num_ctx");
            limit = numCtx;
        }
        ChatTurn turn;
        if (request.RawPrompt is { } raw)
        {
            PromptLimits.CheckCompletionPrompt(new JsonBody(new System.Text.Json.Nodes.JsonObject { ["prompt"] = raw }), tokenizer, engine.MaxModelLen);
            var p = GenerationParams.Parse(request.Chat, chat: true, vocab, tokenizer);
            var tokens = PromptLimits.Tokenize(host.Prompts!, raw, engine.MaxModelLen);
            var meta = new ResponseMeta("ollama-" + Guid.NewGuid().ToString("N"), "chat.completion", DateTimeOffset.UtcNow.ToUnixTimeSeconds(), host.ModelId);
            turn = new ChatTurn { Params = p, Requests = p.EngineRequests(tokens, engine.MaxModelLen, null, meta.Id, EngineTelemetry.TextCompletion), PromptTokens = tokens.Length, Meta = meta };
        }
        else
        {
            PromptLimits.CheckChatMessages(request.Chat, tokenizer, engine.MaxModelLen);
            turn = ChatTurn.Prepare(request.Chat, host, "ollama-", serverSamplingDefaults: false);
        }
        var prompt = turn.Requests[0].PromptTokens;
        if (request.Context is { } context)
        {
            foreach (var id in context)
                if (id < 0 || id >= vocab) throw ApiException.BadRequest($"'context' contains token id {id}, outside the vocabulary (0..{vocab - 1}).", "context");
            // the new prompt continues the earlier exchange: its own BOS would sit mid-sequence
            int skip = prompt.Length > 0 && context.Length > 0 && prompt[0] == tokenizer.Vocabulary.BosId ? 1 : 0;
            prompt = [.. context, .. prompt.AsSpan(skip)];
        }
        if (prompt.Length >= limit)
            throw ApiException.BadRequest($"This request's context is {limit} tokens, but the prompt has {prompt.Length} tokens. Please shorten the prompt.",
                                          "messages", "context_length_exceeded");
        int room = limit - prompt.Length;
        if (turn.Params.MaxTokens is { } max && max > room)
            throw ApiException.BadRequest($"This request's context is {limit} tokens, but the prompt has {prompt.Length} tokens and num_predict asks for {max} more.",
                                          "max_tokens", "context_length_exceeded");
        var requests = turn.Requests.Select(r => r with
        {
            PromptTokens = prompt,
            Sampling = r.Sampling with { MaxTokens = Math.Min(r.Sampling.MaxTokens, room) },
        }).ToList();
        return new ChatTurn { Params = turn.Params, Requests = requests, PromptTokens = prompt.Length, Meta = turn.Meta, NewParser = turn.NewParser };
    }
}
