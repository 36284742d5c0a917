using System.Diagnostics;
using System.Text.Json;
using Json.Schema;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SharpInfer.Extensions.AI;
using SharpInfer.KvCache;
using SharpInfer.Tests.Server;

namespace SharpInfer.Tests.ExtensionsAI;

/// <summary><c>llm.AsChatClient()</c>: the reply equals the facade's, streaming, JSON schema output, tools under
/// <c>UseFunctionInvocation()</c>, and composition with <c>UseDistributedCache()</c> and <c>UseOpenTelemetry()</c>.</summary>
public class ChatClientTests
{
    public enum Unit { Celsius, Fahrenheit }

    private static LlmOptions Options() => new() { Threads = 2, ContextLength = 512, ParallelSequences = 2, KvCacheBytes = 16L << 20 };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Records the messages of every call that reaches the SharpInfer client.</summary>
    private sealed class Recorder(IChatClient inner) : DelegatingChatClient(inner)
    {
        public readonly List<List<ChatMessage>> Calls = [];

        public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken ct = default)
        {
            Calls.Add([.. messages]);
            return base.GetResponseAsync(messages, options, ct);
        }

        public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
                                                                                        CancellationToken ct = default)
        {
            Calls.Add([.. messages]);
            return base.GetStreamingResponseAsync(messages, options, ct);
        }
    }

    [Fact]
    public async Task TextAndStreamedRepliesCarryUsageFinishReasonAndModelId()
    {
        await using var llm = Llm.FromModel(ServerModels.Stories, Options());
        var client = llm.AsChatClient();
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 12, Instructions = "You tell stories." };
        var response = await client.GetResponseAsync("Tell me about a cat.", options, Ct);
        var direct = await llm.ChatAsync([LlmChatMessage.System("You tell stories."), LlmChatMessage.User("Tell me about a cat.")],
                                         new LlmChatOptions { Temperature = 0, MaxTokens = 12 }, Ct);
        Assert.Equal(direct.Text, response.Text);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(llm.ModelId, response.ModelId);
        Assert.Equal(direct.Usage.PromptTokens, response.Usage!.InputTokenCount);
        Assert.Equal(12, response.Usage.OutputTokenCount);
        Assert.Equal(direct.Usage.PromptTokens + 12, response.Usage.TotalTokenCount);
        Assert.Equal("sharpinfer", client.GetService<ChatClientMetadata>()!.ProviderName);
        Assert.Same(llm, client.GetService<Llm>());

        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync("Tell me about a cat.", options, Ct)) updates.Add(u);
        Assert.True(updates.Count > 2);
        var streamed = updates.ToChatResponse();
        Assert.Equal(response.Text, streamed.Text);
        Assert.Equal(ChatFinishReason.Length, streamed.FinishReason);
        Assert.Equal(12, streamed.Usage!.OutputTokenCount);
        Assert.All(updates, u => Assert.Equal(llm.ModelId, u.ModelId));
    }

    [Fact]
    public async Task JsonSchemaResponseFormatConstrainsTheReply()
    {
        await using var llm = Llm.FromModel(ServerModels.Qwen, Options());
        var schemaText = """{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":120}},"required":["name","age"]}""";
        using var schema = JsonDocument.Parse(schemaText);
        var response = await llm.AsChatClient().GetResponseAsync("Who are you?",
            new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(schema.RootElement, "person"), MaxOutputTokens = 120, Seed = 5 }, Ct);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        using var reply = JsonDocument.Parse(response.Text);
        Assert.True(JsonSchema.FromText(schemaText).Evaluate(reply.RootElement).IsValid, response.Text);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ForcedToolCallRunsTheFunctionAndTheSecondTurnCarriesItsResult(bool streaming)
    {
        await using var llm = Llm.FromModel(ServerModels.Qwen, Options());
        var invocations = new List<(Unit Unit, long Days)>();
        var forecast = AIFunctionFactory.Create((Unit unit, long days) =>
        {
            invocations.Add((unit, days));
            return $"sunny for {days} days, 21 degrees {unit}";
        }, "get_forecast", "The weather forecast.");
        Recorder? recorder = null;
        var client = llm.AsChatClient().AsBuilder()
            .UseFunctionInvocation(configure: f => f.MaximumIterationsPerRequest = 3)
            .Use(inner => recorder = new Recorder(inner))
            .Build();
        var options = new ChatOptions
        {
            Tools = [forecast],
            ToolMode = streaming ? ChatToolMode.RequireAny : ChatToolMode.RequireSpecific("get_forecast"),
            MaxOutputTokens = 120,
            Seed = 4,
        };
        ChatResponse response;
        if (streaming)
        {
            var updates = new List<ChatResponseUpdate>();
            await foreach (var u in client.GetStreamingResponseAsync("Weather next week?", options, Ct)) updates.Add(u);
            response = updates.ToChatResponse();
        }
        else response = await client.GetResponseAsync("Weather next week?", options, Ct);

        var call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().First();
        Assert.Equal("get_forecast", call.Name);
        using (var args = JsonDocument.Parse(JsonSerializer.Serialize(call.Arguments)))
            Assert.True(JsonSchema.FromText(forecast.JsonSchema.GetRawText()).Evaluate(args.RootElement).IsValid, $"{args.RootElement} vs {forecast.JsonSchema}");
        Assert.Equal(((JsonElement)call.Arguments!["days"]!).GetInt64(), Assert.Single(invocations).Days);

        // the second turn sends the function's result back (FunctionInvokingChatClient makes a forced mode auto after
        // the first round, so the model may answer)
        Assert.True(recorder!.Calls.Count >= 2);
        var result = recorder.Calls[1].SelectMany(m => m.Contents).OfType<FunctionResultContent>().Single();
        Assert.Equal(call.CallId, result.CallId);
        Assert.Contains($"sunny for {invocations[0].Days} days", result.Result?.ToString());
        // … rendered as a tool message answering that call
        var rendered = ChatMessageMapping.ToLlm(recorder.Calls[1], null);
        var tool = Assert.Single(rendered, m => m.Role == LlmChatRole.Tool);
        Assert.Equal(call.CallId, tool.ToolCallId);
        Assert.Contains($"sunny for {invocations[0].Days} days", tool.Content);
        Assert.Equal(call.CallId, Assert.Single(rendered.Single(m => m.Role == LlmChatRole.Assistant).ToolCalls!).Id);
    }

    [Fact]
    public async Task DistributedCacheAnswersTheRepeatedCall()
    {
        await using var llm = Llm.FromModel(ServerModels.Stories, Options());
        var cache = new MemoryDistributedCache(Microsoft.Extensions.Options.Options.Create(new MemoryDistributedCacheOptions()));
        var client = llm.AsChatClient().AsBuilder().UseDistributedCache(cache).Build();
        var options = new ChatOptions { Temperature = 1, MaxOutputTokens = 10 };   // sampled: a second generation would differ
        var first = await client.GetResponseAsync("Tell me a story.", options, Ct);
        var second = await client.GetResponseAsync("Tell me a story.", options, Ct);
        Assert.Equal(first.ResponseId, second.ResponseId);   // each generation has a new id: this one came from the cache
        Assert.Equal(first.Text, second.Text);
        var other = await client.GetResponseAsync("Tell me another story.", options, Ct);
        Assert.NotEqual(first.ResponseId, other.ResponseId);
    }

    [Fact]
    public async Task OpenTelemetryRecordsAnActivityWithTheUsage()
    {
        string source = "SharpInfer.Tests.Otel." + Guid.NewGuid().ToString("N");
        var activities = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == source,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { lock (activities) activities.Add(a); },
        };
        ActivitySource.AddActivityListener(listener);
        await using var llm = Llm.FromModel(ServerModels.Stories, Options());
        var client = llm.AsChatClient().AsBuilder().UseOpenTelemetry(sourceName: source).Build();
        var response = await client.GetResponseAsync("Tell me a story.", new ChatOptions { Temperature = 0, MaxOutputTokens = 8 }, Ct);
        var activity = Assert.Single(activities);
        Assert.Equal(llm.ModelId, activity.GetTagItem("gen_ai.response.model"));
        Assert.Equal((int)response.Usage!.OutputTokenCount!, Convert.ToInt32(activity.GetTagItem("gen_ai.usage.output_tokens")));
        Assert.Equal((int)response.Usage.InputTokenCount!, Convert.ToInt32(activity.GetTagItem("gen_ai.usage.input_tokens")));
    }

    [Fact]
    public async Task AddSharpInferBindsOptionsFromConfiguration()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["SharpInfer:ModelPath"] = TestPaths.Stories260K,
            ["SharpInfer:ModelId"] = "stories",
            ["SharpInfer:ContextLength"] = "128",
            ["SharpInfer:KvCacheType"] = "Q8_0",
            ["SharpInfer:Threads"] = "2",
            ["SharpInfer:ParallelSequences"] = "2",
        }).Build();
        var services = new ServiceCollection();
        services.AddSharpInfer(config.GetSection("SharpInfer")).UseFunctionInvocation();
        await using (var provider = services.BuildServiceProvider())
        {
            var client = provider.GetRequiredService<IChatClient>();
            var llm = provider.GetRequiredService<Llm>();
            Assert.Equal(128, llm.ContextLength);
            Assert.Equal(KvDataType.Q8_0, llm.Engine.Options.KvType);
            Assert.Equal(2, llm.Engine.Options.MaxNumSeqs);
            var response = await client.GetResponseAsync("Hello", new ChatOptions { MaxOutputTokens = 4, Temperature = 0 }, Ct);
            Assert.Equal("stories", response.ModelId);
            Assert.Equal(4, response.Usage!.OutputTokenCount);
        }

        var missing = new ServiceCollection();
        missing.AddSharpInfer(o => o.ContextLength = 64);
        await using var bad = missing.BuildServiceProvider();
        var e = Assert.Throws<OptionsValidationException>(() => bad.GetRequiredService<IChatClient>());
        Assert.Contains("ModelPath", e.Message);
    }
}
