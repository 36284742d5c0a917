using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using SharpInfer.Engine.Pooling;

namespace SharpInfer.Server.Api;

/// <summary>
/// Ollama's embeddings through the engine's pooling: <c>POST /api/embed</c> (<c>input</c>: a string or a list of
/// strings; L2-normalized vectors; <c>truncate</c>, default true, cuts an input to the context instead of refusing it;
/// <c>dimensions</c>) and the older <c>POST /api/embeddings</c> (<c>prompt</c>; one vector, not normalized).
/// </summary>
internal static class OllamaEmbed
{
    public static async Task EmbedAsync(HttpContext ctx, ModelHost host)
    {
        long start = Stopwatch.GetTimestamp();
        var engine = host.RequireEngine();
        var body = await JsonBody.ReadAsync(ctx.Request, host.Options.MaxRequestBodyBytes, ctx.RequestAborted, EmbeddingEndpoints.MaxArrayLength(engine))
            .ConfigureAwait(false);
        string model = OllamaEndpoints.CheckModel(body, host);
        var type = CheckPooling(engine.DefaultPooling);
        bool truncate = body.Bool("truncate") ?? true;
        int? dimensions = body.Int("dimensions", 1, engine.EmbeddingLength);
        body.Object("options");
        var texts = body["input"] switch
        {
            null => [],
            JsonValue v when v.GetValueKind() == JsonValueKind.String => [v.GetValue<string>()],
            JsonArray a => a.Select((x, i) => x is JsonValue s && s.GetValueKind() == JsonValueKind.String ? s.GetValue<string>()
                : throw ApiException.BadRequest($"'input[{i}]' must be a string, got {JsonBody.Describe(x)}.", "input")).ToList(),
            var other => throw ApiException.BadRequest($"invalid input type: {JsonBody.Describe(other)}: use a string or a list of strings", "input"),
        };
        if (texts.Count > PoolingRuns.MaxInputs)
            throw ApiException.BadRequest($"'input' has {texts.Count} inputs; at most {PoolingRuns.MaxInputs} are allowed in one request.", "input");
        var prompts = new List<int[]>(texts.Count);
        for (int i = 0; i < texts.Count; i++) prompts.Add(Tokenize(texts[i], texts.Count == 1 ? "input" : $"input[{i}]", host, engine.MaxModelLen, truncate));
        var results = prompts.Count == 0 ? []
            : await PoolingRuns.RunAsync(engine, prompts, new PoolingParams { Type = type, Normalize = 2, Dimensions = dimensions }, "input", ctx.RequestAborted)
                .ConfigureAwait(false);
        long end = Stopwatch.GetTimestamp();
        await JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("model", model);
            w.WriteStartArray("embeddings");
            foreach (var r in results) WriteVector(w, r.Vectors[0]);
            w.WriteEndArray();
            w.WriteNumber("total_duration", OllamaOutput.Nanoseconds(Stopwatch.GetElapsedTime(start, end)));
            w.WriteNumber("load_duration", 0);
            w.WriteNumber("prompt_eval_count", prompts.Sum(p => p.Length));
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    public static async Task LegacyAsync(HttpContext ctx, ModelHost host)
    {
        var engine = host.RequireEngine();
        var body = await JsonBody.ReadAsync(ctx.Request, host.Options.MaxRequestBodyBytes, ctx.RequestAborted).ConfigureAwait(false);
        OllamaEndpoints.CheckModel(body, host);
        var type = CheckPooling(engine.DefaultPooling);
        body.Object("options");
        string prompt = body.String("prompt") ?? "";
        float[] vector = [];
        if (prompt.Length > 0)
        {
            var tokens = Tokenize(prompt, "prompt", host, engine.MaxModelLen, truncate: true);
            var results = await PoolingRuns.RunAsync(engine, [tokens], new PoolingParams { Type = type, Normalize = -1 }, "prompt", ctx.RequestAborted)
                .ConfigureAwait(false);
            vector = results[0].Vectors[0];
        }
        await JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WritePropertyName("embedding");
            WriteVector(w, vector);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static PoolingType CheckPooling(PoolingType type) => type switch
    {
        PoolingType.None => throw ApiException.BadRequest("Pooling type 'none' gives one vector per token, which Ollama's API cannot return: start the server with another --pooling.", "input"),
        PoolingType.Rank => throw ApiException.BadRequest("This model is a reranker (rank pooling): start the server with another --pooling.", "input"),
        _ => type,
    };

    /// <summary>An input's tokens (BOS/EOS as the vocabulary adds them, special tokens parsed, as the other embedding
    /// endpoints); over the context it is cut to the context when <paramref name="truncate"/>, else refused.</summary>
    private static int[] Tokenize(string text, string field, ModelHost host, int maxTokens, bool truncate)
    {
        if (text.Length == 0) throw ApiException.BadRequest($"'{field}' must not be an empty string.", field);
        var tokenizer = host.Model!.Tokenizer;
        if (tokenizer.EncodeAtMost(text, maxTokens, addSpecial: true, parseSpecial: true) is { } ids) return ids;
        if (!truncate) throw PoolingRuns.TooLong(maxTokens, "more tokens than that", field);
        // the body limit bounds the text, so tokenizing all of it once is bounded too
        return tokenizer.Encode(text, addSpecial: true, parseSpecial: true)[..maxTokens];
    }

    private static void WriteVector(Utf8JsonWriter w, float[] v)
    {
        w.WriteStartArray();
        foreach (var x in v) w.WriteNumberValue(x);
        w.WriteEndArray();
    }
}
