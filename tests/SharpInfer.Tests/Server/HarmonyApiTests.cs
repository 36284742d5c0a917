using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Models;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Server;

/// <summary>
/// gpt-oss replies through the live server, on the random-weight gpt-oss-tiny with the harmony template. A grammar
/// forces the reply's text and a logit bias bans every ordinary token that starts with '&lt;', so the harmony markers
/// can only be the marker tokens the model was trained to write (as a real gpt-oss writes them): they must reach the
/// reply's text for <c>analysis</c> to become <c>reasoning_content</c> and <c>final</c> the content, whole and streamed,
/// and for a commentary message to a function to become a tool call. The engine renders a request's preserved control
/// tokens and no others (llama.cpp's default).
/// </summary>
public class HarmonyApiTests
{
    private static readonly Lazy<Model> GptOss = new(() => Model.Load(TestModels.Get("gpt-oss-tiny", "q8_0")));

    private const string Reply = "<|channel|>analysis<|message|>Plan the sum.<|end|><|start|>assistant<|channel|>final<|message|>The answer is 4.";

    /// <summary>-100 on every ordinary token whose text starts with '&lt;' (the markers then come from their own tokens:
    /// llama.cpp makes all five user-defined, so they render whatever the preserved set).</summary>
    private static JsonObject NoTextMarkers(Model m)
    {
        var bias = new JsonObject();
        var v = m.Vocabulary;
        for (int id = 0; id < v.Count; id++)
            if (v.IsNormal(id) && m.Tokenizer.PieceBytes(id) is { Length: > 0 } p && p[0] == (byte)'<') bias[id.ToString()] = -100;
        return bias;
    }

