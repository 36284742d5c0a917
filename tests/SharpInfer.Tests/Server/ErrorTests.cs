using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using SharpInfer.Server;

namespace SharpInfer.Tests.Server;

/// <summary>Every error answers with its status and OpenAI's error object {"error": {message, type, param, code}}.</summary>
public class ErrorTests
{
    private static JsonObject AssertError(HttpStatusCode expected, HttpStatusCode status, JsonObject body, string? param = null, string? code = null)
    {
        Assert.True(expected == status, $"expected {(int)expected}, got {(int)status}: {body.ToJsonString()}");
        var error = body["error"] as JsonObject;
        Assert.NotNull(error);
        Assert.False(string.IsNullOrWhiteSpace(error["message"]?.GetValue<string>()));
        Assert.False(string.IsNullOrWhiteSpace(error["type"]?.GetValue<string>()));
        Assert.True(error.ContainsKey("param"));
        Assert.True(error.ContainsKey("code"));
        if (param != null) Assert.Equal(param, error["param"]?.GetValue<string>());
        if (code != null) Assert.Equal(code, error["code"]?.GetValue<string>());
        return error;
    }

    private static async Task<(HttpStatusCode, JsonObject)> Send(ServerHarness s, HttpMethod method, string path, string? body = null, string? key = null)
    {
        using var req = new HttpRequestMessage(method, path);
        if (body != null) req.Content = new StringContent(body, Encoding.UTF8, "application/json");
        if (key != null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var res = await s.Http.SendAsync(req, TestContext.Current.CancellationToken);
        var text = await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return (res.StatusCode, (JsonObject)JsonNode.Parse(text)!);
    }

    private static JsonObject Chat() => new()
    {
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" }),
        ["max_tokens"] = 4,
    };

    [Fact]
    public async Task MalformedJsonAndWrongShapesAre400()
    {
        await using var s = await ServerHarness.StartAsync();
        var (st, body) = await Send(s, HttpMethod.Post, "v1/chat/completions", "{\"messages\": [");
        AssertError(HttpStatusCode.BadRequest, st, body);
        (st, body) = await Send(s, HttpMethod.Post, "v1/completions", "[1, 2]");
        AssertError(HttpStatusCode.BadRequest, st, body);
        (st, body) = await Send(s, HttpMethod.Post, "v1/completions", "");
        AssertError(HttpStatusCode.BadRequest, st, body);
        (st, body) = await Send(s, HttpMethod.Post, "v1/completions", "{\"prompt\": \"a\", \"prompt\": \"b\"}");
        AssertError(HttpStatusCode.BadRequest, st, body);
        (st, body) = await Send(s, HttpMethod.Post, "v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": 5}]}]}");
        AssertError(HttpStatusCode.BadRequest, st, body, param: "messages[0].content");
        (st, body) = await Send(s, HttpMethod.Post, "v1/chat/completions", "{\"messages\": [{\"content\": \"no role\"}]}");
        AssertError(HttpStatusCode.BadRequest, st, body, param: "messages[0].role");
    }

    [Theory]
    [InlineData("v1/chat/completions", "temperature", "\"hot\"")]
    [InlineData("v1/chat/completions", "temperature", "-1")]
    [InlineData("v1/chat/completions", "top_p", "1.5")]
    [InlineData("v1/chat/completions", "max_tokens", "0")]
    [InlineData("v1/chat/completions", "max_completion_tokens", "2.5")]
    [InlineData("v1/chat/completions", "n", "0")]
    [InlineData("v1/chat/completions", "presence_penalty", "3")]
    [InlineData("v1/chat/completions", "frequency_penalty", "-2.5")]
    [InlineData("v1/chat/completions", "stop", "[1]")]
    [InlineData("v1/chat/completions", "logit_bias", "{\"abc\": 1}")]
    [InlineData("v1/chat/completions", "logit_bias", "{\"5\": 101}")]
    [InlineData("v1/chat/completions", "top_logprobs", "3")]           // without logprobs: true
    [InlineData("v1/chat/completions", "top_k", "-5")]
    [InlineData("v1/chat/completions", "min_p", "2")]
    [InlineData("v1/chat/completions", "repetition_penalty", "0")]
    [InlineData("v1/chat/completions", "seed", "\"x\"")]
    [InlineData("v1/chat/completions", "stream", "1")]
    [InlineData("v1/chat/completions", "stream_options", "{\"include_usage\": true}")]   // without stream: true
    [InlineData("v1/chat/completions", "messages", "[]")]
    [InlineData("v1/chat/completions", "response_format", "{\"type\": \"json_schema\"}")]
    [InlineData("v1/completions", "logprobs", "21")]
    [InlineData("v1/completions", "prompt", "{}")]
    [InlineData("v1/completions", "prompt", "[999999]")]
    [InlineData("v1/completions", "suffix", "\"tail\"")]
    public async Task InvalidParametersAre400NamingTheField(string path, string field, string value)
    {
        await using var s = await ServerHarness.StartAsync();
        var body = path.Contains("chat") ? Chat() : new JsonObject { ["prompt"] = "Hi", ["max_tokens"] = 4 };
        body[field] = JsonNode.Parse(value);
        var (status, json, _) = await s.PostAsync(path, body);
        var error = AssertError(HttpStatusCode.BadRequest, status, json, param: field);
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Contains(field, error["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task PromptLongerThanTheContextIs400NotTruncated()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { Engine = o.Engine with { MaxModelLen = 64 } });
        var longText = string.Join(" ", Enumerable.Repeat("Once upon a time there was a dog.", 20));
        var (status, json, _) = await s.PostAsync("v1/completions", new JsonObject { ["prompt"] = longText, ["max_tokens"] = 4 });
        AssertError(HttpStatusCode.BadRequest, status, json, param: "prompt", code: "context_length_exceeded");
        (status, json, _) = await s.PostAsync("v1/chat/completions", new JsonObject
        { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = longText }) });
        AssertError(HttpStatusCode.BadRequest, status, json, param: "messages", code: "context_length_exceeded");
        // prompt fits but prompt + max_tokens does not (vLLM's rule)
        (status, json, _) = await s.PostAsync("v1/completions", new JsonObject { ["prompt"] = "Once upon a time", ["max_tokens"] = 100 });
        AssertError(HttpStatusCode.BadRequest, status, json, param: "max_tokens", code: "context_length_exceeded");
        // without max_tokens the answer is capped by the context instead
        (status, json, _) = await s.PostAsync("v1/chat/completions", new JsonObject
        { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" }), ["ignore_eos"] = true });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(64, json["usage"]!["total_tokens"]!.GetValue<int>());
        Assert.Equal("length", json["choices"]![0]!["finish_reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task ApiKeyIsRequiredOnV1AndTokenizeButNotOnHealthAndMetrics()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { ApiKey = "sekrit" });
        var (status, json) = await Send(s, HttpMethod.Get, "v1/models");
        var error = AssertError(HttpStatusCode.Unauthorized, status, json, code: "invalid_api_key");
        Assert.Equal("authentication_error", error["type"]!.GetValue<string>());
        (status, json) = await Send(s, HttpMethod.Post, "v1/chat/completions", Chat().ToJsonString(), key: "wrong");
        AssertError(HttpStatusCode.Unauthorized, status, json, code: "invalid_api_key");
        (status, json) = await Send(s, HttpMethod.Post, "tokenize", "{\"content\": \"a\"}");
        AssertError(HttpStatusCode.Unauthorized, status, json);
        (status, _) = await Send(s, HttpMethod.Get, "v1/models", key: "sekrit");
        Assert.Equal(HttpStatusCode.OK, status);
        (status, _) = await Send(s, HttpMethod.Get, "health");
        Assert.Equal(HttpStatusCode.OK, status);
        using var metrics = await s.Http.GetAsync("metrics", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);

        // the OpenAI client: a wrong key is an error with status 401, the right one works
        var bad = await Assert.ThrowsAsync<ClientResultException>(() => s.Chat("nope").CompleteChatAsync([new UserChatMessage("Hi")],
            new ChatCompletionOptions { MaxOutputTokenCount = 2 }, TestContext.Current.CancellationToken));
        Assert.Equal(401, bad.Status);
        var ok = await s.Chat("sekrit").CompleteChatAsync([new UserChatMessage("Hi")], new ChatCompletionOptions { MaxOutputTokenCount = 2 },
                                                          TestContext.Current.CancellationToken);
        Assert.NotNull(ok.Value.Content);
    }

    [Fact]
    public async Task UnknownModelRouteAndMethodAre404And405()
    {
        await using var s = await ServerHarness.StartAsync();
        var body = Chat();
        body["model"] = "gpt-4o";
        var (status, json, _) = await s.PostAsync("v1/chat/completions", body);
        AssertError(HttpStatusCode.NotFound, status, json, param: "model", code: "model_not_found");
        (status, json, _) = await s.PostAsync("v1/completions", new JsonObject { ["model"] = "nope", ["prompt"] = "x" });
        AssertError(HttpStatusCode.NotFound, status, json, param: "model");
        var (st, js) = await Send(s, HttpMethod.Get, "v1/embeddingz");
        AssertError(HttpStatusCode.NotFound, st, js);
        (st, js) = await Send(s, HttpMethod.Get, "v1/chat/completions");
        AssertError(HttpStatusCode.MethodNotAllowed, st, js);
        (st, js) = await Send(s, HttpMethod.Delete, "v1/models");
        AssertError(HttpStatusCode.MethodNotAllowed, st, js);

        var ex = await Assert.ThrowsAsync<ClientResultException>(() =>
            new OpenAI.OpenAIClient(new ApiKeyCredential("k"), new OpenAI.OpenAIClientOptions
            {
                Endpoint = new Uri(s.BaseAddress, "v1"),
                Transport = new System.ClientModel.Primitives.HttpClientPipelineTransport(s.Http),
                RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0),
            }).GetChatClient("some-other-model").CompleteChatAsync([new UserChatMessage("Hi")], cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(404, ex.Status);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task OversizedBodiesAre413(bool chunked)
    {
        await using var s = await ServerHarness.StartAsync(loopback: true, configure: o => o with { MaxRequestBodyBytes = 4096 });
        var big = new JsonObject { ["prompt"] = new string('a', 10_000), ["max_tokens"] = 1 }.ToJsonString();
        using var req = new HttpRequestMessage(HttpMethod.Post, "v1/completions");
        var bytes = Encoding.UTF8.GetBytes(big);
        req.Content = chunked ? new StreamContent(new NonSeekableStream(bytes)) : new ByteArrayContent(bytes);
        req.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var res = await s.Http.SendAsync(req, TestContext.Current.CancellationToken);
        Assert.Equal(chunked, req.Content.Headers.ContentLength == null);
        var json = (JsonObject)JsonNode.Parse(await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        AssertError(HttpStatusCode.RequestEntityTooLarge, res.StatusCode, json, code: "request_too_large");
        // a body under the limit is fine
        var (status, _, _) = await s.PostAsync("v1/completions", new JsonObject { ["prompt"] = "a b c", ["max_tokens"] = 1 });
        Assert.Equal(HttpStatusCode.OK, status);
    }

    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
    }

    [Fact]
    public async Task FullWaitingQueueIs429WithRetryAfterAndLeavesNothingBehind()
    {
        // one seat and one queue slot: a request for 4 choices cannot be admitted; the choices added before the
        // refusal are aborted
        await using var s = await ServerHarness.StartAsync(configure: o => o with
        { Engine = o.Engine with { MaxNumSeqs = 1, MaxNumBatchedTokens = 64, MaxQueuedRequests = 1 } });
        var (status, json, res) = await s.PostAsync("v1/completions", new JsonObject
        { ["prompt"] = "Once upon a time", ["n"] = 4, ["max_tokens"] = 200, ["ignore_eos"] = true });
        var error = AssertError(HttpStatusCode.TooManyRequests, status, json, code: "server_overloaded");
        Assert.Equal("rate_limit_error", error["type"]!.GetValue<string>());
        Assert.NotNull(res.Headers.RetryAfter);
        Assert.True(res.Headers.RetryAfter!.Delta > TimeSpan.Zero);
        Assert.True(await s.WaitIdleAsync(), "the admitted choices of the refused request must be aborted");
        // and the server still serves
        var (ok, _, _) = await s.PostAsync("v1/completions", new JsonObject { ["prompt"] = "Once upon a time", ["max_tokens"] = 2 });
        Assert.Equal(HttpStatusCode.OK, ok);
    }

    [Fact]
    public async Task WhileTheModelLoadsEverythingIs503ThenHealthTurns200()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var s = await ServerHarness.StartAsync(waitReady: false, configure: o => o with
        {
            ModelLoader = async ct =>
            {
                await gate.Task.WaitAsync(ct);
                return ServerModels.Stories;
            },
        });
        var (status, json) = await Send(s, HttpMethod.Get, "health");
        AssertError(HttpStatusCode.ServiceUnavailable, status, json, code: "model_loading");
        (status, json) = await Send(s, HttpMethod.Post, "v1/chat/completions", Chat().ToJsonString());
        AssertError(HttpStatusCode.ServiceUnavailable, status, json, code: "model_loading");
        (status, json) = await Send(s, HttpMethod.Get, "v1/models");
        AssertError(HttpStatusCode.ServiceUnavailable, status, json);
        using (var metrics = await s.Http.GetAsync("metrics", TestContext.Current.CancellationToken))
            Assert.Contains("sharpinfer:model_loaded{model_name=\"stories260K\"} 0", await metrics.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal(ServerState.Loading, s.Host.State);

        gate.SetResult();
        await s.Host.Loaded.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        (status, json) = await Send(s, HttpMethod.Get, "health");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("ok", json["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task AFailedLoadIs503WithTheReason()
    {
        await using var s = await ServerHarness.StartAsync(waitReady: false, configure: o => o with
        {
            ModelLoader = _ => Task.FromException<SharpInfer.Models.Model>(new GgufFormatException("bad.gguf", "not a GGUF file")),
        });
        await Assert.ThrowsAsync<GgufFormatException>(() => s.Host.Loaded.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        var (status, json) = await Send(s, HttpMethod.Get, "health");
        var error = AssertError(HttpStatusCode.ServiceUnavailable, status, json, code: "model_load_failed");
        Assert.Contains("not a GGUF file", error["message"]!.GetValue<string>());
    }
}
