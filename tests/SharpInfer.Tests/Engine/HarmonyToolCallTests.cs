using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Engine.Tools;
using SharpInfer.Sampling.Grammar;
using SharpInfer.Tests.Tokenization;
using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Engine;

/// <summary>
/// gpt-oss tool calls: a harmony message to <c>functions.NAME</c> (recipient in the channel or in the role part) becomes
/// an OpenAI tool call however the text is split, its arguments compact JSON; a call whose arguments are not one JSON
/// object stays content as written; the analysis before it is reasoning. The parsed call, sent back as a client would,
/// renders through the harmony template exactly as Jinja2 renders the golden round trip; <c>reasoning_content</c> reaches
/// the template as <c>thinking</c>. The forced-call grammar accepts what gpt-oss writes and nothing else.
/// </summary>
public class HarmonyToolCallTests
{
    private static readonly string Template = File.ReadAllText(Path.Combine(TestPaths.Shared, "templates", "openai-gpt-oss-120b.jinja"));

    private static ChatOutputParser.Reply Parse(string text, int piece, bool reasoning = true)
    {
        var p = new ChatOutputParser(ToolCallFormat.Harmony, reasoning, harmony: true);
        var events = new List<ChatOutputEvent>();
        for (int i = 0; i < text.Length; i += piece) p.Push(text.Substring(i, Math.Min(piece, text.Length - i)), events);
        p.Finish(events);
        return ChatOutputParser.Reply.From(events);
    }

    [Theory]
    // the recipient in the channel part, as harmony's documentation writes a call
    [InlineData("<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\", \"unit\": \"c\"}")]
    // the recipient in the role part, as the template renders a call back
    [InlineData("<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{\"city\": \"Paris\", \"unit\": \"c\"}")]
    public void ACommentaryMessageToAFunctionIsAToolCall(string reply)
    {
        foreach (int piece in new[] { reply.Length, 1, 3, 7 })
        {
            var r = Parse(reply, piece);
            Assert.Equal("Need the weather.", r.Reasoning);
            Assert.Null(r.Content);
            var call = Assert.Single(r.Calls);
            Assert.Equal("get_weather", call.Name);
            Assert.Equal("{\"city\":\"Paris\",\"unit\":\"c\"}", call.Arguments);
            Assert.StartsWith("call_", call.Id);
        }
    }

    [Fact]
    public void TheFirstMessageMayCarryTheRecipientRightAfterThePromptsRole()
    {
        // the generation prompt ends with "<|start|>assistant", so the header starts with " to="
        var r = Parse(" to=functions.lookup<|channel|>commentary json<|message|>{\"q\": \"x\"}", 1);
        Assert.Equal("lookup", Assert.Single(r.Calls).Name);
        Assert.Null(r.Content);
    }

    [Fact]
    public void AStrayCommentaryHeaderBeforeTheRealChannelIsSkipped()
    {
        // gpt-oss-20b sometimes writes "<|channel|>commentary to=assistant" before the real channel (llama.cpp's note)
        var r = Parse("<|channel|>commentary to=assistant<|channel|>analysis<|message|>Hmm.<|end|><|start|>assistant<|channel|>final<|message|>Hi", 2);
        Assert.Equal("Hmm.", r.Reasoning);
        Assert.Equal("Hi", r.Content);
        Assert.Empty(r.Calls);
    }

    [Fact]
    public void ArgumentsThatAreNotOneJsonObjectStayContent()
    {
        const string Reply = "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": ";
        foreach (int piece in new[] { Reply.Length, 1 })
        {
            var r = Parse(Reply, piece);
            Assert.Empty(r.Calls);
            Assert.Equal(Reply, r.Content);   // nothing is lost
        }
    }

    [Fact]
    public void WithoutToolParsingACommentaryBodyIsContent()
    {
        var r = ChatOutputParser.Parse("<|channel|>commentary to=functions.f<|message|>{\"a\": 1}", tools: null, reasoning: true, harmony: true);
        Assert.Empty(r.Calls);
        Assert.Equal("{\"a\": 1}", r.Content);
    }

