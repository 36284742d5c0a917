using System.Net;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Engine.Pooling;
using SharpInfer.Models;
using SharpInfer.Server.Api;
using SharpInfer.Tests.Engine;

namespace SharpInfer.Tests.Server;

/// <summary><c>/v1/rerank</c> and <c>/rerank</c>: scores from the classification head of a tiny Qwen3 reranker, sorted
/// best first and cut to <c>top_n</c>; a clear 400 for a model without a head and for malformed requests.</summary>
public class RerankApiTests
{
    private static readonly Lazy<Model> Reranker = new(() => Model.Load(RerankerModel.Get()));

    private static readonly string[] Documents = ["A fox jumps over a dog.", "Stock prices fell sharply today.", "Dogs and foxes are mammals.", "x"];

    [Theory]
    [InlineData("/v1/rerank")]
    [InlineData("/rerank")]
    public async Task Results_are_the_head_s_scores_best_first(string path)
    {
        await using var s = await ServerHarness.StartAsync(Reranker.Value);
        const string query = "What does the fox do?";
        var json = await s.PostOkAsync(path, new JsonObject
        {
            ["query"] = query,
            ["documents"] = new JsonArray(Documents.Select(d => (JsonNode)d).ToArray()),
            ["top_n"] = 3,
            ["return_documents"] = true,
        });
        var results = json["results"]!.AsArray();
        Assert.Equal(3, results.Count);
        // each score is what the engine gives the (query, document) pair as llama-server formats it
        var model = Reranker.Value;
        var expected = new float[Documents.Length];
        for (int i = 0; i < Documents.Length; i++)
        {
            var tokens = RerankEndpoints.PairTokens(model.Tokenizer, null, query, Documents[i]);
            expected[i] = (await s.Engine.PoolAsync(EngineRequest.ForPooling(tokens, new PoolingParams { Type = PoolingType.Rank }),
                                                    TestContext.Current.CancellationToken)).Vectors[0][0];
        }
        var best = Enumerable.Range(0, Documents.Length).OrderByDescending(i => expected[i]).Take(3).ToArray();
        for (int k = 0; k < 3; k++)
        {
            int index = (int)results[k]!["index"]!;
            Assert.Equal(best[k], index);
            Assert.Equal(expected[index], (float)results[k]!["relevance_score"]!);
            Assert.Equal(Documents[index], (string?)results[k]!["document"]!["text"]);
        }
        int tokensTotal = Documents.Sum(d => RerankEndpoints.PairTokens(model.Tokenizer, null, query, d).Length);
        Assert.Equal(tokensTotal, (int)json["usage"]!["total_tokens"]!);
        Assert.All(expected, e => Assert.InRange(e, 0f, 1f));   // Qwen3 rerankers: a softmax over yes/no
        Assert.True(expected.Distinct().Count() > 1);
    }

    [Fact]
    public async Task A_model_without_a_classification_head_cannot_rerank()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var (status, json, _) = await s.PostAsync("/v1/rerank", new JsonObject { ["query"] = "q", ["documents"] = new JsonArray("d") });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("model_not_reranker", (string?)json["error"]!["code"]);
    }

    public static TheoryData<string, string> Malformed() => new()
    {
        { """{"documents": ["d"]}""", "query" },
        { """{"query": "", "documents": ["d"]}""", "query" },
        { """{"query": 1, "documents": ["d"]}""", "query" },
        { """{"query": "q"}""", "documents" },
        { """{"query": "q", "documents": []}""", "documents" },
        { """{"query": "q", "documents": "d"}""", "documents" },
        { """{"query": "q", "documents": ["d", 3]}""", "documents[1]" },
        { """{"query": "q", "documents": ["d"], "top_n": 0}""", "top_n" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public async Task Malformed_requests_get_400(string body, string param)
    {
        await using var s = await ServerHarness.StartAsync(Reranker.Value);
        var (status, json, _) = await s.PostAsync("/v1/rerank", JsonNode.Parse(body)!);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_request_error", (string?)json["error"]!["type"]);
        Assert.Equal(param, (string?)json["error"]!["param"]);
    }

    [Fact]
    public async Task A_reranker_s_server_points_embedding_clients_to_rerank()
    {
        await using var s = await ServerHarness.StartAsync(Reranker.Value);
        var (status, json, _) = await s.PostAsync("/v1/embeddings", new JsonObject { ["input"] = "hi" });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("rerank", (string?)json["error"]!["message"]);
    }
}
