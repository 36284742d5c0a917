using System.Net;
using System.Text.Json.Nodes;

namespace SharpInfer.Tests.Server;

/// <summary>Malformed /v1/responses and /v1/messages requests: each gets the right 4xx in its API's error shape
/// (OpenAI's <c>{"error": {message, type, param, code}}</c>, Anthropic's <c>{"type": "error", "error": {type, message}}</c>).</summary>
public class TranslatedApiErrorTests
{
    private const string Msgs = """[{"role":"user","content":"Hi"}]""";

    public static TheoryData<string, int, string> Responses => new()
    {
        { """{}""", 400, "input" },
        { """{"input":5}""", 400, "input" },
        { """{"input":[]}""", 400, "input" },
        { """{"input":[{"type":"message","role":"robot","content":"x"}]}""", 400, "input[0].role" },
        { """{"input":[{"role":"user","content":[{"type":"input_image","image_url":"http://x"}]}]}""", 400, "input[0].content[0].type" },
        { """{"input":[{"type":"function_call","name":"f","arguments":"{}"}]}""", 400, "input[0].call_id" },
        { """{"input":[{"type":"function_call_output","call_id":"c"}]}""", 400, "input[0].output" },
        { """{"input":[{"type":"item_reference","id":"x"}]}""", 400, "input[0].type" },
        { """{"input":"x","tools":[{"type":"web_search"}]}""", 400, "tools[0].type" },
        { """{"input":"x","tools":[{"type":"function"}]}""", 400, "tools[0].name" },
        { """{"input":"x","tool_choice":{"type":"function","name":"nope"}}""", 400, "tool_choice" },
        { """{"input":"x","max_output_tokens":0}""", 400, "max_output_tokens" },
        { """{"input":"x","max_output_tokens":"many"}""", 400, "max_output_tokens" },
        { """{"input":"x","temperature":"hot"}""", 400, "temperature" },
        { """{"input":"x","text":{"format":{"type":"xml"}}}""", 400, "text.format.type" },
        { """{"input":"x","text":{"format":{"type":"json_schema","name":"s"}}}""", 400, "text.format.schema" },
        { """{"input":"x","background":true}""", 400, "background" },
        { """{"input":"x","truncation":"auto"}""", 400, "truncation" },
        { """{"input":"x","include":["reasoning.encrypted_content"]}""", 400, "include" },
        { """{"input":"x","previous_response_id":"resp_missing"}""", 404, "previous_response_id" },
        { """{"input":"x","model":"gpt-9"}""", 404, "model" },
        { """{"input":"x","stream":"yes"}""", 400, "stream" },
    };

