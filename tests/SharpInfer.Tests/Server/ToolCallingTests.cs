using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace SharpInfer.Tests.Server;

/// <summary>
/// Tool calling through /v1/chat/completions on the random-weight qwen3-tiny (Qwen3's template: Hermes-style
/// <c>&lt;tool_call&gt;</c> blocks). Its unconstrained output is noise, so every call it makes under
/// <c>tool_choice: required</c> or a named function comes from the grammar: each must parse and its arguments must
/// pass an independent JSON-Schema validator. Parameter schemas bound what a random model could otherwise run on
/// forever (string lengths, array sizes).
/// </summary>
public class ToolCallingTests
{
    private static readonly string[] Parameters =
    [
        """{"type":"object","properties":{"city":{"type":"string","maxLength":12},"unit":{"enum":["c","f"]}},"required":["city"],"additionalProperties":false}""",
        """{"type":"object","properties":{"a":{"type":"integer","minimum":-50,"maximum":50},"b":{"type":"number"},"op":{"enum":["add","mul"]}},"required":["a","b","op"],"additionalProperties":false}""",
        """{"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string","pattern":"^[A-Z]{3}-[0-9]{2}$"},"qty":{"type":"integer","minimum":1,"maximum":9}},"required":["sku","qty"],"additionalProperties":false},"minItems":1,"maxItems":3},"rush":{"type":"boolean"}},"required":["items"],"additionalProperties":false}""",
        """{"type":"object","properties":{}}""",
    ];

    private static readonly string[] Names = ["get_weather", "calc", "order", "ping"];

    internal static JsonArray Tools() => new([.. Names.Select((n, i) => (JsonNode)new JsonObject
    {
        ["type"] = "function",
        ["function"] = new JsonObject { ["name"] = n, ["description"] = "tool " + n, ["parameters"] = JsonNode.Parse(Parameters[i]) },
    })]);

    internal static JsonObject Body(int seed, JsonNode toolChoice, int n = 1) => new()
    {
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Help me." }),
        ["tools"] = Tools(),
        ["tool_choice"] = toolChoice,
        ["max_tokens"] = 512,
        ["seed"] = seed,
        ["n"] = n,
    };

    /// <summary>Every call of a choice: a known name, arguments valid under that tool's schema.</summary>
    internal static List<(string Name, string Args)> AssertValidCalls(JsonNode choice)
    {
        var message = choice["message"]!;
        var calls = message["tool_calls"]?.AsArray() ?? throw new Xunit.Sdk.XunitException("no tool_calls in " + choice.ToJsonString());
        Assert.NotEmpty(calls);
        Assert.Equal("tool_calls", choice["finish_reason"]!.GetValue<string>());
        Assert.Null(message["content"]);
        var result = new List<(string, string)>();
        foreach (var c in calls)
        {
            Assert.Matches("^call_[A-Za-z0-9]{24}$", c!["id"]!.GetValue<string>());
            Assert.Equal("function", c["type"]!.GetValue<string>());
            string name = c["function"]!["name"]!.GetValue<string>();
            string args = c["function"]!["arguments"]!.GetValue<string>();
            int tool = Array.IndexOf(Names, name);
            Assert.True(tool >= 0, $"unknown tool '{name}'");
            using var doc = JsonDocument.Parse(args);
            var eval = JsonSchema.FromText(Parameters[tool]).Evaluate(doc.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
            Assert.True(eval.IsValid, $"{name}({args}) does not match its schema");
            result.Add((name, args));
        }
        return result;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(11)]
    [InlineData(21)]
    public async Task RequiredAlwaysGivesSchemaValidCalls(int seed)
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var json = await s.PostOkAsync("v1/chat/completions", Body(seed, "required", n: 6));
        foreach (var choice in json["choices"]!.AsArray())
            Assert.Single(AssertValidCalls(choice!));   // parallel_tool_calls defaults to false, as in llama-server
    }

