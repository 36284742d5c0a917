using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Tests.Tokenization;
using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Engine;

/// <summary>
/// An agent's second turn (an assistant message with <c>tool_calls</c> and <c>content: null</c> or no content, then a
/// <c>role: tool</c> message with <c>tool_call_id</c>) renders through real templates exactly as Python's Jinja2 renders
/// what llama-server passes for it. The references are in Data/tool-turn-renders.json, made by
/// Data/make_tool_turn_renders.py.
/// </summary>
public class ToolTurnRenderTests
{
    private static readonly JsonObject Reference = JsonNode.Parse(File.ReadAllText(
        Path.Combine(TestPaths.RepoRoot, "tests", "SharpInfer.Tests", "Engine", "Data", "tool-turn-renders.json")))!.AsObject();

    private static readonly JinjaOptions Options = new()
    {
        Globals = new Dictionary<string, JinjaValue>
        {
            ["strftime_now"] = new JinjaFunction("strftime_now", _ => JinjaValue.From("22 Nov 2026")),
        },
    };

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var (name, _) in Reference["renders"]!.AsObject())
            foreach (var form in new[] { "null", "missing", "string-arguments" })
                data.Add(name, form);
        return data;
    }

    /// <summary>The reference conversation as an OpenAI client sends it: content null (or absent), and for
    /// <c>string-arguments</c> also the arguments as a JSON string.</summary>
    private static JsonArray ClientMessages(string form)
    {
        var messages = Reference["messages"]!.DeepClone().AsArray();
        var assistant = messages[1]!.AsObject();
        Assert.Equal("", assistant["content"]!.GetValue<string>());
        if (form == "missing") assistant.Remove("content");
        else assistant["content"] = null;
        if (form == "string-arguments")
        {
            var fn = assistant["tool_calls"]![0]!["function"]!.AsObject();
            fn["arguments"] = fn["arguments"]!.ToJsonString();
        }
        return messages;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RendersLikeJinja2(string template, string form)
    {
        var source = File.ReadAllText(Path.Combine(TestPaths.Shared, "templates", template + ".jinja"));
        var f = new ChatFormatter(TokenizerModels.Get("qwen3-tiny"), source, Options);
        var text = f.Render(new ChatFormatRequest
        {
            Messages = ClientMessages(form),
            Tools = Reference["tools"]!.DeepClone().AsArray(),
            Variables = new Dictionary<string, JsonNode?> { ["bos_token"] = "<s>", ["eos_token"] = "</s>" },
        });
        Assert.Equal(Reference["renders"]![template]!.GetValue<string>(), text);
    }
}
