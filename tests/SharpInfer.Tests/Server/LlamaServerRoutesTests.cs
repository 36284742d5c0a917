using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using SharpInfer.Engine;

namespace SharpInfer.Tests.Server;

/// <summary>llama-server's other native routes (/tokenize, /detokenize, /apply-template, /props, /slots, /metrics names)
/// and the OpenAI routes without /v1, each checked against the engine, tokenizer or /v1 route.</summary>
public class LlamaServerRoutesTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(HttpStatusCode Status, JsonNode Body)> GetAsync(ServerHarness s, string path)
    {
        using var res = await s.Http.GetAsync(path, Ct);
        var text = await res.Content.ReadAsStringAsync(Ct);
        return (res.StatusCode, JsonNode.Parse(text)!);
    }

    [Fact]
    public async Task TokenizeWithPiecesMatchesTheTokenizerAndDetokenizeRoundTrips()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var tok = s.Engine.Model.Tokenizer;
        const string text = "Hello world, the quick brown fox";
        var r = await s.PostOkAsync("tokenize", new JsonObject { ["content"] = text, ["with_pieces"] = true });
        var items = r["tokens"]!.AsArray();
        Assert.Equal(tok.Encode(text, addSpecial: false, parseSpecial: true), items.Select(i => i!["id"]!.GetValue<int>()).ToArray());
        Assert.Equal(text, string.Concat(items.Select(i => i!["piece"]!.GetValue<string>())));
        var special = await s.PostOkAsync("tokenize", new JsonObject { ["content"] = text, ["add_special"] = true });
        Assert.Equal(tok.Encode(text, addSpecial: true, parseSpecial: true), special["tokens"]!.AsArray().Select(i => i!.GetValue<int>()).ToArray());
        var back = await s.PostOkAsync("detokenize", new JsonObject { ["tokens"] = new JsonArray([.. items.Select(i => (JsonNode)i!["id"]!.GetValue<int>())]) });
        Assert.Equal(text, back["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task ApplyTemplateIsTheChatRoutesPromptAndChatAliasMatchesV1()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var messages = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi there" });
        var r = await s.PostOkAsync("apply-template", new JsonObject { ["messages"] = messages.DeepClone() });
        var expected = s.Host.Prompts!.Build((JsonArray)messages.DeepClone()).Text;
        Assert.Equal(expected, r["prompt"]!.GetValue<string>());
        Assert.Contains("Hi there", expected);

        var body = new JsonObject { ["messages"] = messages.DeepClone(), ["max_tokens"] = 6, ["temperature"] = 0, ["chat_template_kwargs"] = new JsonObject { ["enable_thinking"] = false } };
        var v1 = await s.PostOkAsync("v1/chat/completions", body.DeepClone());
        var alias = await s.PostOkAsync("chat/completions", body.DeepClone());
        Assert.Equal(v1["choices"]![0]!["message"]!["content"]!.GetValue<string>(), alias["choices"]![0]!["message"]!["content"]!.GetValue<string>());

        var (status, json, _) = await s.PostAsync("apply-template", new JsonObject { ["messages"] = new JsonArray() });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(400, json["error"]!["code"]!.GetValue<int>());
    }

    [Fact]
    public async Task UnprefixedOpenAiRoutesAnswerAsTheV1Ones()
    {
        await using var s = await ServerHarness.StartAsync();
        var (status, models) = await GetAsync(s, "models");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(s.ModelId, models["data"]![0]!["id"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(s, "v1/health")).Status);
        var body = new JsonObject { ["input"] = "Once upon a time", ["max_output_tokens"] = 5, ["temperature"] = 0 };
        var v1 = await s.PostOkAsync("v1/responses", body.DeepClone());
        var alias = await s.PostOkAsync("responses", body.DeepClone());
        Assert.NotEmpty(Text(v1));
        Assert.Equal(Text(v1), Text(alias));
        static string Text(JsonObject r) => string.Concat(r["output"]!.AsArray().SelectMany(o => o!["content"]?.AsArray() ?? []).Select(c => c!["text"]?.GetValue<string>()));
    }

    [Fact]
    public async Task PropsDescribeTheServerAndPostIs501()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var (status, props) = await GetAsync(s, "props");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(s.Engine.Options.MaxNumSeqs, props["total_slots"]!.GetValue<int>());
        Assert.Equal(s.Engine.MaxModelLen, props["default_generation_settings"]!["n_ctx"]!.GetValue<int>());
        Assert.Equal(0.8f, props["default_generation_settings"]!["params"]!["temperature"]!.GetValue<float>());
        Assert.Equal(s.Host.Prompts!.Formatter.Template.Source, props["chat_template"]!.GetValue<string>());
        Assert.Equal(s.ModelId, props["model_alias"]!.GetValue<string>());
        var (post, json, _) = await s.PostAsync("props", new JsonObject());
        Assert.Equal(HttpStatusCode.NotImplemented, post);
        Assert.Equal("not_supported_error", json["error"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task SlotsListEverySequenceAndActionsAnswerHonestly()
    {
        await using var s = await ServerHarness.StartAsync();
        var (status, slots) = await GetAsync(s, "slots?fail_on_no_slot=1");
        Assert.Equal(HttpStatusCode.OK, status);
        var list = slots.AsArray();
        Assert.Equal(s.Engine.Options.MaxNumSeqs, list.Count);
        Assert.All(list, x => Assert.False(x!["is_processing"]!.GetValue<bool>()));
        Assert.Equal(Enumerable.Range(0, list.Count), list.Select(x => x!["id"]!.GetValue<int>()));
        Assert.All(list, x => Assert.Equal(s.Engine.MaxModelLen, x!["n_ctx"]!.GetValue<int>()));
        var (save, error, _) = await s.PostAsync("slots/0?action=save", new JsonObject { ["filename"] = "a.bin" });
        Assert.Equal(HttpStatusCode.NotImplemented, save);
        Assert.Equal(501, error["error"]!["code"]!.GetValue<int>());
        var erase = await s.PostOkAsync("slots/1?action=erase", new JsonObject());
        Assert.Equal(1, erase["id_slot"]!.GetValue<int>());
        var (bad, _, _) = await s.PostAsync("slots/999?action=erase", new JsonObject());
        Assert.Equal(HttpStatusCode.BadRequest, bad);

        await using var off = await ServerHarness.StartAsync(configure: o => o with { SlotsEndpoint = false });
        var (offStatus, offBody) = await GetAsync(off, "slots");
        Assert.Equal(HttpStatusCode.NotImplemented, offStatus);
        Assert.Equal("not_supported_error", offBody["error"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task MetricsCarryLlamaCppNamesWithTheEnginesCounts()
    {
        await using var s = await ServerHarness.StartAsync();
        await s.PostOkAsync("completion", new JsonObject { ["prompt"] = "Once upon a time", ["n_predict"] = 7, ["temperature"] = 0 });
        Assert.True(await s.WaitIdleAsync());
        var text = await s.Http.GetStringAsync("metrics", Ct);
        double Value(string name) => double.Parse(text.Split('\n').Single(l => l.StartsWith(name + "{", StringComparison.Ordinal)).Split(' ')[^1], CultureInfo.InvariantCulture);
        var stats = s.Engine.Stats;
        Assert.Equal(stats.PromptTokens, Value("llamacpp:prompt_tokens_total"));
        Assert.Equal(stats.GenerationTokens, Value("llamacpp:tokens_predicted_total"));
        Assert.True(Value("llamacpp:tokens_predicted_total") >= 7);
        Assert.True(Value("llamacpp:prompt_seconds_total") > 0);
        Assert.Equal(0, Value("llamacpp:requests_processing"));
        Assert.Contains("# TYPE llamacpp:prompt_tokens_total counter", text);
        Assert.Contains("sharpinfer:prompt_tokens_total", text);   // ours stay beside them
    }

    [Fact]
    public async Task NativeRoutesNeedTheApiKeyAndAnswerInLlamaServersShape()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { ApiKey = "sekrit" });
        var (status, json, _) = await s.PostAsync("completion", new JsonObject { ["prompt"] = "a" });
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal(401, json["error"]!["code"]!.GetValue<int>());
        Assert.Equal("authentication_error", json["error"]!["type"]!.GetValue<string>());
        (status, _, _) = await s.PostAsync("completion", new JsonObject { ["prompt"] = "a", ["n_predict"] = 1 }, apiKey: "sekrit");
        Assert.Equal(HttpStatusCode.OK, status);
    }
}