    [Theory]
    [InlineData("get_weather")]
    [InlineData("calc")]
    [InlineData("order")]
    [InlineData("ping")]
    public async Task NamedFunctionIsTheOnlyOneCalled(string name)
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var choice = new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = name } };
        var json = await s.PostOkAsync("v1/chat/completions", Body(5, choice, n: 4));
        foreach (var c in json["choices"]!.AsArray())
            Assert.All(AssertValidCalls(c!), call => Assert.Equal(name, call.Name));
    }

    [Fact]
    public async Task ParallelCallsAreEachValidAndATruncatedCallStaysText()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        // the random model likes to stop after one call; pushing end-of-generation away makes it call again and
        // again until max_tokens cuts the last call short
        var vocab = ServerModels.Qwen.Tokenizer.Vocabulary;
        var bias = new JsonObject();
        for (int id = 0; id < vocab.Count; id++)
            if (vocab.IsEndOfGeneration(id)) bias[id.ToString(System.Globalization.CultureInfo.InvariantCulture)] = -100;
        var body = Body(3, "required", n: 2);
        body["parallel_tool_calls"] = true;
        body["logit_bias"] = bias;
        body["max_tokens"] = 400;
        var json = await s.PostOkAsync("v1/chat/completions", body);
        foreach (var c in json["choices"]!.AsArray())
        {
            Assert.Equal("length", c!["finish_reason"]!.GetValue<string>());
            var calls = c["message"]!["tool_calls"]!.AsArray();
            Assert.True(calls.Count >= 2, c.ToJsonString());
            foreach (var call in calls)
            {
                int tool = Array.IndexOf(Names, call!["function"]!["name"]!.GetValue<string>());
                using var doc = JsonDocument.Parse(call["function"]!["arguments"]!.GetValue<string>());
                Assert.True(JsonSchema.FromText(Parameters[tool]).Evaluate(doc.RootElement).IsValid);
            }
            // the unfinished call (or the start of its marker) is kept as text
            var rest = c["message"]!["content"]!.GetValue<string>().TrimStart();
            Assert.True(rest.Length > 0 && (rest.StartsWith("<tool_call>", StringComparison.Ordinal) || "<tool_call>".StartsWith(rest, StringComparison.Ordinal)), rest);
        }
    }

    private static readonly Lazy<SharpInfer.Models.Model> Llama3 = new(() => SharpInfer.Models.Model.Load(TestModels.Get("llama3-tiny", "f32")));

    [Fact]
    public async Task TemplateWithoutToolSyntaxUsesTheGenericJsonFormat()
    {
        // llama3-tiny's own template knows nothing of tools: the reply is {"tool_call": ...} / {"tool_calls": [...]},
        // explained to the model in a system message
        await using var s = await ServerHarness.StartAsync(Llama3.Value);
        var json = await s.PostOkAsync("v1/chat/completions", Body(2, "required", n: 3));
        foreach (var c in json["choices"]!.AsArray()) Assert.Single(AssertValidCalls(c!));
        var body = Body(2, "required", n: 3);
        body["parallel_tool_calls"] = true;
        json = await s.PostOkAsync("v1/chat/completions", body);
        foreach (var c in json["choices"]!.AsArray()) AssertValidCalls(c!);
    }

    [Theory]
    [InlineData("required", false)]
    [InlineData("required", true)]
    [InlineData("auto", false)]
    public async Task StreamedDeltasReassembleToTheNonStreamedReply(string toolChoice, bool parallel)
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var body = Body(7, toolChoice);
        body["parallel_tool_calls"] = parallel;
        var whole = await s.ChatReplyAsync(body);

        body["stream"] = true;
        var streamed = await s.ChatReplyAsync(body);
        Assert.NotNull(whole.FinishReason);
        Assert.Equal(whole.FinishReason, streamed.FinishReason);
        Assert.Equal(whole.Calls, streamed.Calls);
        // the role chunk carries content "" (as OpenAI's first chunk does), so "" and null both mean none
        static string? Text(string? t) => string.IsNullOrEmpty(t) ? null : t;
        Assert.Equal(Text(whole.Content), Text(streamed.Content));
        if (toolChoice == "required") Assert.NotEmpty(streamed.Calls);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AutoParsesACallAndKeepsTheTextAroundIt(bool stream)
    {
        // a grammar makes the random model write a reply with text, a call and a malformed call, so auto mode's
        // parsing runs end to end: the call comes out, every other character stays in content
        const string reply = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>\n" +
                             "Also <tool_call>{\"name\": 1}</tool_call> done.";
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var body = Body(1, "auto");
        body["grammar"] = "root ::= " + JsonSerializer.Serialize(reply);
        body["stream"] = stream;
        var answer = await s.ChatReplyAsync(body);
        Assert.Equal("Let me check.\n\nAlso <tool_call>{\"name\": 1}</tool_call> done.", answer.Content);
        Assert.Equal([("get_weather", "{\"city\":\"Oslo\"}")], answer.Calls);
        Assert.Equal("tool_calls", answer.FinishReason);
    }

    [Fact]
    public async Task NoneAndAutoOnNoiseGiveNoCalls()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        foreach (var choice in new[] { "none", "auto" })
        {
            var body = Body(9, choice, n: 2);
            body["max_tokens"] = 24;
            var json = await s.PostOkAsync("v1/chat/completions", body);
            foreach (var c in json["choices"]!.AsArray())
            {
                Assert.Null(c!["message"]!["tool_calls"]);
                Assert.NotEqual("tool_calls", c["finish_reason"]!.GetValue<string>());
                Assert.NotNull(c["message"]!["content"]);
            }
        }
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"tool_choice":"required"}""", "tool_choice", "no 'tools'")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}}}""", "tool_choice", "'b'")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":"always"}""", "tool_choice", "always")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":"required","response_format":{"type":"json_object"}}""", "tool_choice", "cannot be combined")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":""}}]}""", "tools[0].function.name", "non-empty")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"string","format":"email"}}}],"tool_choice":"required"}""", "tools[0].function.parameters", "email")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"reasoning_format":"fancy"}""", "reasoning_format", "fancy")]
    public async Task InvalidToolRequestsAre400(string body, string param, string message)
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var (status, json, _) = await s.PostAsync("v1/chat/completions", JsonNode.Parse(body)!);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(param, json["error"]!["param"]!.GetValue<string>());
        Assert.Contains(message, json["error"]!["message"]!.GetValue<string>());
    }
}
