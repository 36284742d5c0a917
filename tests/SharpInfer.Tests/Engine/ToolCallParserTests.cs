using SharpInfer.Engine.Tools;

namespace SharpInfer.Tests.Engine;

/// <summary>Auto-mode parsing of replies into content, reasoning and tool calls, for each format; and the same result
/// however the reply is split into streamed pieces.</summary>
public class ToolCallParserTests
{
    private static ChatOutputParser.Reply Parse(string text, ToolCallFormat? f, bool reasoning = false, bool inside = false) =>
        ChatOutputParser.Parse(text, f, reasoning, inside);

    private static string Calls(ChatOutputParser.Reply r) => string.Join(";", r.Calls.Select(c => $"{c.Name}({c.Arguments})"));

    [Theory]
    // Hermes / Qwen: blocks anywhere, text around them kept
    [InlineData(ToolCallFormat.Hermes, "<tool_call>\n{\"name\": \"w\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", null, "w({\"city\":\"Paris\"})")]
    [InlineData(ToolCallFormat.Hermes, "Let me check.\n<tool_call>\n{\"name\": \"w\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\nDone.", "Let me check.\n\nDone.", "w({\"city\":\"Paris\"})")]
    [InlineData(ToolCallFormat.Hermes, "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"b\", \"arguments\": \"{\\\"x\\\": 1}\"}</tool_call>", null, "a({});b({\"x\":1})")]
    [InlineData(ToolCallFormat.Hermes, "<tool_call>{\"name\": \"w\", \"arguments\": {\"city\": </tool_call> after", "<tool_call>{\"name\": \"w\", \"arguments\": {\"city\": </tool_call> after", "")]
    [InlineData(ToolCallFormat.Hermes, "<tool_call>{\"arguments\": {}}</tool_call>", "<tool_call>{\"arguments\": {}}</tool_call>", "")]
    [InlineData(ToolCallFormat.Hermes, "text <tool_call>{\"name\": \"w\"", "text <tool_call>{\"name\": \"w\"", "")]
    [InlineData(ToolCallFormat.Hermes, "a < b and <tool_ is not a call", "a < b and <tool_ is not a call", "")]
    [InlineData(ToolCallFormat.Hermes, "  plain answer \n", "  plain answer \n", "")]
    // Llama 3: JSON at the start (the <|python_tag|> control token decodes to nothing) or after a written tag
    [InlineData(ToolCallFormat.Llama3, "{\"name\": \"w\", \"parameters\": {\"city\": \"Rome\"}}", null, "w({\"city\":\"Rome\"})")]
    [InlineData(ToolCallFormat.Llama3, " {\"type\": \"function\", \"name\": \"w\", \"parameters\": {}}; {\"name\": \"v\", \"parameters\": {\"a\": [1]}} ok", " ok", "w({});v({\"a\":[1]})")]
    [InlineData(ToolCallFormat.Llama3, "Sure: <|python_tag|>{\"name\": \"w\", \"parameters\": {}}", "Sure:", "w({})")]
    [InlineData(ToolCallFormat.Llama3, "{\"answer\": 42}", "{\"answer\": 42}", "")]
    [InlineData(ToolCallFormat.Llama3, "{\"name\": \"w\", \"parameters\": {", "{\"name\": \"w\", \"parameters\": {", "")]
    [InlineData(ToolCallFormat.Llama3, "The set {1, 2} is small.", "The set {1, 2} is small.", "")]
    // Mistral: [TOOL_CALLS] then an array (or the array at the start: the marker is a control token)
    [InlineData(ToolCallFormat.Mistral, "[TOOL_CALLS][{\"name\": \"w\", \"arguments\": {\"c\": \"x\"}, \"id\": \"abcDEF123\"}]", null, "w({\"c\":\"x\"})")]
    [InlineData(ToolCallFormat.Mistral, "Checking. [TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {}}]", "Checking.", "a({});b({})")]
    [InlineData(ToolCallFormat.Mistral, "[{\"name\": \"a\", \"arguments\": {}}]", null, "a({})")]
    [InlineData(ToolCallFormat.Mistral, "[TOOL_CALLS][{\"name\": 3}]", "[TOOL_CALLS][{\"name\": 3}]", "")]
    [InlineData(ToolCallFormat.Mistral, "[1] is a footnote", "[1] is a footnote", "")]
    // generic: the whole reply is JSON
    [InlineData(ToolCallFormat.Generic, "{\"tool_call\": {\"name\": \"w\", \"arguments\": {\"q\": 1}}}", null, "w({\"q\":1})")]
    [InlineData(ToolCallFormat.Generic, "{\"tool_calls\": [{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {}}]}", null, "a({});b({})")]
    [InlineData(ToolCallFormat.Generic, "{\"response\": \"Hello there\"}", "Hello there", "")]
    [InlineData(ToolCallFormat.Generic, "{\"tool_call\": {\"nme\": \"w\"}}", "{\"tool_call\": {\"nme\": \"w\"}}", "")]
    [InlineData(ToolCallFormat.Generic, "Just text {not json}", "Just text {not json}", "")]
    public void ParsesCallsAndKeepsText(Enum formatValue, string reply, string? content, string calls)
    {
        var format = (ToolCallFormat)formatValue;
        var r = Parse(reply, format);
        Assert.Equal(content, r.Content);
        Assert.Equal(calls, Calls(r));
        Assert.Null(r.Reasoning);
        Assert.All(r.Calls, c => Assert.Matches(format == ToolCallFormat.Mistral ? "^[A-Za-z0-9]{9}$" : "^call_[A-Za-z0-9]{24}$", c.Id));
        AssertSplitInvariant(reply, format, false, false);
    }

