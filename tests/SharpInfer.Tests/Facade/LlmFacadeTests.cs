using System.Text;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Sampling;
using SharpInfer.Tests.Engine;
using SharpInfer.Tests.Server;

namespace SharpInfer.Tests.Facade;

/// <summary>The <see cref="Llm"/> facade over stories260K: greedy output identical to the engine's own, concurrent
/// callers batched by the one engine, cancellation that frees the sequence, and typed chat.</summary>
public class LlmFacadeTests
{
    private static LlmOptions Options(bool prefixCaching = true) =>
        new() { Threads = 2, ContextLength = 256, ParallelSequences = 4, PrefixCaching = prefixCaching, KvCacheBytes = 8L << 20 };

    private static readonly GenerationOptions Greedy = new() { Temperature = 0, MaxTokens = 24 };

    /// <summary>What the engine produces for the same prompt directly (its own tokenization as the server's completions).</summary>
    private static string EngineDirect(string prompt, int maxTokens)
    {
        var model = ServerModels.Stories;
        using var engine = new LlmEngine(model, Options().ToEngineOptions());
        var tokens = model.Tokenizer.Encode(prompt, addSpecial: true, parseSpecial: true);
        var text = new StringBuilder();
        foreach (var o in engine.Generate(new EngineRequest { PromptTokens = tokens, Sampling = SamplingParams.Greedy(maxTokens) }))
            text.Append(o.Text);
        return text.ToString();
    }

    [Fact]
    public async Task GreedyGenerationEqualsTheEngineDirectlyWholeAndStreamed()
    {
        string expected = EngineDirect("Once upon a time", Greedy.MaxTokens);
        Assert.False(string.IsNullOrWhiteSpace(expected));
        await using var llm = Llm.FromModel(ServerModels.Stories, Options());
        Assert.Equal(expected, await llm.GenerateAsync("Once upon a time", Greedy, TestContext.Current.CancellationToken));
        var chunks = new List<string>();
        await foreach (var c in llm.GenerateStreamingAsync("Once upon a time", Greedy, TestContext.Current.CancellationToken)) chunks.Add(c);
        Assert.True(chunks.Count > 1, "the reply should arrive in several chunks");
        Assert.Equal(expected, string.Concat(chunks));
    }

    [Fact]
    public async Task ConcurrentCallersAreBatchedAndEachGetsItsOwnReply()
    {
        string[] prompts = ["Once upon a time", "The little dog", "Lily saw a big", "Tom had a red"];
        var alone = new string[prompts.Length];
        await using var llm = Llm.FromModel(ServerModels.Stories, Options(prefixCaching: false));
        for (int i = 0; i < prompts.Length; i++) alone[i] = await llm.GenerateAsync(prompts[i], Greedy, TestContext.Current.CancellationToken);

        // hold the engine's steps until all four calls are queued, so that they are scheduled together
        llm.Engine.HoldSteps();
        Task<string>[] calls;
        try
        {
            calls = prompts.Select(p => llm.GenerateAsync(p, Greedy, TestContext.Current.CancellationToken)).ToArray();
            Assert.Equal(prompts.Length, llm.Engine.ActiveRequests);
        }
        finally
        {
            llm.Engine.ResumeSteps();
        }
        var together = await Task.WhenAll(calls);
        Assert.Equal(alone, together);
        await EngineExactnessTests.WaitIdle(llm.Engine);
        Assert.Equal(prompts.Length, llm.Engine.Stats.MaxConcurrency);
        // the time-averaged concurrency mixes the four runs alone (1 sequence per step) with the batched steps
        double mean = llm.Engine.Stats.TimeAveragedConcurrency;
        Assert.True(mean > 1 && mean < prompts.Length, $"mean concurrency {mean} should lie strictly between 1 and {prompts.Length}");
    }

    [Fact]
    public async Task CancelledCallThrowsAndFreesItsSequence()
    {
        await using var llm = Llm.FromModel(ServerModels.Stories, Options(prefixCaching: false));
        using var cts = new CancellationTokenSource();
        llm.Engine.HoldSteps();
        var stream = llm.GenerateStreamingAsync("Once upon a time", Greedy with { MaxTokens = 200 }, cts.Token).GetAsyncEnumerator();
        var next = stream.MoveNextAsync().AsTask();   // the request is queued, no step runs
        Assert.Equal(1, llm.Engine.ActiveRequests);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => next);
        await stream.DisposeAsync();
        llm.Engine.ResumeSteps();
        await EngineExactnessTests.WaitIdle(llm.Engine);
        Assert.Equal(0, llm.Engine.ActiveRequests);
        Assert.Equal(0, llm.Engine.Stats.KvBlocksUsed);

