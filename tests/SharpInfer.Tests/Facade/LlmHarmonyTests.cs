using System.Text.Json.Nodes;
using SharpInfer.Models;

namespace SharpInfer.Tests.Facade;

/// <summary>The <see cref="Llm"/> facade on gpt-oss-tiny: a grammar forces a harmony reply with an analysis message and
/// a commentary call, which comes back as the call and its reasoning, whole and streamed (the same parser as the
/// server's chat completions).</summary>
public class LlmHarmonyTests
{
    private static readonly Lazy<Model> GptOss = new(() => Model.Load(TestModels.Get("gpt-oss-tiny", "q8_0")));

    private const string Reply = "<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant" +
                                 "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Oslo\"}";

    private static readonly LlmChatOptions Options = new()
    {
        Temperature = 0,
        MaxTokens = 256,   // no bias here: the random model may spell the markers byte by byte
        Grammar = "root ::= " + System.Text.Json.JsonSerializer.Serialize(Reply),
        Tools = [new LlmTool("get_weather", "Weather of a city", JsonNode.Parse("""{"type":"object","properties":{"city":{"type":"string"}}}"""))],
    };

    [Fact]
    public async Task AHarmonyCallComesBackAsAToolCall()
    {
        await using var llm = Llm.FromModel(GptOss.Value, new LlmOptions { Threads = 1, ContextLength = 512, ParallelSequences = 2, KvCacheBytes = 16L << 20 });
        var messages = new[] { LlmChatMessage.User("Weather in Oslo?") };
        var r = await llm.ChatAsync(messages, Options, TestContext.Current.CancellationToken);
        Assert.Equal("Need the weather.", r.Reasoning);
        Assert.True(r.Text == "", r.Text);
        var call = Assert.Single(r.ToolCalls);
        Assert.Equal(("get_weather", "{\"city\":\"Oslo\"}"), (call.Name, call.Arguments));
        Assert.Equal(LlmFinishReason.ToolCalls, r.FinishReason);

        var kinds = new List<LlmChatUpdateKind>();
        await foreach (var u in llm.ChatStreamingAsync(messages, Options, TestContext.Current.CancellationToken)) kinds.Add(u.Kind);
        Assert.Equal(LlmChatUpdateKind.Reasoning, kinds[0]);
        Assert.Single(kinds, k => k == LlmChatUpdateKind.ToolCall);
    }
}
