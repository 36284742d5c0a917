using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpInfer.Tests.Server;

/// <summary>Reasoning on the random-weight qwen3-tiny (Qwen3's template writes &lt;think&gt;): a grammar makes the model
/// write a reasoning block, which must come back apart from the answer, whole and streamed.</summary>
public class ReasoningApiTests
{
    private const string Reply = "<think>\nFirst, plan.\nThen answer.\n</think>\n\nThe answer is 4.";

    private static JsonObject Body(string? reasoningFormat = null, bool stream = false)
    {
        var b = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "2+2?" }),
            ["grammar"] = "root ::= " + JsonSerializer.Serialize(Reply),
            ["max_tokens"] = 64,
            ["seed"] = 1,
            ["stream"] = stream,
        };
        if (reasoningFormat != null) b["reasoning_format"] = reasoningFormat;
        return b;
    }

    [Fact]
    public async Task ThinkBlockGoesToReasoningContent()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var reply = await s.ChatReplyAsync(Body());
        Assert.Equal("First, plan.\nThen answer.", reply.Reasoning);
        Assert.Equal("The answer is 4.", reply.Content);

        var none = await s.ChatReplyAsync(Body("none"));
        Assert.Null(none.Reasoning);
        Assert.Equal(Reply, none.Content);
    }

    [Fact]
    public async Task StreamedReasoningDeltasReassemble()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var reply = await s.ChatReplyAsync(Body(stream: true));
        Assert.False(reply.ReasoningAfterContent, reply.Source);   // all reasoning comes before the answer
        Assert.Equal("First, plan.\nThen answer.", reply.Reasoning);
        Assert.Equal("The answer is 4.", reply.Content);
        Assert.True(reply.ReasoningDeltas > 1, "reasoning is streamed as it comes, not in one piece at the end");
    }

    [Fact]
    public async Task EnableThinkingReachesTheTemplate()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        async Task<int> PromptTokens(bool? thinking)
        {
            var b = new JsonObject
            {
                ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" }),
                ["max_tokens"] = 1,
            };
            if (thinking is { } t) b["chat_template_kwargs"] = new JsonObject { ["enable_thinking"] = t };
            return (await s.PostOkAsync("v1/chat/completions", b))["usage"]!["prompt_tokens"]!.GetValue<int>();
        }
        int plain = await PromptTokens(null), on = await PromptTokens(true), off = await PromptTokens(false);
        Assert.Equal(plain, on);
        // Qwen3's template writes an empty "<think>\n\n</think>\n\n" when thinking is off
        var tok = ServerModels.Qwen.Tokenizer;
        Assert.Equal(plain + tok.Encode("<think>\n\n</think>\n\n", addSpecial: false, parseSpecial: true).Length, off);
    }
}
