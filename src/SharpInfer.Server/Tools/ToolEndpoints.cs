using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;
using SharpInfer.Server.Api;

namespace SharpInfer.Server.Tools;

/// <summary>
/// llama-server's <c>/tools</c> API: <c>GET /tools</c> lists the tools (<c>[{display_name, tool, type, permissions,
/// definition}]</c>); <c>POST /tools {"tool", "params", "stream"?}</c> runs one and answers its JSON object
/// (<c>plain_text_response</c>, <c>result</c> or <c>error</c>, status 200), or, streamed, server-sent events
/// <c>{"chunk"}</c>... then <c>{"done": true, "error"?}</c>. An <c>x-tool-cwd</c> header sets the working directory
/// (it overrides a <c>cwd</c> argument). Both answer 403 when no tool is configured; a call runs until it finishes,
/// the client leaves or the server stops.
/// </summary>
internal static class ToolEndpoints
{
    public static void Map(RouteGroupBuilder app, ToolRegistry tools, IHostApplicationLifetime lifetime)
    {
        app.MapGet("/tools", ctx => ListAsync(ctx, tools));
        app.MapPost("/tools", ctx => InvokeAsync(ctx, tools, lifetime));
    }

    private static async Task ListAsync(HttpContext ctx, ToolRegistry tools)
    {
        if (tools.Disabled) throw LlamaServerErrors.FeatureDisabled();
        var list = await tools.ToolsAsync().WaitAsync(ctx.RequestAborted).ConfigureAwait(false);
        var array = new JsonArray();
        foreach (var t in list) array.Add((JsonNode)t.ToJson());
        await JsonResponse.WriteAsync(ctx, w => array.WriteTo(w)).ConfigureAwait(false);
    }

    private static async Task InvokeAsync(HttpContext ctx, ToolRegistry tools, IHostApplicationLifetime lifetime)
    {
        if (tools.Disabled) throw LlamaServerErrors.FeatureDisabled();
        var host = ctx.RequestServices.GetService(typeof(ModelHost)) as ModelHost;
        long maxBytes = host?.Options.MaxRequestBodyBytes ?? 16L << 20;
        var body = await JsonBody.ReadAsync(ctx.Request, maxBytes, ctx.RequestAborted).ConfigureAwait(false);
        string name = body.String("tool") ?? throw ApiException.BadRequest("\"tool\" is required", "tool");
        var parameters = body.Object("params")?.DeepClone().AsObject() ?? [];
        bool stream = body.Bool("stream") ?? false;
        if (ctx.Request.Headers["x-tool-cwd"].ToString() is { Length: > 0 } cwd) parameters["cwd"] = cwd;

        var list = await tools.ToolsAsync().WaitAsync(ctx.RequestAborted).ConfigureAwait(false);
        var tool = list.FirstOrDefault(t => t.Name == name)
                   ?? throw new ApiException(StatusCodes.Status404NotFound, $"unknown tool \"{name}\"", ApiErrorTypes.InvalidRequest, "tool");
        if (stream && !tool.SupportsStream)
            throw new ApiException(StatusCodes.Status404NotFound, $"tool \"{name}\" does not support stream = true", ApiErrorTypes.InvalidRequest, "stream");

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, lifetime.ApplicationStopping);
        var call = new ToolCall(parameters);
        if (!stream)
        {
            JsonObject result;
            try
            {
                result = await tool.InvokeAsync(call, null, linked.Token).ConfigureAwait(false);
            }
            catch (ToolArgumentException e)
            {
                throw ApiException.BadRequest(e.Message, "params");
            }
            catch (OperationCanceledException) when (!ctx.RequestAborted.IsCancellationRequested && lifetime.ApplicationStopping.IsCancellationRequested)
            {
                throw ApiErrors.ShuttingDown();
            }
            await JsonResponse.WriteAsync(ctx, w => result.WriteTo(w)).ConfigureAwait(false);
            return;
        }

        ctx.Response.StatusCode = StatusCodes.Status200OK;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        string? error = null;
        try
        {
            await tool.InvokeAsync(call, chunk => WriteEventAsync(ctx, w => w.WriteString("chunk", chunk)), linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            return; // the client left
        }
        catch (Exception e) when (e is ToolArgumentException or OperationCanceledException or IOException or InvalidOperationException)
        {
            error = e is OperationCanceledException ? "the server is shutting down" : e.Message;
        }
        await WriteEventAsync(ctx, w =>
        {
            w.WriteBoolean("done", true);
            if (error != null) w.WriteString("error", error);
        }).ConfigureAwait(false);
    }

    private static async Task WriteEventAsync(HttpContext ctx, Action<Utf8JsonWriter> fields)
    {
        var buffer = new ArrayBufferWriter<byte>();
        buffer.Write("data: "u8);
        using (var w = new Utf8JsonWriter(buffer, ResponseJson.WriterOptions))
        {
            w.WriteStartObject();
            fields(w);
            w.WriteEndObject();
        }
        buffer.Write("\n\n"u8);
        await ctx.Response.Body.WriteAsync(buffer.WrittenMemory, ctx.RequestAborted).ConfigureAwait(false);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
    }
}