    [Fact]
    public void MistralKeepsTheModelsId()
    {
        var r = Parse("[TOOL_CALLS][{\"name\": \"w\", \"arguments\": {}, \"id\": \"abcDEF123\"}]", ToolCallFormat.Mistral);
        Assert.Equal("abcDEF123", r.Calls[0].Id);
    }

    [Theory]
    [InlineData("<think>\nplan it\n</think>\n\nThe answer.", false, "plan it", "The answer.")]
    [InlineData("plan it\n</think>\n\nThe answer.", true, "plan it", "The answer.")]
    [InlineData("<think>\n\n</think>\n\nThe answer.", false, null, "The answer.")]
    [InlineData("<think>never closed", false, "never closed", null)]
    [InlineData("No thinking here. <think>x</think>", false, null, "No thinking here. <think>x</think>")]
    [InlineData("<thin", false, null, "<thin")]
    public void SplitsReasoning(string reply, bool inside, string? reasoning, string? content)
    {
        var r = Parse(reply, null, reasoning: true, inside);
        Assert.Equal(reasoning, r.Reasoning);
        Assert.Equal(content, r.Content);
        AssertSplitInvariant(reply, null, true, inside);
        // without reasoning parsing (reasoning_format none) the text stays as it is
        Assert.Equal(reply, Parse(reply, null).Content);
    }

    [Fact]
    public void ReasoningThenToolCall()
    {
        const string reply = "<think>\nI need the weather.\n</think>\n\n<tool_call>\n{\"name\": \"w\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>";
        var r = Parse(reply, ToolCallFormat.Hermes, reasoning: true);
        Assert.Equal("I need the weather.", r.Reasoning);
        Assert.Null(r.Content);
        Assert.Equal("w({\"city\":\"Oslo\"})", Calls(r));
        AssertSplitInvariant(reply, ToolCallFormat.Hermes, true, false);
    }

    /// <summary>Every split into two pieces, one character at a time, and random splits give the whole-text result.</summary>
    private static void AssertSplitInvariant(string reply, ToolCallFormat? f, bool reasoning, bool inside)
    {
        string Key(ChatOutputParser.Reply r) => $"{r.Content}|{r.Reasoning}|{Calls(r)}";
        var whole = Key(Parse(reply, f, reasoning, inside));
        var splits = new List<List<string>>();
        for (int i = 1; i < reply.Length; i++) splits.Add([reply[..i], reply[i..]]);
        splits.Add(reply.Select(c => c.ToString()).ToList());
        var rng = new Random(7);
        for (int k = 0; k < 20; k++)
        {
            var pieces = new List<string>();
            for (int i = 0; i < reply.Length;)
            {
                int n = Math.Min(reply.Length - i, rng.Next(1, 6));
                pieces.Add(reply.Substring(i, n));
                i += n;
            }
            splits.Add(pieces);
        }
        foreach (var pieces in splits)
        {
            var p = new ChatOutputParser(f, reasoning, inside);
            var events = new List<ChatOutputEvent>();
            foreach (var piece in pieces) p.Push(piece, events);
            p.Finish(events);
            Assert.Equal(whole, Key(ChatOutputParser.Reply.From(events)));
        }
    }
}
