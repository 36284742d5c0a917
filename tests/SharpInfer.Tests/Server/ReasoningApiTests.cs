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
        var msg = (await s.PostOkAsync("v1/chat/completions", Body()))["choices"]![0]!["message"]!;
        Assert.Equal("First, plan.\nThen answer.", msg["reasoning_content"]!.GetValue<string>());
        Assert.Equal("The answer is 4.", msg["content"]!.GetValue<string>());

        var none = (await s.PostOkAsync("v1/chat/completions", Body("none")))["choices"]![0]!["message"]!;
        Assert.Null(none["reasoning_content"]);
        Assert.Equal(Reply, none["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task StreamedReasoningDeltasReassemble()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        using var res = await s.PostStreamAsync("v1/chat/completions", Body(stream: true), TestContext.Current.CancellationToken);
        var (chunks, done) = await ServerHarness.ReadAllSseAsync(res, TestContext.Current.CancellationToken);
        Assert.True(done);
        string reasoning = "", content = "";
        int reasoningChunks = 0;
        foreach (var c in chunks)
        {
            var d = c["choices"]![0]!["delta"]!;
            if (d["reasoning_content"]?.GetValue<string>() is { } r)
            {
                reasoning += r;
                reasoningChunks++;
                Assert.Equal("", content);   // all reasoning comes before the answer
            }
            if (d["content"]?.GetValue<string>() is { } t) content += t;
        }
        Assert.Equal("First, plan.\nThen answer.", reasoning);
        Assert.Equal("The answer is 4.", content);
        Assert.True(reasoningChunks > 1, "reasoning is streamed as it comes, not in one piece at the end");
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
