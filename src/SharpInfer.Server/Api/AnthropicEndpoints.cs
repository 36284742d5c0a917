using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace SharpInfer.Server.Api;

/// <summary>
/// Anthropic's Messages API: <c>POST /v1/messages</c> and <c>POST /v1/messages/count_tokens</c>, translated onto the
/// chat-completions path by <see cref="AnthropicRequest"/>, the reply shaped by <see cref="AnthropicOutput"/>.
/// Errors take Anthropic's shape (<see cref="AnthropicErrors"/>).
/// </summary>
internal static class AnthropicEndpoints
{
    public static async Task MessagesAsync(HttpContext ctx, ModelHost host, ILogger<ModelHost> log)
    {
        var engine = host.RequireEngine();
        var body = await GenerationEndpoints.ReadBodyAsync(ctx, host, engine).ConfigureAwait(false);
        GenerationEndpoints.CheckModel(body, host);
        var request = AnthropicRequest.Read(body, countOnly: false);
        var turn = TranslatedRequest.Renaming(() => ChatTurn.Prepare(request.Chat, host, "msg_"), "messages", AnthropicRequest.Names);
        var aborted = ctx.RequestAborted;
        var sse = request.Stream ? new SseWriter(ctx) : null;
        var output = new AnthropicOutput(request, turn.Meta.Id, host.ModelId, turn.PromptTokens, sse, aborted);
        bool keepTokens = request.StopSequences.Count > 0;
        var tokenizer = engine.Model.Tokenizer;
        if (sse is null)
        {
            ChatTurn.Result result;
            try
            {
                result = await turn.RunSingleAsync(host, output.OnEventAsync, "messages", aborted, keepTokens).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (aborted.IsCancellationRequested)
            {
                return;   // the client is gone; the request was aborted
            }
            await output.FinishAsync(result, tokenizer).ConfigureAwait(false);
            await JsonResponse.WriteAsync(ctx, output.WriteMessage).ConfigureAwait(false);
            return;
        }
        try
        {
            var result = await turn.RunSingleAsync(host, output.OnEventAsync, "messages", aborted, keepTokens, onStarted: async () =>
            {
                await ctx.Response.StartAsync(aborted).ConfigureAwait(false);
                await output.StartAsync().ConfigureAwait(false);
            }).ConfigureAwait(false);
            await output.FinishAsync(result, tokenizer).ConfigureAwait(false);
        }
        catch (Exception e) when (aborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // the client disconnected: disposing the choice set aborted the engine request
        }
        catch (Exception e) when (!aborted.IsCancellationRequested && !ctx.Response.HasStarted)
        {
            throw ApiErrors.Map(e, "messages");   // refused before the stream started: a plain error response
        }
        catch (Exception e) when (!aborted.IsCancellationRequested)
        {
            log.LogError(e, "streaming message {Id} failed", turn.Meta.Id);
            try
            {
                await output.ErrorAsync(ApiErrors.Map(e, "messages")).ConfigureAwait(false);
            }
            catch (Exception) { /* nothing more can be sent */ }
        }
    }

    /// <summary><c>{"input_tokens": n}</c>: the prompt the same request would run, rendered and tokenized.</summary>
    public static async Task CountTokensAsync(HttpContext ctx, ModelHost host)
    {
        var engine = host.RequireEngine();
        var body = await GenerationEndpoints.ReadBodyAsync(ctx, host, engine).ConfigureAwait(false);
        GenerationEndpoints.CheckModel(body, host);
        var request = AnthropicRequest.Read(body, countOnly: true);
        var turn = TranslatedRequest.Renaming(() => ChatTurn.Prepare(request.Chat, host, "msg_"), "messages", AnthropicRequest.Names);
        await JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteNumber("input_tokens", turn.PromptTokens);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }
}
