using System.Text;
using Microsoft.AspNetCore.Http;
using SharpInfer.Server.Metrics;

namespace SharpInfer.Server.Api;

/// <summary><c>GET /health</c>, <c>GET /v1/models</c>, <c>POST /tokenize</c>, <c>POST /detokenize</c>, <c>GET /metrics</c>.</summary>
internal static class InfoEndpoints
{
    public static async Task HealthAsync(HttpContext ctx, ModelHost host)
    {
        host.IsAvailable();   // 503 while loading, after a failed load and while stopping; 200 asleep (without waking)
        await JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("status", "ok");
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    public static Task ModelsAsync(HttpContext ctx, ModelHost host)
    {
        var engine = host.RequireEngine();
        return JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            w.WriteStartObject();
            w.WriteString("id", host.ModelId);
            // llama-server's: every name the model answers to, and its informational tags
            w.WriteStartArray("aliases");
            foreach (var alias in host.Options.ModelAliases) w.WriteStringValue(alias);
            w.WriteEndArray();
            w.WriteStartArray("tags");
            foreach (var tag in host.Options.ModelTags) w.WriteStringValue(tag);
            w.WriteEndArray();
            w.WriteString("object", "model");
            w.WriteNumber("created", host.Created);
            w.WriteString("owned_by", "sharpinfer");
            w.WriteString("root", host.ModelId);
            w.WriteNull("parent");
            w.WriteNumber("max_model_len", engine.MaxModelLen);
            w.WriteStartObject("meta");
            w.WriteString("file", Path.GetFileName(engine.Model.Path));
            w.WriteString("architecture", engine.Model.Config.Architecture);
            w.WriteNumber("n_vocab", engine.Model.Config.VocabSize);
            w.WriteNumber("n_ctx_train", engine.Model.Config.TrainedContextLength);
            w.WriteNumber("size", engine.Model.File.FileSize);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }

    /// <summary>llama-server's <c>{"content", "add_special"?, "parse_special"?, "with_pieces"?}</c> (vLLM's
    /// <c>prompt</c>/<c>add_special_tokens</c> accepted too) → <c>{"tokens": [...]}</c>.</summary>
    public static async Task TokenizeAsync(HttpContext ctx, ModelHost host)
    {
        var engine = host.RequireEngine();
        var body = await JsonBody.ReadAsync(ctx.Request, host.Options.MaxRequestBodyBytes, ctx.RequestAborted).ConfigureAwait(false);
        string field = body.Has("content") ? "content" : "prompt";
        var content = body.String(field) ?? throw ApiException.BadRequest("'content' is required.", "content");
        bool addSpecial = body.Bool("add_special") ?? body.Bool("add_special_tokens") ?? false;
        bool parseSpecial = body.Bool("parse_special") ?? true;
        bool withPieces = body.Bool("with_pieces") ?? false;
        var tokenizer = engine.Model.Tokenizer;
        var ids = tokenizer.Encode(content, addSpecial, parseSpecial);
        await JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("tokens");
            foreach (var id in ids)
            {
                if (!withPieces)
                {
                    w.WriteNumberValue(id);
                    continue;
                }
                w.WriteStartObject();
                w.WriteNumber("id", id);
                var bytes = tokenizer.PieceBytes(id, renderSpecial: true);
                if (Utf8IsValid(bytes)) w.WriteString("piece", Encoding.UTF8.GetString(bytes));
                else
                {
                    w.WriteStartArray("piece");
                    foreach (var b in bytes) w.WriteNumberValue(b);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNumber("count", ids.Length);
            w.WriteNumber("max_model_len", engine.MaxModelLen);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static bool Utf8IsValid(ReadOnlySpan<byte> bytes) => System.Text.Unicode.Utf8.IsValid(bytes);

    /// <summary><c>{"tokens": [...]}</c> → <c>{"content": "..."}</c> (special tokens rendered, as llama-server).</summary>
    public static async Task DetokenizeAsync(HttpContext ctx, ModelHost host)
    {
        var engine = host.RequireEngine();
        var body = await JsonBody.ReadAsync(ctx.Request, host.Options.MaxRequestBodyBytes, ctx.RequestAborted).ConfigureAwait(false);
        var arr = body.Array("tokens") ?? throw ApiException.BadRequest("'tokens' is required.", "tokens");
        var ids = GenerationEndpoints.TokenIds(arr, "tokens", engine.Model.Config.VocabSize);
        var text = engine.Model.Tokenizer.Decode(ids, renderSpecial: true);
        await JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("content", text);
            w.WriteString("prompt", text);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    public static async Task MetricsAsync(HttpContext ctx, ModelHost host)
    {
        var sb = new StringBuilder(8192);
        sb.Append("# HELP sharpinfer:model_loaded 1 when the model is loaded and the server accepts requests.\n");
        sb.Append("# TYPE sharpinfer:model_loaded gauge\n");
        sb.Append("sharpinfer:model_loaded{model_name=\"").Append(host.ModelId.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n"))
          .Append("\"} ").Append(host.State is ServerState.Ready or ServerState.Sleeping ? '1' : '0').Append('\n');
        if (host.State is ServerState.Ready or ServerState.Stopping)
        {
            host.Exporter?.Write(sb);
            if (host.Engine is { } engine) host.LlamaMetrics?.Write(sb, engine.Stats);
        }
        ctx.Response.StatusCode = StatusCodes.Status200OK;
        ctx.Response.ContentType = PrometheusExporter.ContentType;
        await ctx.Response.WriteAsync(sb.ToString(), ctx.RequestAborted).ConfigureAwait(false);
    }
}