    [Fact]
    public void WithReasoningFormatNoneTheAnalysisMessageStaysInContentAndCallsAreStillParsed()
    {
        const string Reply = "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}";
        foreach (int piece in new[] { Reply.Length, 1 })
        {
            var r = Parse(Reply, piece, reasoning: false);
            Assert.Null(r.Reasoning);
            Assert.Equal("<|channel|>analysis<|message|>Think.<|end|>", r.Content);
            Assert.Equal("f", Assert.Single(r.Calls).Name);
        }
    }

    [Fact]
    public void TheHarmonyTemplateHasItsOwnFormatAndPreservedTokens()
    {
        Assert.Equal(ToolCallFormat.Harmony, ToolCallFormats.Detect(Template));
        var messages = new JsonArray { new JsonObject { ["role"] = "user", ["content"] = "Hi" } };
        var tools = ToolSet.Read(JsonNode.Parse("""[{"type":"function","function":{"name":"f"}}]""")!.AsArray(), null, null);
        var plan = ChatReplyPlan.Create(Template, messages, tools, null, null, otherConstraint: false);
        Assert.Equal(ToolCallFormat.Harmony, plan.Format);
        Assert.Same(messages, plan.Messages);   // no generic JSON instructions: the template describes the tools itself
        Assert.Equal(["<|channel|>", "<|constrain|>", "<|message|>", "<|start|>", "<|end|>"], plan.PreservedTokenTexts);
        // other templates preserve nothing, so their replies render as before
        var qwen = ChatReplyPlan.Create(File.ReadAllText(Path.Combine(TestPaths.Shared, "templates", "Qwen-Qwen3-0.6B.jinja")), messages, tools, null, null, false);
        Assert.Empty(qwen.PreservedTokenTexts);
        Assert.Null(qwen.PreservedTokenIds(TokenizerModels.Get("qwen3-tiny").Vocabulary));
    }

    private static readonly JinjaOptions Options = new()
    {
        Globals = new Dictionary<string, JinjaValue>
        {
            ["strftime_now"] = new JinjaFunction("strftime_now", _ => JinjaValue.From("22 Nov 2026")),
        },
    };

    private static string Render(JsonArray messages, JsonArray tools)
    {
        var plan = ChatReplyPlan.Create(Template, messages, ToolSet.Read(tools, null, null), null, null, otherConstraint: false);
        var f = new ChatFormatter(TokenizerModels.Get("qwen3-tiny"), Template, Options);
        return f.Render(new ChatFormatRequest
        {
            Messages = plan.Messages,
            Tools = tools,
            Variables = new Dictionary<string, JsonNode?> { ["bos_token"] = "<|startoftext|>", ["eos_token"] = "<|return|>" },
        });
    }

