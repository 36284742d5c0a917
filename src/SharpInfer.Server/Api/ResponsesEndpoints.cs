using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace SharpInfer.Server.Api;

/// <summary>
/// OpenAI's Responses API: <c>POST /v1/responses</c> (translated onto the chat-completions path by
/// <see cref="ResponsesRequest"/>, output shaped by <see cref="ResponsesOutput"/>), and <c>GET</c>/<c>DELETE
/// /v1/responses/{id}</c> over the in-memory <see cref="ResponseStore"/>.
/// </summary>
internal static class ResponsesEndpoints
{
    public static async Task CreateAsync(HttpContext ctx, ModelHost host, ResponseStore store, ILogger<ModelHost> log)
    {
        var engine = host.RequireEngine();
        var body = await GenerationEndpoints.ReadBodyAsync(ctx, host, engine).ConfigureAwait(false);
        GenerationEndpoints.CheckModel(body, host);
        var request = ResponsesRequest.Read(body, store);
        var turn = TranslatedRequest.Renaming(() => ChatTurn.Prepare(request.Chat, host, "resp_"), "input", ResponsesRequest.Names);
        var aborted = ctx.RequestAborted;
        var sse = request.Stream ? new SseWriter(ctx) : null;
        var output = new ResponsesOutput(request, turn.Meta.Id, host.ModelId, sse, aborted) { PromptTokens = turn.PromptTokens, Turn = turn };
        if (sse is null)
        {
            ChatTurn.Result result;
            try
            {
                result = await turn.RunSingleAsync(host, output.OnEventAsync, "input", aborted).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (aborted.IsCancellationRequested)
            {
                return;   // the client is gone; the request was aborted
            }
            await CompleteAsync(output, result, request, store, engine).ConfigureAwait(false);
            await JsonResponse.WriteAsync(ctx, w => output.WriteResponse(w)).ConfigureAwait(false);
            return;
        }
        try
        {
            var result = await turn.RunSingleAsync(host, output.OnEventAsync, "input", aborted, onStarted: async () =>
            {
                await ctx.Response.StartAsync(aborted).ConfigureAwait(false);
                await output.StartAsync().ConfigureAwait(false);
            }, onProgress: output.ProgressAsync).ConfigureAwait(false);
            await CompleteAsync(output, result, request, store, engine).ConfigureAwait(false);
        }
        catch (Exception e) when (aborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // the client disconnected: disposing the choice set aborted the engine request
        }
        catch (Exception e) when (!aborted.IsCancellationRequested && !ctx.Response.HasStarted)
        {
            throw ApiErrors.Map(e, "input");   // refused before the stream started: a plain error response
        }
        catch (Exception e) when (!aborted.IsCancellationRequested)
        {
            log.LogError(e, "streaming response {Id} failed", output.Id);
            try
            {
                await output.ErrorAsync(ApiErrors.Map(e, "input")).ConfigureAwait(false);
            }
            catch (Exception) { /* nothing more can be sent */ }
        }
    }

    /// <summary>Sets the result (sending <c>response.completed</c> when streaming) and stores the response unless
    /// <c>store</c> is false.</summary>
    private static async Task CompleteAsync(ResponsesOutput output, ChatTurn.Result result, ResponsesRequest request, ResponseStore store,
                                            SharpInfer.Engine.LlmEngine engine)
    {
        if (output.ReasoningText() is { Length: > 0 } reasoning)
            output.ReasoningTokens = Math.Min(result.CompletionTokens, engine.Model.Tokenizer.Encode(reasoning, addSpecial: false).Length);
        await output.FinishAsync(result).ConfigureAwait(false);
        if (!request.Store || !store.Enabled) return;
        var conversation = (System.Text.Json.Nodes.JsonArray)request.Conversation.DeepClone();
        conversation.Add((System.Text.Json.Nodes.JsonNode)output.AsChatMessage());
        store.Add(output.Id, conversation, Serialize(output));
    }

    private static string Serialize(ResponsesOutput output)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, ResponseJson.WriterOptions)) output.WriteResponse(w);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public static async Task GetAsync(HttpContext ctx, ResponseStore store, string id)
    {
        var entry = store.Get(id) ?? throw NotFound(id);
        ctx.Response.StatusCode = StatusCodes.Status200OK;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(entry.ResponseJson, ctx.RequestAborted).ConfigureAwait(false);
    }

    public static Task DeleteAsync(HttpContext ctx, ResponseStore store, string id)
    {
        if (!store.Delete(id)) throw NotFound(id);
        return JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("id", id);
            w.WriteString("object", "response");
            w.WriteBoolean("deleted", true);
            w.WriteEndObject();
        });
    }

    private static ApiException NotFound(string id) =>
        new(StatusCodes.Status404NotFound, $"No response found with id '{id}'.", ApiErrorTypes.InvalidRequest, "response_id", "response_not_found");
}
