using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SharpInfer.Engine.Pooling;

namespace SharpInfer.Server.Api;

/// <summary>
/// <c>POST /v1/embeddings</c> (OpenAI) and <c>POST /embedding</c> (llama-server's own shape; <c>/embeddings</c> is an
/// alias, as in llama-server). Served for every model: a generative model's embeddings are its output-normed hidden
/// states pooled with the server's pooling (<c>--pooling</c>, else the model's <c>pooling_type</c>, else mean), where
/// llama-server needs <c>--embeddings</c>.
/// </summary>
internal static class EmbeddingEndpoints
{
    public static void Map(IEndpointRouteBuilder app, ModelHost host)
    {
        app.MapPost("/v1/embeddings", ctx => OpenAiAsync(ctx, host));
        app.MapPost("/embedding", ctx => LlamaAsync(ctx, host));
        app.MapPost("/embeddings", ctx => LlamaAsync(ctx, host));
        app.MapPost("/v1/rerank", ctx => RerankEndpoints.RerankAsync(ctx, host));
        app.MapPost("/rerank", ctx => RerankEndpoints.RerankAsync(ctx, host));
    }

    public static async Task OpenAiAsync(HttpContext ctx, ModelHost host)
    {
        var engine = host.RequireEngine();
        var body = await JsonBody.ReadAsync(ctx.Request, host.Options.MaxRequestBodyBytes, ctx.RequestAborted, MaxArrayLength(engine)).ConfigureAwait(false);
        RerankEndpoints.CheckModel(body, host);
        var type = engine.DefaultPooling;
        if (type == PoolingType.None)
            throw ApiException.BadRequest("Pooling type 'none' is not OpenAI-compatible (one vector per token): use /embedding, or start the server with another --pooling.", "input");
        if (type == PoolingType.Rank)
            throw ApiException.BadRequest("This model is a reranker (rank pooling): use /v1/rerank, or start the server with another --pooling.", "input");
        bool base64 = body.String("encoding_format") switch
        {
            null or "float" => false,
            "base64" => true,
            var f => throw ApiException.BadRequest($"'encoding_format' must be 'float' or 'base64', got '{f}'.", "encoding_format"),
        };
        int? dimensions = body.Int("dimensions", 1, engine.EmbeddingLength);
        _ = body.String("user");
        var prompts = PoolingRuns.ReadPrompts(body["input"], "input", host, engine.MaxModelLen);
        var results = await PoolingRuns.RunAsync(engine, prompts, new PoolingParams { Type = type, Dimensions = dimensions }, "input", ctx.RequestAborted)
            .ConfigureAwait(false);
        int tokens = prompts.Sum(p => p.Length);
        await JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            for (int i = 0; i < results.Length; i++)
            {
                w.WriteStartObject();
                w.WriteString("object", "embedding");
                w.WriteNumber("index", i);
                var v = results[i].Vectors[0];
                if (base64) w.WriteBase64String("embedding", MemoryMarshal.AsBytes(v.AsSpan()));   // little-endian float32, as OpenAI's
                else WriteVector(w, "embedding", v);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("model", host.ModelId);
            w.WriteStartObject("usage");
            w.WriteNumber("prompt_tokens", tokens);
            w.WriteNumber("total_tokens", tokens);
            w.WriteEndObject();
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    /// <summary>llama-server's <c>/embedding</c>: <c>content</c> (or <c>input</c>), <c>embd_normalize</c> (default 2);
    /// answers <c>[{"index": i, "embedding": [[…]]}]</c>, one vector per prompt, or one per token (unnormalized) when
    /// the pooling is none.</summary>
    public static async Task LlamaAsync(HttpContext ctx, ModelHost host)
    {
        var engine = host.RequireEngine();
        var body = await JsonBody.ReadAsync(ctx.Request, host.Options.MaxRequestBodyBytes, ctx.RequestAborted, MaxArrayLength(engine)).ConfigureAwait(false);
        var type = engine.DefaultPooling;
        if (type == PoolingType.Rank)
            throw ApiException.BadRequest("This model is a reranker (rank pooling): use /rerank, or start the server with another --pooling.", "content");
        string field = body.Has("content") ? "content" : "input";
        int normalize = body.Int("embd_normalize", -1, 64) ?? 2;
        if (type == PoolingType.None) normalize = -1;   // as llama-server: per-token vectors are never normalized
        var prompts = PoolingRuns.ReadPrompts(body[field] ?? throw ApiException.BadRequest("'content' or 'input' is required.", "content"),
                                              field, host, engine.MaxModelLen);
        var results = await PoolingRuns.RunAsync(engine, prompts, new PoolingParams { Type = type, Normalize = normalize }, field, ctx.RequestAborted)
            .ConfigureAwait(false);
        await JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartArray();
            for (int i = 0; i < results.Length; i++)
            {
                w.WriteStartObject();
                w.WriteNumber("index", i);
                w.WriteStartArray("embedding");
                foreach (var v in results[i].Vectors) WriteVector(w, null, v);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }).ConfigureAwait(false);
    }

    private static void WriteVector(Utf8JsonWriter w, string? name, float[] v)
    {
        if (name != null) w.WriteStartArray(name); else w.WriteStartArray();
        foreach (var x in v) w.WriteNumberValue(x);
        w.WriteEndArray();
    }

    /// <summary>No array of an embedding request is longer than this (a prompt of ids, or the list of inputs).</summary>
    internal static int MaxArrayLength(Engine.LlmEngine engine) => Math.Max(engine.MaxModelLen, PoolingRuns.MaxInputs);
}
