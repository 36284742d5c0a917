using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Embeddings;
using SharpInfer.Engine.Pooling;
using SharpInfer.Tests.Engine;

namespace SharpInfer.Tests.Server;

/// <summary><c>/v1/embeddings</c> through the official OpenAI .NET client (which asks for base64), the same as raw
/// JSON (floats, token-id inputs), llama-server's <c>/embedding</c>, and OpenAI-shaped 4xx errors for malformed input.</summary>
public class EmbeddingsApiTests
{
    private static EmbeddingClient Client(ServerHarness s) => new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions
    {
        Endpoint = new Uri(s.BaseAddress, "v1"),
        Transport = new HttpClientPipelineTransport(s.Http),
        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        NetworkTimeout = TimeSpan.FromMinutes(5),
    }).GetEmbeddingClient(s.ModelId);

    private static float[] Ref(string pooling, int text) =>
        EmbeddingParityTests.Case("qwen3-tiny", pooling).GetProperty("vectors")[text].EnumerateArray().Select(v => v.GetSingle()).ToArray();

    [Fact]
    public async Task The_OpenAI_client_gets_llama_cpp_s_mean_embeddings()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var texts = EmbeddingParityTests.Texts;
        var result = await Client(s).GenerateEmbeddingsAsync(texts, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(texts.Length, result.Value.Count);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(i, result.Value[i].Index);
            double cos = EmbeddingParityTests.Cosine(result.Value[i].ToFloats().Span, Ref("mean", i));
            Assert.True(cos >= 0.9999, $"text {i}: cosine {cos:F6} with llama-embedding");
        }
        int tokens = texts.Sum(t => ServerModels.Qwen.Tokenizer.Encode(t).Length);
        Assert.Equal(tokens, result.Value.Usage.InputTokenCount);
        Assert.Equal(tokens, result.Value.Usage.TotalTokenCount);

        var cut = await Client(s).GenerateEmbeddingAsync(texts[0], new EmbeddingGenerationOptions { Dimensions = 64 }, TestContext.Current.CancellationToken);
        var v = cut.Value.ToFloats().Span;
        Assert.Equal(64, v.Length);
        Assert.True(EmbeddingParityTests.Cosine(v, Ref("mean", 0).AsSpan(0, 64)) >= 0.9999);
    }

    [Fact]
    public async Task Floats_token_ids_and_the_client_agree()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var ids = ServerModels.Qwen.Tokenizer.Encode(EmbeddingParityTests.Texts[1]);
        var byText = await s.PostOkAsync("/v1/embeddings", new JsonObject { ["input"] = EmbeddingParityTests.Texts[1], ["encoding_format"] = "float" });
        Assert.Equal("list", (string?)byText["object"]);
        Assert.Equal(s.ModelId, (string?)byText["model"]);
        var item = byText["data"]![0]!;
        Assert.Equal("embedding", (string?)item["object"]);
        Assert.Equal(0, (int)item["index"]!);
        var fromText = item["embedding"]!.AsArray().Select(x => (float)x!).ToArray();
        Assert.Equal(ids.Length, (int)byText["usage"]!["prompt_tokens"]!);

        var single = await s.PostOkAsync("/v1/embeddings", new JsonObject { ["input"] = new JsonArray(ids.Select(i => (JsonNode)i).ToArray()) });
        var lists = await s.PostOkAsync("/v1/embeddings", new JsonObject
        {
            ["input"] = new JsonArray(new JsonArray(ids.Select(i => (JsonNode)i).ToArray()), new JsonArray(ids[0])),
        });
        Assert.Single(single["data"]!.AsArray());
        Assert.Equal(2, lists["data"]!.AsArray().Count);
        Assert.Equal(ids.Length + 1, (int)lists["usage"]!["total_tokens"]!);
        Assert.Equal(fromText, single["data"]![0]!["embedding"]!.AsArray().Select(x => (float)x!).ToArray());
        Assert.Equal(fromText, lists["data"]![0]!["embedding"]!.AsArray().Select(x => (float)x!).ToArray());

        var b64 = await s.PostOkAsync("/v1/embeddings", new JsonObject { ["input"] = EmbeddingParityTests.Texts[1], ["encoding_format"] = "base64" });
        var bytes = Convert.FromBase64String((string)b64["data"]![0]!["embedding"]!);
        var decoded = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, decoded, 0, bytes.Length);
        Assert.Equal(fromText, decoded);
    }

    public static TheoryData<string, string, string?> Malformed() => new()
    {
        { """{}""", "input", null },
        { """{"input": ""}""", "input", null },
        { """{"input": []}""", "input", null },
        { """{"input": 5}""", "input", null },
        { """{"input": [[]]}""", "input[0]", null },
        { """{"input": ["ok", {"a": 1}]}""", "input[1]", null },
        { """{"input": [1, 99999999]}""", "input", null },
        { """{"input": "hi", "encoding_format": "int8"}""", "encoding_format", null },
        { """{"input": "hi", "dimensions": 0}""", "dimensions", null },
        { """{"input": "hi", "dimensions": 257}""", "dimensions", null },
        { """{"input": "hi", "dimensions": "8"}""", "dimensions", null },
        { """{"input": "hi", "model": 3}""", "model", null },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public async Task Malformed_requests_get_400_in_OpenAI_s_shape(string body, string param, string? code)
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var (status, json, _) = await s.PostAsync("/v1/embeddings", JsonNode.Parse(body)!);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        var error = json["error"]!;
        Assert.Equal("invalid_request_error", (string?)error["type"]);
        Assert.Equal(param, (string?)error["param"]);
        Assert.Equal(code, (string?)error["code"]);
        Assert.False(string.IsNullOrEmpty((string?)error["message"]));
    }

    [Fact]
    public async Task Too_long_inputs_and_other_models_are_refused()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen, configure: o => o with { Engine = o.Engine with { MaxModelLen = 64 } });
        var (status, json, _) = await s.PostAsync("/v1/embeddings", new JsonObject { ["input"] = new JsonArray("short", string.Join(" ", Enumerable.Repeat("word", 200))) });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("context_length_exceeded", (string?)json["error"]!["code"]);
        Assert.Equal("input[1]", (string?)json["error"]!["param"]);
        (status, json, _) = await s.PostAsync("/v1/embeddings", new JsonObject { ["input"] = new JsonArray(Enumerable.Range(0, 65).Select(_ => (JsonNode)1).ToArray()) });
        Assert.Equal("context_length_exceeded", (string?)json["error"]!["code"]);
        // exactly the context is fine: nothing is generated after an embedding's prompt
        await s.PostOkAsync("/v1/embeddings", new JsonObject { ["input"] = new JsonArray(Enumerable.Range(0, 64).Select(_ => (JsonNode)1).ToArray()) });
        (status, json, _) = await s.PostAsync("/v1/embeddings", new JsonObject { ["input"] = "hi", ["model"] = "text-embedding-3-small" });
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("model_not_found", (string?)json["error"]!["code"]);
    }

    [Fact]
    public async Task Llama_server_embedding_endpoint_answers_in_its_shape()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var res = await s.Http.PostAsync("/embedding", ServerHarness.JsonContent(new JsonObject { ["content"] = new JsonArray(EmbeddingParityTests.Texts[0], EmbeddingParityTests.Texts[2]) }),
                                         TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var arr = JsonNode.Parse(await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!.AsArray();
        Assert.Equal(2, arr.Count);
        Assert.Equal(1, (int)arr[1]!["index"]!);
        var v = Assert.Single(arr[1]!["embedding"]!.AsArray())!.AsArray().Select(x => (float)x!).ToArray();
        Assert.True(EmbeddingParityTests.Cosine(v, Ref("mean", 2)) >= 0.9999);
        Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 4);

        var raw = await s.Http.PostAsync("/embedding", ServerHarness.JsonContent(new JsonObject { ["content"] = EmbeddingParityTests.Texts[0], ["embd_normalize"] = -1 }),
                                         TestContext.Current.CancellationToken);
        var rv = JsonNode.Parse(await raw.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))![0]!["embedding"]![0]!.AsArray().Select(x => (float)x!).ToArray();
        Assert.True(Math.Abs(Math.Sqrt(rv.Sum(x => (double)x * x)) - 1) > 0.01, "embd_normalize -1 left the vector normalized");
        Assert.True(EmbeddingParityTests.Cosine(rv, Ref("mean", 0)) >= 0.9999);
    }

    [Fact]
    public async Task Pooling_none_is_per_token_on_embedding_and_refused_on_the_OpenAI_route()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen, configure: o => o with { Engine = o.Engine with { Pooling = PoolingType.None } });
        var (status, json, _) = await s.PostAsync("/v1/embeddings", new JsonObject { ["input"] = "hi" });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("none", (string?)json["error"]!["message"]);
        var res = await s.Http.PostAsync("/embedding", ServerHarness.JsonContent(new JsonObject { ["content"] = EmbeddingParityTests.Texts[1] }), TestContext.Current.CancellationToken);
        var rows = JsonNode.Parse(await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))![0]!["embedding"]!.AsArray();
        Assert.Equal(ServerModels.Qwen.Tokenizer.Encode(EmbeddingParityTests.Texts[1]).Length, rows.Count);
        Assert.All(rows, r => Assert.Equal(256, r!.AsArray().Count));
    }
}