    [Theory]
    [MemberData(nameof(Responses))]
    public async Task ResponsesErrorsAreOpenAiShaped(string body, int status, string param)
    {
        await using var s = await ServerHarness.StartAsync();
        var (code, json, _) = await s.PostAsync("v1/responses", JsonNode.Parse(body)!);
        Assert.True((int)code == status, $"{body} answered {(int)code}: {json.ToJsonString()}");
        var error = json["error"]!;
        Assert.Equal(param, error["param"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(error["message"]!.GetValue<string>()));
        Assert.Equal(status == 404 && param == "model" ? "not_found_error" : "invalid_request_error", error["type"]!.GetValue<string>());
    }

    public static TheoryData<string, int, string> Messages => new()
    {
        { $$$"""{"max_tokens":5,"messages":{{{Msgs}}}}""", 400, "'model'" },
        { $$$"""{"model":"stories260K","messages":{{{Msgs}}}}""", 400, "'max_tokens'" },
        { $$$"""{"model":"stories260K","max_tokens":0,"messages":{{{Msgs}}}}""", 400, "'max_tokens'" },
        { """{"model":"stories260K","max_tokens":5}""", 400, "'messages'" },
        { """{"model":"stories260K","max_tokens":5,"messages":[]}""", 400, "'messages'" },
        { """{"model":"stories260K","max_tokens":5,"messages":[{"role":"system","content":"x"}]}""", 400, "'messages[0].role'" },
        { """{"model":"stories260K","max_tokens":5,"messages":[{"role":"user"}]}""", 400, "'messages[0].content'" },
        { """{"model":"stories260K","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{}}]}]}""", 400, "'messages[0].content[0].type'" },
        { """{"model":"stories260K","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}""", 400, "'messages[0].content[0].tool_use_id'" },
        { """{"model":"stories260K","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":[1]}]}]}""", 400, "'messages[0].content[0].input'" },
        { $$$"""{"model":"stories260K","max_tokens":5,"messages":{{{Msgs}}},"system":5}""", 400, "'system'" },
        { $$$"""{"model":"stories260K","max_tokens":5,"messages":{{{Msgs}}},"tools":[{"name":"f"}]}""", 400, "'tools[0].input_schema'" },
        { $$$"""{"model":"stories260K","max_tokens":5,"messages":{{{Msgs}}},"tools":[{"type":"web_search_20250305","name":"web_search"}]}""", 400, "'tools[0].type'" },
        { $$$"""{"model":"stories260K","max_tokens":5,"messages":{{{Msgs}}},"tool_choice":{"type":"sometimes"}}""", 400, "'tool_choice.type'" },
        { $$$"""{"model":"stories260K","max_tokens":5,"messages":{{{Msgs}}},"tool_choice":{"type":"any"}}""", 400, "'tool_choice'" },
        { $$$"""{"model":"stories260K","max_tokens":5,"messages":{{{Msgs}}},"stop_sequences":[1]}""", 400, "'stop_sequences'" },
        { $$$"""{"model":"stories260K","max_tokens":5,"messages":{{{Msgs}}},"temperature":"hot"}""", 400, "'temperature'" },
        { $$$"""{"model":"stories260K","max_tokens":5,"messages":{{{Msgs}}},"thinking":{"type":"maybe"}}""", 400, "'thinking.type'" },
        { $$$"""{"model":"stories260K","max_tokens":5,"messages":{{{Msgs}}},"mcp_servers":[]}""", 400, "'mcp_servers'" },
        { $$$"""{"model":"claude-opus","max_tokens":5,"messages":{{{Msgs}}}}""", 404, "claude-opus" },
    };

    [Theory]
    [MemberData(nameof(Messages))]
    public async Task MessagesErrorsAreAnthropicShaped(string body, int status, string mentioned)
    {
        await using var s = await ServerHarness.StartAsync();
        var (code, json, _) = await s.PostAsync("v1/messages", JsonNode.Parse(body)!);
        Assert.True((int)code == status, $"{body} answered {(int)code}: {json.ToJsonString()}");
        Assert.Equal("error", json["type"]!.GetValue<string>());
        Assert.Equal(status == 404 ? "not_found_error" : "invalid_request_error", json["error"]!["type"]!.GetValue<string>());
        Assert.Contains(mentioned, json["error"]!["message"]!.GetValue<string>());
        Assert.Null(json["error"]!["param"]);
    }

    [Fact]
    public async Task NonJsonBodiesAndWrongMethodsKeepEachApisShape()
    {
        await using var s = await ServerHarness.StartAsync();
        using var bad = new StringContent("{nope", System.Text.Encoding.UTF8, "application/json");
        var res = await s.Http.PostAsync("v1/messages/count_tokens", bad, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        var json = JsonNode.Parse(await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        Assert.Equal("invalid_request_error", json["error"]!["type"]!.GetValue<string>());
        Assert.Equal("error", json["type"]!.GetValue<string>());

        var get = await s.Http.GetAsync("v1/messages", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
        Assert.Equal("error", JsonNode.Parse(await get.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["type"]!.GetValue<string>());

        var missing = await s.Http.GetAsync("v1/responses/resp_nope", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("response_not_found", JsonNode.Parse(await missing.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["error"]!["code"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task APromptLongerThanTheContextIsAPlain400EvenWhenStreaming(bool stream)
    {
        await using var s = await ServerHarness.StartAsync();
        string longText = string.Concat(Enumerable.Repeat("once upon a time ", 1200));
        var (code, json, res) = await s.PostAsync("v1/responses", new JsonObject { ["input"] = longText, ["stream"] = stream });
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Equal("application/json", res.Content.Headers.ContentType!.MediaType);
        Assert.Equal("context_length_exceeded", json["error"]!["code"]!.GetValue<string>());
        Assert.Equal("input", json["error"]!["param"]!.GetValue<string>());

        var body = new JsonObject
        {
            ["model"] = s.ModelId,
            ["max_tokens"] = 5,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = longText }),
            ["stream"] = stream,
        };
        (code, json, _) = await s.PostAsync("v1/messages", body);
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Equal("invalid_request_error", json["error"]!["type"]!.GetValue<string>());
        Assert.Contains("maximum context length", json["error"]!["message"]!.GetValue<string>());
    }
}