    private static JsonObject Body(Model m, string grammar, bool stream = false) => new()
    {
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "2+2?" }),
        ["grammar"] = "root ::= " + JsonSerializer.Serialize(grammar),
        ["logit_bias"] = NoTextMarkers(m),
        ["max_tokens"] = 160,
        ["temperature"] = 0,   // the text is forced; greedy picks the same spelling every time
        ["stream"] = stream,
    };

    [Fact]
    public async Task AnalysisIsReasoningContentAndFinalIsContent()
    {
        await using var s = await ServerHarness.StartAsync(GptOss.Value);
        var reply = await s.ChatReplyAsync(Body(GptOss.Value, Reply));
        Assert.Equal("Plan the sum.", reply.Reasoning);
        Assert.Equal("The answer is 4.", reply.Content);
        Assert.Equal("stop", reply.FinishReason);

        // reasoning_format none: the reply as generated, markers included, in content
        var raw = Body(GptOss.Value, Reply);
        raw["reasoning_format"] = "none";
        var none = await s.ChatReplyAsync(raw);
        Assert.Null(none.Reasoning);
        Assert.Equal(Reply, none.Content);
    }

    [Fact]
    public async Task StreamedReasoningAndContentReassemble()
    {
        await using var s = await ServerHarness.StartAsync(GptOss.Value);
        var reply = await s.ChatReplyAsync(Body(GptOss.Value, Reply, stream: true));
        Assert.False(reply.ReasoningAfterContent, reply.Source);   // all reasoning comes before the answer
        Assert.Equal("Plan the sum.", reply.Reasoning);
        Assert.Equal("The answer is 4.", reply.Content);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ACommentaryMessageToAFunctionIsAToolCall(bool stream)
    {
        const string Call = "<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant" +
                            "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\"}";
        await using var s = await ServerHarness.StartAsync(GptOss.Value);
        var body = Body(GptOss.Value, Call, stream);
        body["tools"] = JsonNode.Parse("""
            [{"type":"function","function":{"name":"get_weather","description":"Weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]
            """);
        var reply = await s.ChatReplyAsync(body);
        Assert.True(reply.Reasoning != null, reply.Source);
        Assert.Equal("Need the weather.", reply.Reasoning);
        Assert.True(string.IsNullOrEmpty(reply.Content), reply.Content);
        Assert.Equal([("get_weather", "{\"city\":\"Paris\"}")], reply.Calls);
        Assert.Equal("tool_calls", reply.FinishReason);
    }

    [Fact]
    public async Task AForcedCallFollowsTheHarmonyGrammar()
    {
        // tool_choice required: the grammar allows an analysis message first; the bias also bans every token that
        // could start "analysis", so the random model must take the call's header at once
        var m = GptOss.Value;
        await using var s = await ServerHarness.StartAsync(m);
        var bias = NoAnalysis(m);
        var body = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Weather?" }),
            ["tools"] = JsonNode.Parse("""
                [{"type":"function","function":{"name":"get_weather","description":"Weather of a city","parameters":{"type":"object","properties":{"unit":{"enum":["c","f"]}},"required":["unit"],"additionalProperties":false}}}]
                """),
            ["tool_choice"] = "required",
            ["seed"] = 5,
            ["logit_bias"] = bias,
            ["max_tokens"] = 64,
        };
        var choice = (await s.PostOkAsync("v1/chat/completions", body))["choices"]![0]!;
        Assert.Equal("tool_calls", choice["finish_reason"]!.GetValue<string>());
        var call = Assert.Single(choice["message"]!["tool_calls"]!.AsArray())!;
        Assert.Equal("get_weather", call["function"]!["name"]!.GetValue<string>());
        var args = JsonNode.Parse(call["function"]!["arguments"]!.GetValue<string>())!.AsObject();
        Assert.Contains(args["unit"]!.GetValue<string>(), new[] { "c", "f" });
    }

    /// <summary>-100 also on every ordinary token that could start "analysis": the random model must take the final
    /// (or call) header at once instead of an unbounded analysis message.</summary>
    private static JsonObject NoAnalysis(Model m)
    {
        var bias = NoTextMarkers(m);
        for (int id = 0; id < m.Vocabulary.Count; id++)
            if (m.Vocabulary.IsNormal(id) && m.Tokenizer.PieceBytes(id) is { Length: > 0 } p && "analysis"u8.StartsWith(p)) bias[id.ToString()] = -100;
        return bias;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AJsonSchemaConstrainsTheFinalMessage(bool stream)
    {
        var m = GptOss.Value;
        await using var s = await ServerHarness.StartAsync(m);
        var body = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Unit?" }),
            ["response_format"] = JsonNode.Parse("""
                {"type":"json_schema","json_schema":{"name":"u","schema":{"type":"object","properties":{"unit":{"enum":["c","f"]}},"required":["unit"],"additionalProperties":false}}}
                """),
            ["logit_bias"] = NoAnalysis(m),
            ["max_tokens"] = 64,
            ["seed"] = 3,
            ["stream"] = stream,
        };
        var reply = await s.ChatReplyAsync(body);
        if (!stream) Assert.Null(reply.Reasoning);
        string content = reply.Content ?? "";
        // the client gets the final message's body: JSON of the schema, no harmony header
        Assert.True(content.StartsWith('{'), content);
        Assert.Contains(JsonNode.Parse(content)!["unit"]!.GetValue<string>(), new[] { "c", "f" });
    }

    [Fact]
    public async Task TheEngineRendersOnlyTheRequestsPreservedTokens()
    {
        // the same greedy tokens (every step pushed to a control token) with and without the preserved set
        var m = GptOss.Value;
        await using var s = await ServerHarness.StartAsync(m);
        int control = m.Vocabulary.GetId("<|startoftext|>"), call = m.Vocabulary.GetId("<|call|>");
        Assert.True(m.Vocabulary.IsControl(control));
        var prompt = m.Tokenizer.Encode("<|start|>user<|message|>Hi<|end|><|start|>assistant", addSpecial: false);
        async Task<(int[] Ids, string Text)> Run(int[]? preserved)
        {
            var request = new EngineRequest
            {
                PromptTokens = prompt,
                Sampling = SamplingParams.Greedy(4) with { LogitBias = new Dictionary<int, float> { [control] = 100 } },
                PreservedTokens = preserved,
            };
            var ids = new List<int>();
            string text = "";
            await foreach (var o in s.Engine.AddRequest(request, TestContext.Current.CancellationToken))
            {
                ids.AddRange(o.TokenIds);
                text += o.Text;
            }
            return ([.. ids], text);
        }
        var with = await Run([control, call]);
        var without = await Run(null);
        var other = await Run([call]);
        Assert.Equal(Enumerable.Repeat(control, 4), with.Ids);
        Assert.Equal(with.Ids, without.Ids);
        Assert.Equal(string.Concat(Enumerable.Repeat("<|startoftext|>", 4)), with.Text);
        Assert.Equal("", without.Text);
        Assert.Equal("", other.Text);
        await Assert.ThrowsAsync<InvalidRequestException>(async () => await Run([m.Vocabulary.Count]));
    }
}
