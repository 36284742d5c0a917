using System.Diagnostics;
using Microsoft.Extensions.AI;
using SharpInfer.Engine;
using SharpInfer.Extensions.AI;
using SharpInfer.Tests.Server;

namespace SharpInfer.Tests.Tracing;

/// <summary>Microsoft.Extensions.AI's <c>UseOpenTelemetry()</c> over <c>AsChatClient()</c>: its client span is the
/// parent of the engine's span of the same call (whole and streamed), and both report the same usage and response id.</summary>
[Collection(TracingCollection.Name)]
public class ChatClientTracingTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task UseOpenTelemetrySpanParentsTheEngineSpan(bool streaming)
    {
        var ct = TestContext.Current.CancellationToken;
        string source = "SharpInfer.Tests.Tracing.MEAI." + Guid.NewGuid().ToString("N");
        using var spans = new SpanRecorder(source, EngineTelemetry.SourceName);
        await using var llm = Llm.FromModel(ServerModels.Stories, new LlmOptions { Threads = 1, ContextLength = 256, ParallelSequences = 2, KvCacheBytes = 16L << 20 });
        var client = llm.AsChatClient().AsBuilder().UseOpenTelemetry(sourceName: source).Build();
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 6 };
        ChatResponse response;
        if (streaming)
        {
            var updates = new List<ChatResponseUpdate>();
            await foreach (var u in client.GetStreamingResponseAsync("Tell me a story.", options, ct)) updates.Add(u);
            response = updates.ToChatResponse();
        }
        else response = await client.GetResponseAsync("Tell me a story.", options, ct);

        var outer = Assert.Single(spans.Stopped, a => a.Source.Name == source);
        var inner = spans.Request(response.ResponseId!);
        Assert.Equal("chat " + llm.ModelId, inner.DisplayName);
        Assert.Equal(outer.TraceId, inner.TraceId);
        Assert.Equal(outer.SpanId, inner.ParentSpanId);
        Assert.Equal(response.Usage!.InputTokenCount, Convert.ToInt64(inner.GetTagItem("gen_ai.usage.input_tokens")));
        Assert.Equal(response.Usage.OutputTokenCount, Convert.ToInt64(inner.GetTagItem("gen_ai.usage.output_tokens")));
        Assert.Equal(Convert.ToInt64(outer.GetTagItem("gen_ai.usage.output_tokens")), Convert.ToInt64(inner.GetTagItem("gen_ai.usage.output_tokens")));
        Assert.Equal(outer.GetTagItem("gen_ai.response.id"), inner.GetTagItem("gen_ai.response.id"));
        Assert.Equal(6L, Convert.ToInt64(inner.GetTagItem("gen_ai.request.max_tokens")));
        // the engine's span lies within the client's
        Assert.True(outer.StartTimeUtc <= inner.StartTimeUtc);
        Assert.True(inner.StartTimeUtc + inner.Duration <= outer.StartTimeUtc + outer.Duration);
    }
}