    private static JsonObject AssistantWith(ToolCall call) => new()
    {
        ["role"] = "assistant",
        ["content"] = null,
        ["tool_calls"] = new JsonArray(new JsonObject
        {
            ["id"] = call.Id,
            ["type"] = "function",
            ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = call.Arguments },
        }),
    };

    [Fact]
    public void AParsedCallSentBackRendersAsTheGoldenRoundTrip()
    {
        var golden = Golden.Lines("chat/openai-gpt-oss-120b.jsonl").Single(l => l.GetProperty("case").GetString() == "tool_call_round_trip");
        var args = JsonNode.Parse(golden.GetProperty("args").GetRawText())!.AsObject();
        var call = Assert.Single(Parse("<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\", \"unit\": \"c\"}", 5).Calls);
        var sent = args["messages"]!.AsArray();
        var messages = new JsonArray
        {
            sent[0]!.DeepClone(),
            AssistantWith(call),
            new JsonObject { ["role"] = "tool", ["tool_call_id"] = call.Id, ["content"] = sent[2]!["content"]!.GetValue<string>() },
        };
        Assert.Equal(golden.GetProperty("rendered").GetString(), Render(messages, args["tools"]!.AsArray()));
    }

    [Fact]
    public void ReasoningContentOfACallTurnRendersAsItsAnalysis()
    {
        var reference = JsonDocument.Parse(File.ReadAllText(
            Path.Combine(TestPaths.RepoRoot, "tests", "SharpInfer.Tests", "Tokenization", "Data", "harmony-renders.json"))).RootElement
            .EnumerateArray().Single(c => c.GetProperty("case").GetString() == "tool_call_with_analysis");
        var args = JsonNode.Parse(reference.GetProperty("args").GetRawText())!.AsObject();
        var messages = args["messages"]!.DeepClone().AsArray();
        // the reference passes the analysis as content; a client sends back what we returned: reasoning_content, and
        // the content it got (none)
        var assistant = messages[1]!.AsObject();
        assistant["reasoning_content"] = assistant["content"]!.GetValue<string>();
        assistant["content"] = null;
        Assert.Equal(reference.GetProperty("rendered").GetString(), Render(messages, args["tools"]!.AsArray()));
    }

    [Fact]
    public void TheForcedCallGrammarAcceptsWhatGptOssWritesAndNothingElse()
    {
        var tools = ToolSet.Read(JsonNode.Parse("""
            [{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}}]
            """)!.AsArray(), JsonValue.Create("required"), null)!;
        var plan = ChatReplyPlan.Create(Template, new JsonArray { new JsonObject { ["role"] = "user", ["content"] = "Hi" } }, tools, null, null, false);
        var grammar = CompiledGrammar.FromGbnf(plan.ToolGrammar(promptOpensThinking: false)!);
        foreach (var ok in new[]
        {
            "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\"}",
            " to=functions.get_weather<|channel|>commentary json<|message|>{\"city\": \"Paris\"}",
            "<|channel|>analysis<|message|>Think first.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather<|message|>{\"city\": \"Paris\"}",
        })
        {
            Assert.True(GrammarMatches(grammar, ok), ok);
            Assert.Equal("get_weather", Assert.Single(Parse(ok, 1).Calls).Name);
        }
        foreach (var bad in new[]
        {
            "<|channel|>final<|message|>Hello",
            "<|channel|>commentary to=functions.other <|constrain|>json<|message|>{\"city\": \"Paris\"}",
            "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"town\": \"Paris\"}",
            "<|channel|>analysis<|message|>a <|channel|> inside<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather<|message|>{\"city\": \"P\"}",
        })
            Assert.False(GrammarMatches(grammar, bad), bad);
    }

    [Fact]
    public void AConstraintAppliesToTheFinalMessagesBody()
    {
        var plan = ChatReplyPlan.Create(Template, new JsonArray { new JsonObject { ["role"] = "user", ["content"] = "Hi" } }, null, null, null, true);
        const string Json = "root ::= \"{\\\"a\\\": \" [0-9] \"}\"";
        var grammar = CompiledGrammar.FromGbnf(plan.WrapGrammar(Json, promptOpensThinking: false));
        foreach (var ok in new[]
        {
            "<|channel|>final<|message|>{\"a\": 1}",
            "<|channel|>final <|constrain|>json<|message|>{\"a\": 2}",
            "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>{\"a\": 3}",
        })
        {
            Assert.True(GrammarMatches(grammar, ok), ok);
            var r = Parse(ok, 2);
            Assert.StartsWith("{\"a\": ", r.Content);   // the client gets the JSON alone
        }
        foreach (var bad in new[] { "{\"a\": 1}", "<|channel|>commentary<|message|>{\"a\": 1}", "<|channel|>final<|message|>{\"a\": x}" })
            Assert.False(GrammarMatches(grammar, bad), bad);
        // a grammar that writes the harmony messages itself is the whole reply
        const string Whole = "root ::= \"<|channel|>final<|message|>hi\"";
        Assert.Equal(Whole, plan.WrapGrammar(Whole, promptOpensThinking: false));
    }

    private static bool GrammarMatches(CompiledGrammar grammar, string text) =>
        new GrammarAutomaton(grammar).Accepts(System.Text.Encoding.UTF8.GetBytes(text));
}
