using System.Text;
using System.Text.Json.Nodes;
using SharpInfer.Engine.Tools;
using SharpInfer.Sampling.Grammar;

namespace SharpInfer.Tests.Engine;

/// <summary>The forced-call grammars accept exactly well-formed calls of the offered functions in each format (one,
/// or several with parallel calls), and what they accept parses back into those calls.</summary>
public class ToolCallGrammarTests
{
    private static ToolSet Tools(bool parallel, string? forced = null) => ToolSet.Read(
        JsonNode.Parse("""
            [{"type":"function","function":{"name":"w","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":8}},"required":["city"],"additionalProperties":false}}},
             {"type":"function","function":{"name":"n","parameters":{"type":"object","properties":{"k":{"type":"integer","minimum":0,"maximum":9}},"required":["k"],"additionalProperties":false}}}]
            """)!.AsArray(),
        forced is null ? JsonValue.Create("required") : new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = forced } },
        parallel)!;

    private static bool Accepts(string gbnf, string text) => new GrammarAutomaton(CompiledGrammar.FromGbnf(gbnf)).Accepts(Encoding.UTF8.GetBytes(text));

    public static TheoryData<Enum, string, string, string> Calls() => new()
    {
        { ToolCallFormat.Hermes, "<tool_call>\n{\"name\": \"w\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>",
          "<tool_call>\n{\"name\": \"n\", \"arguments\": {\"k\": 3}}\n</tool_call>", "\n" },
        { ToolCallFormat.Llama3, "{\"name\": \"w\", \"parameters\": {\"city\": \"Oslo\"}}", "{\"name\": \"n\", \"parameters\": {\"k\": 3}}", "" },
        { ToolCallFormat.Mistral, "[TOOL_CALLS][{\"name\": \"w\", \"arguments\": {\"city\": \"Oslo\"}, \"id\": \"abcdEFGH1\"}]",
          "[TOOL_CALLS][{\"name\": \"n\", \"arguments\": {\"k\": 3}, \"id\": \"abcdEFGH2\"}]", "" },
        { ToolCallFormat.Generic, "{\"tool_call\": {\"name\": \"w\", \"arguments\": {\"city\": \"Oslo\"}}}", "{\"tool_call\": {\"name\": \"n\", \"arguments\": {\"k\": 3}}}", "" },
    };

    [Theory]
    [MemberData(nameof(Calls))]
    public void AcceptsWellFormedCallsOnly(Enum formatValue, string one, string other, string _)
    {
        var format = (ToolCallFormat)formatValue;
        string g = ToolCallGrammar.Build(format, Tools(parallel: false));
        Assert.True(Accepts(g, one));
        Assert.True(Accepts(g, other));
        Assert.False(Accepts(g, one.Replace("\"w\"", "\"x\"")));                 // unknown function
        Assert.False(Accepts(g, one.Replace("Oslo", "Oslo-Oslo-Oslo")));        // maxLength 8
        Assert.False(Accepts(g, other.Replace("3", "\"3\"")));                  // not an integer
        Assert.False(Accepts(g, "Sure! " + one));                               // no text around a forced call
        foreach (var text in new[] { one, other })
        {
            var reply = ChatOutputParser.Parse(text, format, reasoning: false);
            Assert.Null(reply.Content);
            Assert.Single(reply.Calls);
        }
        // a named function allows that one only
        string named = ToolCallGrammar.Build(format, Tools(parallel: false, forced: "n"));
        Assert.True(Accepts(named, other));
        Assert.False(Accepts(named, one));
    }

    [Fact]
    public void ParallelAllowsSeveralCalls()
    {
        string hermes1 = "<tool_call>\n{\"name\": \"w\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>";
        string hermes2 = "<tool_call>\n{\"name\": \"n\", \"arguments\": {\"k\": 3}}\n</tool_call>";
        Assert.False(Accepts(ToolCallGrammar.Build(ToolCallFormat.Hermes, Tools(false)), hermes1 + "\n" + hermes2));
        string par = ToolCallGrammar.Build(ToolCallFormat.Hermes, Tools(true));
        Assert.True(Accepts(par, hermes1 + "\n" + hermes2));
        Assert.True(Accepts(par, hermes1));
        Assert.Equal(2, ChatOutputParser.Parse(hermes1 + "\n" + hermes2, ToolCallFormat.Hermes, false).Calls.Count);

        string mistral = "[TOOL_CALLS][{\"name\": \"w\", \"arguments\": {\"city\": \"A\"}, \"id\": \"abcdEFGH1\"}, {\"name\": \"n\", \"arguments\": {\"k\": 1}, \"id\": \"abcdEFGH2\"}]";
        Assert.True(Accepts(ToolCallGrammar.Build(ToolCallFormat.Mistral, Tools(true)), mistral));
        Assert.False(Accepts(ToolCallGrammar.Build(ToolCallFormat.Mistral, Tools(false)), mistral));
        string generic = "{\"tool_calls\": [{\"name\": \"w\", \"arguments\": {\"city\": \"A\"}}, {\"name\": \"n\", \"arguments\": {\"k\": 1}}]}";
        Assert.True(Accepts(ToolCallGrammar.Build(ToolCallFormat.Generic, Tools(true)), generic));
        Assert.Equal(2, ChatOutputParser.Parse(generic, ToolCallFormat.Generic, false).Calls.Count);
    }

    [Theory]
    [InlineData("{% if enable_thinking %}<think>{% endif %}<tool_call>", "<tool_call>\n{\"name\": \"n\", \"arguments\": {\"k\": 3}}\n</tool_call>")]
    public void ThinkingOnAllowsAReasoningBlockFirst(string template, string call)
    {
        var on = new Dictionary<string, JsonNode?> { ["enable_thinking"] = true };
        var msgs = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "x" });
        var plan = ChatReplyPlan.Create(template, msgs, Tools(false), null, on, otherConstraint: false);
        string g = plan.ToolGrammar(promptOpensThinking: false)!;
        Assert.True(Accepts(g, call));
        Assert.True(Accepts(g, "<think>\nLet me see: 2 < 3.\n</think>\n\n" + call));
        Assert.False(Accepts(g, "<think>unclosed " + call));
        // the prompt left the block open (DeepSeek-R1): the reasoning's rest comes first, without <think>
        string open = plan.ToolGrammar(promptOpensThinking: true)!;
        Assert.True(Accepts(open, "reasons</think>\n" + call));
        Assert.False(Accepts(open, call));

        // not set: a constrained reply switches thinking off, and the grammar is the bare call grammar
        var off = ChatReplyPlan.Create(template, msgs, Tools(false), null, null, otherConstraint: false);
        Assert.False(off.Variables!["enable_thinking"]!.GetValue<bool>());
        Assert.False(Accepts(off.ToolGrammar(false)!, "<think>x</think>" + call));
        Assert.True(Accepts(off.ToolGrammar(false)!, call));
    }

    [Fact]
    public void AUsersGrammarIsWrappedWithoutNameClashes()
    {
        // rules written llama.cpp-style (no spaces before ::=, continuation lines, comments naming other rules)
        const string user = "root::= expr\n# root is an expr\nexpr ::= term\n  (\"+\" term)*\nterm ::= [0-9]+ | \"(\" expr \")\"\n";
        var msgs = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "x" });
        var on = new Dictionary<string, JsonNode?> { ["enable_thinking"] = true };
        var plan = ChatReplyPlan.Create("<think>{{ enable_thinking }}", msgs, null, null, on, otherConstraint: true);
        string g = plan.WrapGrammar(user, promptOpensThinking: false);
        Assert.True(Accepts(g, "1+(2+3)"));
        Assert.True(Accepts(g, "<think>sum it</think>\n1+2"));
        Assert.False(Accepts(g, "<think>sum it</think>\nroot"));
        Assert.False(Accepts(g, "1+"));
    }
}
