using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Anthropic;
using Anthropic.Models.Messages;
using Microsoft.AspNetCore.TestHost;
using SharpInfer.Server;

namespace SharpInfer.Tests.Server;

/// <summary>
/// <c>/v1/messages</c> and <c>/v1/messages/count_tokens</c> through Anthropic's official .NET SDK and raw HTTP. Replies
/// of the random-weight models are compared with what <c>/v1/chat/completions</c> answers for the same conversation
/// and seed (the Messages API is a translation onto that path); tool use and thinking are forced by grammars.
/// </summary>
public class AnthropicApiTests
{
    internal static AnthropicClient Client(ServerHarness s, string apiKey = "unused") => new()
    {
        ApiKey = apiKey,
        BaseUrl = s.BaseAddress.ToString().TrimEnd('/'),
        HttpClient = s.Http,
        MaxRetries = 0,
    };

    private static MessageCreateParams Params(ServerHarness s, long maxTokens, string user) => new()
    {
        Model = s.ModelId,
        MaxTokens = maxTokens,
        System = "Be brief.",
        Messages = [new UserMessageParam { Content = user }],
    };

    /// <summary>seed is a server extension: deterministic replies to compare with chat completions.</summary>
    private static MessageCreateParams Seeded(MessageCreateParams p, int seed = 5) =>
        MessageCreateParams.FromRawUnchecked(
            p.RawHeaderData, p.RawQueryData,
            new Dictionary<string, JsonElement>(p.RawBodyData) { ["seed"] = JsonSerializer.SerializeToElement(seed) });

