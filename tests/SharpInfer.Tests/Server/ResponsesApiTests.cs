#pragma warning disable OPENAI001, SCME0001 // the Responses client and its JSON patch (for the seed extension) are marked experimental
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Responses;

namespace SharpInfer.Tests.Server;

/// <summary>
/// <c>/v1/responses</c> through the official OpenAI .NET client and raw HTTP. The random-weight models write noise, so
/// each reply is checked against what <c>/v1/chat/completions</c> answers for the same conversation and seed (the
/// Responses API is a translation onto that path), and tool calls and reasoning are forced by grammars.
/// </summary>
public class ResponsesApiTests
{
    internal static ResponsesClient Client(ServerHarness s)
    {
        var options = new ResponsesClientOptions
        {
            Endpoint = new Uri(s.BaseAddress, "v1"),
            Transport = new HttpClientPipelineTransport(s.Http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = TimeSpan.FromMinutes(5),
        };
        return new ResponsesClient(new ApiKeyCredential("unused"), options);
    }

    private static CreateResponseOptions Options(ServerHarness s, int maxOutput, params ResponseItem[] items)
    {
        var o = new CreateResponseOptions { Model = s.ModelId, MaxOutputTokenCount = maxOutput };
        foreach (var i in items) o.InputItems.Add(i);
        // seed is a server extension: deterministic replies to compare with chat completions
        o.Patch.Set("$.seed"u8, 5);
        return o;
    }

    private static async Task<(string Content, string Finish, int PromptTokens, int CompletionTokens)> ChatAsync(ServerHarness s, JsonArray messages, int maxTokens)
    {
        var json = await s.PostOkAsync("v1/chat/completions", new JsonObject { ["messages"] = messages, ["max_tokens"] = maxTokens, ["seed"] = 5 });
        var choice = json["choices"]![0]!;
        return (choice["message"]!["content"]!.GetValue<string>(), choice["finish_reason"]!.GetValue<string>(),
                json["usage"]!["prompt_tokens"]!.GetValue<int>(), json["usage"]!["completion_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task SdkResponseMatchesChatCompletions()
    {
        await using var s = await ServerHarness.StartAsync();
        var client = Client(s);
        var options = Options(s, 12, ResponseItem.CreateSystemMessageItem("Be brief."), ResponseItem.CreateUserMessageItem("Once upon a time"));
        ResponseResult r = await client.CreateResponseAsync(options, TestContext.Current.CancellationToken);
        var chat = await ChatAsync(s, new JsonArray(
            new JsonObject { ["role"] = "system", ["content"] = "Be brief." },
            new JsonObject { ["role"] = "user", ["content"] = "Once upon a time" }), 12);

        Assert.StartsWith("resp_", r.Id);
        Assert.Equal(chat.Content, r.GetOutputText());
        Assert.Equal(chat.PromptTokens, r.Usage.InputTokenCount);
        Assert.Equal(chat.CompletionTokens, r.Usage.OutputTokenCount);
        Assert.Equal(chat.PromptTokens + chat.CompletionTokens, r.Usage.TotalTokenCount);
        Assert.Equal(chat.Finish == "length" ? ResponseStatus.Incomplete : ResponseStatus.Completed, r.Status);
        if (chat.Finish == "length") Assert.Equal(ResponseIncompleteStatusReason.MaxOutputTokens, r.IncompleteStatusDetails.Reason);
        var message = Assert.IsAssignableFrom<MessageResponseItem>(Assert.Single(r.OutputItems));
        Assert.Equal(MessageRole.Assistant, message.Role);
    }

    [Fact]
    public async Task SdkStreamReassemblesToTheStoredResponse()
    {
        await using var s = await ServerHarness.StartAsync();
        var client = Client(s);
        var options = Options(s, 16, ResponseItem.CreateUserMessageItem("Once upon a time"));
        options.StreamingEnabled = true;
        var text = new System.Text.StringBuilder();
        var sequence = new List<int>();
        var kinds = new List<string>();
        ResponseResult? final = null;
        await foreach (var u in await client.CreateResponseStreamingAsync(options, TestContext.Current.CancellationToken))
        {
            sequence.Add(u.SequenceNumber);
            kinds.Add(u.GetType().Name);
            if (u is StreamingResponseOutputTextDeltaUpdate d) text.Append(d.Delta);
            if (u is StreamingResponseCompletedUpdate c) final = c.Response;
            if (u is StreamingResponseIncompleteUpdate i) final = i.Response;
        }
        Assert.Equal(Enumerable.Range(0, sequence.Count), sequence);
        Assert.Equal(nameof(StreamingResponseCreatedUpdate), kinds[0]);
        Assert.Equal(nameof(StreamingResponseInProgressUpdate), kinds[1]);
        Assert.NotNull(final);
        Assert.Equal(text.ToString(), final.GetOutputText());
        Assert.True(final.Usage.OutputTokenCount is > 0 and <= 16);

        // stored: GET returns the same response
        ResponseResult got = await client.GetResponseAsync(final.Id, TestContext.Current.CancellationToken);
        Assert.Equal(final.GetOutputText(), got.GetOutputText());
        Assert.Equal(final.Usage.OutputTokenCount, got.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task RawStreamHasTheTypedEventsInOrder()
    {
        await using var s = await ServerHarness.StartAsync();
        var body = new JsonObject { ["input"] = "Once upon a time", ["max_output_tokens"] = 10, ["stream"] = true, ["seed"] = 2 };
        using var res = await s.PostStreamAsync("v1/responses", body, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var events = await ReadNamedSseAsync(res);
        var types = events.Select(e => e.Data["type"]!.GetValue<string>()).ToList();
        Assert.All(events, e => Assert.Equal(e.Name, e.Data["type"]!.GetValue<string>()));
        Assert.Equal(Enumerable.Range(0, events.Count), events.Select(e => e.Data["sequence_number"]!.GetValue<int>()));
        var deltas = types.Count(t => t == "response.output_text.delta");
        Assert.True(deltas > 0);
        var expected = new List<string> { "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added" };
        expected.AddRange(Enumerable.Repeat("response.output_text.delta", deltas));
        expected.AddRange(["response.output_text.done", "response.content_part.done", "response.output_item.done"]);
        var last = events[^1].Data;
        expected.Add(last["response"]!["status"]!.GetValue<string>() == "incomplete" ? "response.incomplete" : "response.completed");
        Assert.Equal(expected, types);
        string text = string.Concat(events.Where(e => e.Name == "response.output_text.delta").Select(e => e.Data["delta"]!.GetValue<string>()));
        Assert.Equal(text, events.Single(e => e.Name == "response.output_text.done").Data["text"]!.GetValue<string>());
        Assert.Equal(text, last["response"]!["output"]![0]!["content"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("in_progress", events[0].Data["response"]!["status"]!.GetValue<string>());
    }

    internal static async Task<List<(string Name, JsonObject Data)>> ReadNamedSseAsync(HttpResponseMessage res)
    {
        var list = new List<(string, JsonObject)>();
        using var reader = new StreamReader(await res.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken));
        string? name = null;
        while (await reader.ReadLineAsync(TestContext.Current.CancellationToken) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line["event: ".Length..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                Assert.NotNull(name);
                list.Add((name, (JsonObject)JsonNode.Parse(line["data: ".Length..])!));
                name = null;
            }
            else Assert.Equal("", line);
        }
        return list;
    }

    private static readonly string WeatherSchema = """{"type":"object","properties":{"city":{"type":"string","maxLength":12}},"required":["city"],"additionalProperties":false}""";

    [Fact]
    public async Task SdkFunctionCallRoundTrip()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var client = Client(s);
        var tool = ResponseTool.CreateFunctionTool("get_weather", BinaryData.FromString(WeatherSchema), strictModeEnabled: true, "Weather of a city");
        var first = Options(s, 64, ResponseItem.CreateUserMessageItem("Weather in Paris?"));
        first.Tools.Add(tool);
        first.ToolChoice = ResponseToolChoice.CreateFunctionChoice("get_weather");
        ResponseResult r1 = await client.CreateResponseAsync(first, TestContext.Current.CancellationToken);
        var call = Assert.IsType<FunctionCallResponseItem>(Assert.Single(r1.OutputItems));
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal(ResponseStatus.Completed, r1.Status);
        using (var args = JsonDocument.Parse(call.FunctionArguments))
            Assert.True(args.RootElement.GetProperty("city").GetString()!.Length <= 12);

        // continue with previous_response_id and the call's output
        var second = Options(s, 8, ResponseItem.CreateFunctionCallOutputItem(call.CallId, "{\"temp_c\":21}"));
        second.PreviousResponseId = r1.Id;
        second.Tools.Add(tool);
        ResponseResult r2 = await client.CreateResponseAsync(second, TestContext.Current.CancellationToken);
        Assert.Equal(r1.Id, r2.PreviousResponseId);
        Assert.True(r2.Usage.InputTokenCount > r1.Usage.InputTokenCount);

        // the same conversation sent as a full item list renders the same prompt
        var third = Options(s, 8, ResponseItem.CreateUserMessageItem("Weather in Paris?"),
                            ResponseItem.CreateFunctionCallItem(call.CallId, "get_weather", BinaryData.FromString(call.FunctionArguments.ToString())),
                            ResponseItem.CreateFunctionCallOutputItem(call.CallId, "{\"temp_c\":21}"));
        third.Tools.Add(tool);
        ResponseResult r3 = await client.CreateResponseAsync(third, TestContext.Current.CancellationToken);
        Assert.Equal(r2.Usage.InputTokenCount, r3.Usage.InputTokenCount);
        Assert.Equal(r2.GetOutputText(), r3.GetOutputText());
    }

    [Fact]
    public async Task StreamedFunctionCallHasArgumentEvents()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var body = new JsonObject
        {
            ["input"] = "Weather in Paris?",
            ["tools"] = new JsonArray(new JsonObject { ["type"] = "function", ["name"] = "get_weather", ["parameters"] = JsonNode.Parse(WeatherSchema) }),
            ["tool_choice"] = "required",
            ["max_output_tokens"] = 64,
            ["stream"] = true,
            ["seed"] = 3,
        };
        using var res = await s.PostStreamAsync("v1/responses", body, TestContext.Current.CancellationToken);
        var events = await ReadNamedSseAsync(res);
        var done = events.Single(e => e.Name == "response.function_call_arguments.done").Data;
        string args = string.Concat(events.Where(e => e.Name == "response.function_call_arguments.delta").Select(e => e.Data["delta"]!.GetValue<string>()));
        Assert.Equal(args, done["arguments"]!.GetValue<string>());
        Assert.Equal("get_weather", done["name"]!.GetValue<string>());
        var item = events.Single(e => e.Name == "response.output_item.done").Data["item"]!;
        Assert.Equal("function_call", item["type"]!.GetValue<string>());
        Assert.Equal(args, item["arguments"]!.GetValue<string>());
        Assert.Equal("response.completed", events[^1].Name);
    }

    [Fact]
    public async Task ThinkBlockBecomesAReasoningItem()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var body = new JsonObject
        {
            ["input"] = "2+2?",
            ["grammar"] = "root ::= " + JsonSerializer.Serialize("<think>\nFirst, plan.\n</think>\n\nThe answer is 4."),
            ["max_output_tokens"] = 64,
        };
        var json = await s.PostOkAsync("v1/responses", body);
        var output = json["output"]!.AsArray();
        Assert.Equal(2, output.Count);
        Assert.Equal("reasoning", output[0]!["type"]!.GetValue<string>());
        Assert.Empty(output[0]!["summary"]!.AsArray());
        Assert.Equal("First, plan.", output[0]!["content"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("reasoning_text", output[0]!["content"]![0]!["type"]!.GetValue<string>());
        Assert.Equal("The answer is 4.", output[1]!["content"]![0]!["text"]!.GetValue<string>());
        Assert.True(json["usage"]!["output_tokens_details"]!["reasoning_tokens"]!.GetValue<int>() > 0);
    }

    [Fact]
    public async Task TextFormatJsonSchemaConstrainsTheOutput()
    {
        await using var s = await ServerHarness.StartAsync();
        var schema = """{"type":"object","properties":{"n":{"type":"integer","minimum":0,"maximum":99}},"required":["n"],"additionalProperties":false}""";
        var body = new JsonObject
        {
            ["input"] = "Pick a number",
            ["text"] = new JsonObject { ["format"] = new JsonObject { ["type"] = "json_schema", ["name"] = "pick", ["schema"] = JsonNode.Parse(schema), ["strict"] = true } },
            ["max_output_tokens"] = 64,
            ["seed"] = 4,
        };
        var json = await s.PostOkAsync("v1/responses", body);
        Assert.Equal("completed", json["status"]!.GetValue<string>());
        var text = json["output"]![0]!["content"]![0]!["text"]!.GetValue<string>();
        int n = JsonNode.Parse(text)!["n"]!.GetValue<int>();
        Assert.InRange(n, 0, 99);
        Assert.Equal("json_schema", json["text"]!["format"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task StoreFalseKeepsNothingAndDeleteForgets()
    {
        await using var s = await ServerHarness.StartAsync();
        var kept = await s.PostOkAsync("v1/responses", new JsonObject { ["input"] = "Hi", ["max_output_tokens"] = 2 });
        var notKept = await s.PostOkAsync("v1/responses", new JsonObject { ["input"] = "Hi", ["max_output_tokens"] = 2, ["store"] = false });
        Assert.False(notKept["store"]!.GetValue<bool>());
        string id = kept["id"]!.GetValue<string>(), gone = notKept["id"]!.GetValue<string>();

        var get = await s.Http.GetAsync($"v1/responses/{id}", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal(id, JsonNode.Parse(await get.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["id"]!.GetValue<string>());
        var (status, error, _) = await s.PostAsync("v1/responses", new JsonObject { ["input"] = "Hi", ["previous_response_id"] = gone });
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("previous_response_id", error["error"]!["param"]!.GetValue<string>());
        Assert.Equal("previous_response_not_found", error["error"]!["code"]!.GetValue<string>());

        var del = await s.Http.DeleteAsync($"v1/responses/{id}", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, del.StatusCode);
        Assert.True(JsonNode.Parse(await del.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["deleted"]!.GetValue<bool>());
        Assert.Equal(HttpStatusCode.NotFound, (await s.Http.GetAsync($"v1/responses/{id}", TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await s.Http.DeleteAsync($"v1/responses/{id}", TestContext.Current.CancellationToken)).StatusCode);
    }

    [Fact]
    public Task StreamEndsWhenTheClientVanishes() =>
        DisconnectCheck.StreamAbortsAsync("v1/responses", new JsonObject { ["input"] = "Once upon a time", ["max_output_tokens"] = 900 }, "response.output_text.delta");
}