        // leaving a stream early aborts it too, and the engine goes on serving
        await foreach (var _ in llm.GenerateStreamingAsync("Once upon a time", Greedy with { MaxTokens = 200 }, TestContext.Current.CancellationToken)) break;
        await EngineExactnessTests.WaitIdle(llm.Engine);
        Assert.Equal(0, llm.Engine.Stats.KvBlocksUsed);
        Assert.False(string.IsNullOrEmpty(await llm.GenerateAsync("Once", Greedy, TestContext.Current.CancellationToken)));
        // a token cancelled before the call starts is refused at once
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => llm.GenerateAsync("Once", Greedy, cts.Token));
    }

    [Fact]
    public async Task ChatRendersTheTemplateAndStreamsTheSameReply()
    {
        await using var llm = Llm.FromModel(ServerModels.Stories, Options());
        LlmChatMessage[] messages = [LlmChatMessage.System("You tell stories."), LlmChatMessage.User("Tell me about a cat.")];
        var options = new LlmChatOptions { Temperature = 0, MaxTokens = 16 };
        var reply = await llm.ChatAsync(messages, options, TestContext.Current.CancellationToken);
        Assert.False(string.IsNullOrWhiteSpace(reply.Text));
        Assert.Equal(LlmFinishReason.Length, reply.FinishReason);
        Assert.Equal(16, reply.Usage.CompletionTokens);
        var prompt = ChatFormatter.ForModel(ServerModels.Stories).Format(new ChatFormatRequest
        {
            Messages = [new JsonObject { ["role"] = "system", ["content"] = "You tell stories." }, new JsonObject { ["role"] = "user", ["content"] = "Tell me about a cat." }],
        });
        Assert.Equal(prompt.TokenIds.Length, reply.Usage.PromptTokens);

        var updates = new List<LlmChatUpdate>();
        await foreach (var u in llm.ChatStreamingAsync(messages, options, TestContext.Current.CancellationToken)) updates.Add(u);
        Assert.Equal(reply.Text, string.Concat(updates.Where(u => u.Kind == LlmChatUpdateKind.Text).Select(u => u.Text)));
        Assert.Equal(LlmChatUpdateKind.Finished, updates[^1].Kind);
        Assert.Equal(reply.Usage with { CachedPromptTokens = 0 }, updates[^1].Usage! with { CachedPromptTokens = 0 });
    }

    [Fact]
    public async Task ForcedToolCallAndJsonSchemaFollowTheirGrammars()
    {
        await using var llm = Llm.FromModel(ServerModels.Qwen, Options());
        var schema = JsonNode.Parse("""{"type":"object","properties":{"days":{"type":"integer","minimum":1,"maximum":9}},"required":["days"]}""");
        var tool = new LlmTool("get_forecast", "The weather forecast.", schema);
        var reply = await llm.ChatAsync([LlmChatMessage.User("Weather?")],
            new LlmChatOptions { Tools = [tool], ToolChoice = LlmToolChoice.Function("get_forecast"), MaxTokens = 120, Seed = 3 },
            TestContext.Current.CancellationToken);
        Assert.Equal(LlmFinishReason.ToolCalls, reply.FinishReason);
        var call = Assert.Single(reply.ToolCalls);
        Assert.Equal("get_forecast", call.Name);
        int days = JsonNode.Parse(call.Arguments)!["days"]!.GetValue<int>();
        Assert.InRange(days, 1, 9);

        // the call and its result go back into the conversation, rendered by the template as a tool turn
        var second = await llm.ChatAsync(
            [LlmChatMessage.User("Weather?"), LlmChatMessage.Assistant(null, [call]), LlmChatMessage.ToolResult(call.Id, "sunny", "get_forecast")],
            new LlmChatOptions { Tools = [tool], ToolChoice = LlmToolChoice.None, Json = true, JsonSchema = JsonNode.Parse("""{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}"""), MaxTokens = 60, Seed = 3 },
            TestContext.Current.CancellationToken);
        Assert.True(second.Usage.PromptTokens > reply.Usage.PromptTokens);
        Assert.Equal(LlmFinishReason.Stop, second.FinishReason);
        Assert.IsType<bool>(JsonNode.Parse(second.Text)!["ok"]!.GetValue<bool>());
    }
}