    private static async Task<JsonNode> ChatAsync(ServerHarness s, string user, int maxTokens, int seed = 5)
    {
        var json = await s.PostOkAsync("v1/chat/completions", new JsonObject
        {
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "system", ["content"] = "Be brief." },
                new JsonObject { ["role"] = "user", ["content"] = user }),
            ["max_tokens"] = maxTokens,
            ["seed"] = seed,
            ["chat_template_kwargs"] = new JsonObject { ["enable_thinking"] = false },
        });
        return json;
    }

    [Fact]
    public async Task SdkMessageMatchesChatCompletions()
    {
        await using var s = await ServerHarness.StartAsync();
        var client = Client(s);
        Message m = await client.Messages.Create(Seeded(Params(s, 12, "Once upon a time")), TestContext.Current.CancellationToken);
        var chat = await ChatAsync(s, "Once upon a time", 12);
        var choice = chat["choices"]![0]!;

        Assert.StartsWith("msg_", m.ID);
        Assert.Equal("assistant", m.Role.GetString());
        var text = Assert.Single(m.Content);
        Assert.True(text.TryPickText(out var t));
        Assert.Equal(choice["message"]!["content"]!.GetValue<string>(), t.Text);
        Assert.Equal(choice["finish_reason"]!.GetValue<string>() == "length" ? StopReason.MaxTokens : StopReason.EndTurn, m.StopReason!.Value());
        Assert.Equal(chat["usage"]!["completion_tokens"]!.GetValue<long>(), m.Usage.OutputTokens);
        Assert.Equal(chat["usage"]!["prompt_tokens"]!.GetValue<long>(), m.Usage.InputTokens + (m.Usage.CacheReadInputTokens ?? 0));
    }

    [Fact]
    public async Task SdkStreamReassemblesToTheMessage()
    {
        await using var s = await ServerHarness.StartAsync();
        var client = Client(s);
        var p = Seeded(Params(s, 16, "Once upon a time"));
        Message whole = await client.Messages.Create(p, TestContext.Current.CancellationToken);
        var text = new System.Text.StringBuilder();
        var kinds = new List<string>();
        StopReason? stop = null;
        long outputTokens = -1;
        await foreach (var e in client.Messages.CreateStreaming(p, TestContext.Current.CancellationToken))
        {
            if (e.TryPickStart(out _)) kinds.Add("message_start");
            if (e.TryPickContentBlockStart(out _)) kinds.Add("content_block_start");
            if (e.TryPickContentBlockDelta(out var d))
            {
                kinds.Add("content_block_delta");
                Assert.True(d.Delta.TryPickText(out var td));
                text.Append(td.Text);
            }
            if (e.TryPickContentBlockStop(out _)) kinds.Add("content_block_stop");
            if (e.TryPickDelta(out var md))
            {
                kinds.Add("message_delta");
                stop = md.Delta.StopReason?.Value();
                outputTokens = md.Usage.OutputTokens;
            }
            if (e.TryPickStop(out _)) kinds.Add("message_stop");
        }
        Assert.True(whole.Content[0].TryPickText(out var wt));
        Assert.Equal(wt.Text, text.ToString());
        Assert.Equal(whole.StopReason!.Value(), stop);
        Assert.Equal(whole.Usage.OutputTokens, outputTokens);
        Assert.Equal(["message_start", "content_block_start"], kinds.Take(2));
        Assert.Equal(["content_block_stop", "message_delta", "message_stop"], kinds.TakeLast(3));
        Assert.All(kinds.Skip(2).SkipLast(3), k => Assert.Equal("content_block_delta", k));
    }

    [Fact]
    public async Task RawStreamNamesEachEventAndPings()
    {
        await using var s = await ServerHarness.StartAsync();
        var body = new JsonObject
        {
            ["model"] = s.ModelId,
            ["max_tokens"] = 6,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" }),
            ["stream"] = true,
        };
        using var res = await s.PostStreamAsync("v1/messages", body, TestContext.Current.CancellationToken);
        var events = await ResponsesApiTests.ReadNamedSseAsync(res);
        Assert.All(events, e => Assert.Equal(e.Name, e.Data["type"]!.GetValue<string>()));
        Assert.Equal(["message_start", "ping"], events.Take(2).Select(e => e.Name));
        Assert.Equal("message_stop", events[^1].Name);
        var start = events[0].Data["message"]!;
        Assert.Empty(start["content"]!.AsArray());
        Assert.Null(start["stop_reason"]);
    }

    private static readonly string WeatherSchema = """{"type":"object","properties":{"city":{"type":"string","maxLength":12}},"required":["city"],"additionalProperties":false}""";

    private static Tool Weather() => new()
    {
        Name = "get_weather",
        Description = "Weather of a city",
        InputSchema = InputSchema.FromRawUnchecked(JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(WeatherSchema)!),
    };

    [Fact]
    public async Task SdkToolUseRoundTrip()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        // seeded sampling, so every run makes the same call (unseeded, the arguments can run past max_tokens); the SDK
        // has no seed parameter, so the test's transport adds our "seed" extension to each body
        using var seeded = new HttpClient(new SeedingHandler(s.App.GetTestServer().CreateHandler())) { BaseAddress = s.BaseAddress };
        var client = new AnthropicClient { ApiKey = "unused", BaseUrl = s.BaseAddress.ToString().TrimEnd('/'), HttpClient = seeded, MaxRetries = 0 };
        var p = new MessageCreateParams
        {
            Model = s.ModelId,
            MaxTokens = 64,
            Messages = [new UserMessageParam { Content = "Weather in Paris?" }],
            Tools = [Weather()],
            ToolChoice = new ToolChoiceTool { Name = "get_weather" },
        };
        Message m = await client.Messages.Create(p, TestContext.Current.CancellationToken);
        Assert.Equal(StopReason.ToolUse, m.StopReason!.Value());
        var block = Assert.Single(m.Content);
        Assert.True(block.TryPickToolUse(out var use));
        Assert.Equal("get_weather", use.Name);
        Assert.True(use.Input["city"].GetString()!.Length <= 12);

        // send the call and its result back
        var next = new MessageCreateParams
        {
            Model = s.ModelId,
            MaxTokens = 8,
            Messages =
            [
                new UserMessageParam { Content = "Weather in Paris?" },
                new AssistantMessageParam { Content = new List<ContentBlockParam> { new ToolUseBlockParam { ID = use.ID, Name = use.Name, Input = use.Input } } },
                new UserMessageParam { Content = new List<ContentBlockParam> { new ToolResultBlockParam { ToolUseID = use.ID, Content = "21 C and sunny" } } },
            ],
            Tools = [Weather()],
        };
        Message m2 = await client.Messages.Create(next, TestContext.Current.CancellationToken);
        Assert.True(m2.Usage.InputTokens + (m2.Usage.CacheReadInputTokens ?? 0) > m.Usage.InputTokens + (m.Usage.CacheReadInputTokens ?? 0));

        // count_tokens renders the same prompt
        MessageTokensCount count = await client.Messages.CountTokens(new MessageCountTokensParams
        {
            Model = s.ModelId,
            Messages = next.Messages,
            Tools = [Weather()],
        }, TestContext.Current.CancellationToken);
        Assert.Equal(m2.Usage.InputTokens + (m2.Usage.CacheReadInputTokens ?? 0), count.InputTokens);
    }

    [Fact]
    public async Task StreamedToolUseSendsInputJsonDeltas()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var body = new JsonObject
        {
            ["model"] = s.ModelId,
            ["max_tokens"] = 64,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Weather?" }),
            ["tools"] = new JsonArray(new JsonObject { ["name"] = "get_weather", ["input_schema"] = JsonNode.Parse(WeatherSchema) }),
            ["tool_choice"] = new JsonObject { ["type"] = "any" },
            ["stream"] = true,
            ["seed"] = 1,   // seeded sampling: the same arguments every run (unseeded, they can run past max_tokens)
        };
        using var res = await s.PostStreamAsync("v1/messages", body, TestContext.Current.CancellationToken);
        var events = await ResponsesApiTests.ReadNamedSseAsync(res);
        var start = events.First(e => e.Name == "content_block_start").Data["content_block"]!;
        Assert.Equal("tool_use", start["type"]!.GetValue<string>());
        Assert.Equal("get_weather", start["name"]!.GetValue<string>());
        string json = string.Concat(events.Where(e => e.Name == "content_block_delta")
                                          .Select(e => e.Data["delta"]!["partial_json"]!.GetValue<string>()));
        Assert.True(JsonNode.Parse(json)!["city"]!.GetValue<string>().Length <= 12);
        Assert.Equal("tool_use", events.Single(e => e.Name == "message_delta").Data["delta"]!["stop_reason"]!.GetValue<string>());
    }

    private const string Reply = "<think>\nFirst, plan.\n</think>\n\nThe answer is 4.";

    [Fact]
    public async Task ThinkingBlocksOnlyWhenEnabled()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        JsonObject Body(bool thinking)
        {
            var b = new JsonObject
            {
                ["model"] = s.ModelId,
                ["max_tokens"] = 64,
                ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "2+2?" }),
                ["grammar"] = "root ::= " + JsonSerializer.Serialize(Reply),
                ["seed"] = 1,
            };
            if (thinking) b["thinking"] = new JsonObject { ["type"] = "enabled", ["budget_tokens"] = 1024 };
            return b;
        }
        // off (Anthropic's default): the reasoning the model wrote is not returned
        var off = await s.PostOkAsync("v1/messages", Body(false));
        var block = Assert.Single(off["content"]!.AsArray())!;
        Assert.Equal("text", block["type"]!.GetValue<string>());
        Assert.Equal("The answer is 4.", block["text"]!.GetValue<string>());

        // on: thinking blocks come first, and the reply is chat completions' reasoning_content and content
        var on = await s.PostOkAsync("v1/messages", Body(true));
        var chatBody = Body(true);
        chatBody.Remove("thinking");
        chatBody.Remove("model");
        chatBody["chat_template_kwargs"] = new JsonObject { ["enable_thinking"] = true };
        var chat = (await s.PostOkAsync("v1/chat/completions", chatBody))["choices"]![0]!["message"]!;
        var blocks = on["content"]!.AsArray();
        string thinkingText = string.Concat(blocks.Where(b => b!["type"]!.GetValue<string>() == "thinking").Select(b => b!["thinking"]!.GetValue<string>()));
        string text = string.Concat(blocks.Where(b => b!["type"]!.GetValue<string>() == "text").Select(b => b!["text"]!.GetValue<string>()));
        Assert.Equal(chat["reasoning_content"]?.GetValue<string>() ?? "", thinkingText);
        Assert.Equal(chat["content"]?.GetValue<string>() ?? "", text);
        Assert.NotEqual("", thinkingText);
        Assert.Equal("thinking", blocks[0]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task StopSequenceIsReported()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var body = new JsonObject
        {
            ["model"] = s.ModelId,
            ["max_tokens"] = 64,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "2+2?" }),
            ["grammar"] = "root ::= " + JsonSerializer.Serialize("The answer is 4."),
            ["stop_sequences"] = new JsonArray("zzz", "is"),
        };
        var json = await s.PostOkAsync("v1/messages", body);
        Assert.Equal("stop_sequence", json["stop_reason"]!.GetValue<string>());
        Assert.Equal("is", json["stop_sequence"]!.GetValue<string>());
        Assert.Equal("The answer ", json["content"]![0]!["text"]!.GetValue<string>());
    }

    [Fact]
    public async Task XApiKeyAndBearerAreBothAccepted()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { ApiKey = "sekret" });
        Message m = await Client(s, "sekret").Messages.Create(Params(s, 2, "Hi"), TestContext.Current.CancellationToken);
        Assert.NotEmpty(m.Content);

        var body = new JsonObject { ["model"] = s.ModelId, ["max_tokens"] = 2, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" }) };
        var (ok, _, _) = await s.PostAsync("v1/messages", body, apiKey: "sekret");
        Assert.Equal(HttpStatusCode.OK, ok);

        using var wrong = new HttpRequestMessage(HttpMethod.Post, "v1/messages") { Content = ServerHarness.JsonContent(body) };
        wrong.Headers.Add("x-api-key", "nope");
        wrong.Headers.Add("anthropic-version", "2023-06-01");
        var res = await s.Http.SendAsync(wrong, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, res.StatusCode);
        var error = JsonNode.Parse(await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        Assert.Equal("error", error["type"]!.GetValue<string>());
        Assert.Equal("authentication_error", error["error"]!["type"]!.GetValue<string>());

        await Assert.ThrowsAsync<Anthropic.Exceptions.AnthropicUnauthorizedException>(
            () => Client(s, "nope").Messages.Create(Params(s, 2, "Hi"), TestContext.Current.CancellationToken));
    }

    [Fact]
    public Task StreamEndsWhenTheClientVanishes() =>
        DisconnectCheck.StreamAbortsAsync("v1/messages", new JsonObject
        {
            ["model"] = "stories260K",
            ["max_tokens"] = 900,   // with the ChatML prompt, within the 1024-token context
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Once upon a time" }),
        }, "text_delta");

    /// <summary>Adds <c>"seed": 1</c> to every JSON request body.</summary>
    private sealed class SeedingHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            if (request.Content is { } content && JsonNode.Parse(await content.ReadAsStringAsync(ct)) is JsonObject body)
            {
                body["seed"] = 1;
                request.Content = ServerHarness.JsonContent(body);
            }
            return await base.SendAsync(request, ct);
        }
    }
}
