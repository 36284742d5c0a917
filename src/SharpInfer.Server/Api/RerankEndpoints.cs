using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using SharpInfer.Engine.Pooling;
using SharpInfer.Tokenization;

namespace SharpInfer.Server.Api;

/// <summary>
/// <c>POST /v1/rerank</c> and <c>POST /rerank</c> in the Jina / Cohere shape that llama-server and vLLM accept:
/// <c>query</c>, <c>documents</c> (strings), <c>top_n</c>, <c>return_documents</c>; results with <c>index</c> and
/// <c>relevance_score</c>, best first. Needs a reranker (a model with a classification head): each (query, document)
/// pair is one rank-pooling request, formatted as llama-server does (<see cref="PairTokens"/>).
/// </summary>
internal static class RerankEndpoints
{
    public static async Task RerankAsync(HttpContext ctx, ModelHost host)
    {
        var engine = host.RequireEngine();
        var body = await JsonBody.ReadAsync(ctx.Request, host.Options.MaxRequestBodyBytes, ctx.RequestAborted,
                                            EmbeddingEndpoints.MaxArrayLength(engine)).ConfigureAwait(false);
        CheckModel(body, host);
        if (!engine.HasClassifier)
            throw ApiException.BadRequest("This model cannot rerank: it has no classification head (cls / cls.output tensors). Serve a reranker model.",
                                          "model", "model_not_reranker");
        var query = body.String("query") ?? throw ApiException.BadRequest("'query' is required.", "query");
        if (query.Length == 0) throw ApiException.BadRequest("'query' must not be empty.", "query");
        var documents = ReadDocuments(body);
        int topN = body.Int("top_n", 1, int.MaxValue) ?? documents.Count;
        bool returnDocuments = body.Bool("return_documents") ?? false;

        var model = host.Model!;
        var template = model.File.GetString("tokenizer.chat_template.rerank");
        var prompts = new List<int[]>(documents.Count);
        for (int i = 0; i < documents.Count; i++)
        {
            var tokens = PairTokens(model.Tokenizer, template, query, documents[i]);
            if (tokens.Length > engine.MaxModelLen) throw PoolingRuns.TooLong(engine.MaxModelLen, $"{tokens.Length} tokens with the query", $"documents[{i}]");
            prompts.Add(tokens);
        }
        var results = await PoolingRuns.RunAsync(engine, prompts, new PoolingParams { Type = PoolingType.Rank }, "documents", ctx.RequestAborted)
            .ConfigureAwait(false);
        var order = Enumerable.Range(0, documents.Count).OrderByDescending(i => results[i].Vectors[0][0]).ThenBy(i => i).Take(topN).ToArray();
        int usage = prompts.Sum(p => p.Length);
        await JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("model", host.ModelId);
            w.WriteString("object", "list");
            w.WriteStartArray("results");
            foreach (int i in order)
            {
                w.WriteStartObject();
                w.WriteNumber("index", i);
                w.WriteNumber("relevance_score", results[i].Vectors[0][0]);
                if (returnDocuments)
                {
                    w.WriteStartObject("document");
                    w.WriteString("text", documents[i]);
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("usage");
            w.WriteNumber("prompt_tokens", usage);
            w.WriteNumber("total_tokens", usage);
            w.WriteEndObject();
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static List<string> ReadDocuments(JsonBody body)
    {
        var arr = body.Array("documents") ?? throw ApiException.BadRequest("'documents' is required (a list of strings).", "documents");
        if (arr.Count == 0) throw ApiException.BadRequest("'documents' must not be empty.", "documents");
        if (arr.Count > PoolingRuns.MaxInputs)
            throw ApiException.BadRequest($"'documents' has {arr.Count} entries; at most {PoolingRuns.MaxInputs} are allowed in one request.", "documents");
        var docs = new List<string>(arr.Count);
        for (int i = 0; i < arr.Count; i++)
        {
            // Cohere also accepts {"text": "..."} objects
            var node = arr[i] is JsonObject o ? o["text"] : arr[i];
            if (node is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
                throw ApiException.BadRequest($"'documents[{i}]' must be a string (or an object with a 'text' string), got {JsonBody.Describe(arr[i])}.", $"documents[{i}]");
            docs.Add(v.GetValue<string>());
        }
        return docs;
    }

    /// <summary>
    /// A (query, document) pair as llama-server's <c>format_prompt_rerank</c> builds it: with the model's rerank
    /// template (<c>tokenizer.chat_template.rerank</c>), the template with <c>{query}</c> and <c>{document}</c> replaced,
    /// tokenized without added BOS/EOS but with special tokens parsed; otherwise [BOS] query [EOS] document [EOS], BOS
    /// and EOS only where the vocabulary adds them (the text itself parses no special tokens). llama.cpp also inserts a
    /// SEP for vocabularies that add one (BERT's WordPiece); no architecture served here has one.
    /// </summary>
    public static int[] PairTokens(Tokenizer tokenizer, string? template, string query, string document)
    {
        if (template != null)
            return tokenizer.Encode(template.Replace("{query}", query).Replace("{document}", document), addSpecial: false, parseSpecial: true);
        var v = tokenizer.Vocabulary;
        var tokens = new List<int>();
        if (v.AddBos && v.BosId >= 0) tokens.Add(v.BosId);
        tokenizer.Encode(query, tokens, addSpecial: false, parseSpecial: false);
        if (v.AddEos && v.EosId >= 0) tokens.Add(v.EosId);
        tokenizer.Encode(document, tokens, addSpecial: false, parseSpecial: false);
        if (v.AddEos && v.EosId >= 0) tokens.Add(v.EosId);
        return tokens.ToArray();
    }

    /// <summary>A request for another model than the served one: OpenAI's 404.</summary>
    public static void CheckModel(JsonBody body, ModelHost host) => GenerationEndpoints.CheckModel(body, host);
}
