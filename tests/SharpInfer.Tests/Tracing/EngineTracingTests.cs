using System.Diagnostics;
using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Sampling;
using SharpInfer.Tests.Server;

namespace SharpInfer.Tests.Tracing;

/// <summary>
/// The engine's request spans (<see cref="EngineTelemetry"/>) against first principles: input tokens are the prompt's
/// length, output tokens the tokens the stream delivered, cached tokens the prefix hit of a repeated prompt (every
/// token before the last: full blocks and the first run's partly filled last block), the finish reason the stream's; the queue, prefill and decode child spans nest
/// inside the request span in that order; the span parents under the caller's activity without becoming the caller's
/// current one; and without a listener no activity is created at all.
/// </summary>
[Collection(TracingCollection.Name)]
public class EngineTracingTests
{
    private const int BlockSize = 16;
    private const string Text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun with her dog.";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static LlmEngine NewEngine() => new(ServerModels.Stories, new EngineOptions
    {
        Threads = 1,
        MaxNumSeqs = 4,
        MaxNumBatchedTokens = 64,
        KvCacheMemoryBytes = 16L << 20,
        KvType = KvDataType.F32,
        BlockSize = BlockSize,
        ModelName = "stories",
    });

    private sealed record Run(int Generated, string Text, RequestOutput Final);

    private static async Task<Run> RunAsync(LlmEngine engine, EngineRequest request, CancellationToken cancellation = default)
    {
        int generated = 0;
        var text = new System.Text.StringBuilder();
        await foreach (var o in engine.AddRequest(request, cancellation))
        {
            generated += o.TokenIds.Length;
            text.Append(o.Text);
            if (o.IsFinal) return new Run(generated, text.ToString(), o);
        }
        throw new InvalidOperationException("the stream ended without a final output");
    }

    private static long Tag(Activity a, string key) => Convert.ToInt64(a.GetTagItem(key));

    [Fact]
    public async Task SpansCarryUsageCachedTokensAndFinishReasons()
    {
        using var spans = new SpanRecorder(EngineTelemetry.SourceName);
        using var engine = NewEngine();
        var prompt = ServerModels.Stories.Tokenizer.Encode(Text);
        Assert.True(prompt.Length > 2 * BlockSize, $"the prompt must span blocks ({prompt.Length} tokens)");

        // 1: computed from scratch, ends on max_tokens
        var first = await RunAsync(engine, new EngineRequest
        {
            PromptTokens = prompt,
            Sampling = SamplingParams.Greedy(8) with { IgnoreEos = true },
            RequestId = "first",
        });
        var a = spans.Request("first");
        Assert.Equal("text_completion stories", a.DisplayName);
        Assert.Equal(ActivityKind.Internal, a.Kind);
        Assert.Equal(ActivityStatusCode.Unset, a.Status);
        Assert.Equal("text_completion", a.GetTagItem("gen_ai.operation.name"));
        Assert.Equal("stories", a.GetTagItem("gen_ai.request.model"));
        Assert.Equal("stories", a.GetTagItem("gen_ai.response.model"));
        Assert.Equal("sharpinfer", a.GetTagItem("gen_ai.provider.name"));
        Assert.Equal(8, Tag(a, "gen_ai.request.max_tokens"));
        Assert.Equal(0.0, (double)a.GetTagItem("gen_ai.request.temperature")!);
        Assert.Equal(1.0, (double)a.GetTagItem("gen_ai.request.top_p")!);
        Assert.Equal(prompt.Length, Tag(a, "gen_ai.usage.input_tokens"));
        Assert.Equal(8, first.Generated);
        Assert.Equal(first.Generated, Tag(a, "gen_ai.usage.output_tokens"));
        Assert.Equal(0, Tag(a, "gen_ai.usage.cache_read.input_tokens"));
        Assert.Equal(["length"], (string[])a.GetTagItem("gen_ai.response.finish_reasons")!);
        Assert.Null(a.GetTagItem("error.type"));
        var t = first.Final.Timings!;
        Assert.Equal(t.TimeToFirstToken, (double)a.GetTagItem("sharpinfer.time_to_first_token")!);
        Assert.Equal(t.QueueTime, (double)a.GetTagItem("sharpinfer.queue_time")!);
        Assert.Equal(t.DecodeTime, (double)a.GetTagItem("sharpinfer.decode_time")!);
        Assert.Null(a.GetTagItem("sharpinfer.speculative.draft_tokens"));   // no speculation configured

        // the phases: children of the request span, in order, inside it
        var children = spans.ChildrenOf(a);
        Assert.Equal([EngineTelemetry.DecodeSpan, EngineTelemetry.PrefillSpan, EngineTelemetry.QueueSpan], children.Select(c => c.DisplayName).Order());
        var queue = children.Single(c => c.DisplayName == EngineTelemetry.QueueSpan);
        var prefill = children.Single(c => c.DisplayName == EngineTelemetry.PrefillSpan);
        var decode = children.Single(c => c.DisplayName == EngineTelemetry.DecodeSpan);
        Assert.All(children, c => Assert.Equal(a.TraceId, c.TraceId));
        Assert.True(a.StartTimeUtc <= queue.StartTimeUtc);
        Assert.True(queue.StartTimeUtc + queue.Duration <= prefill.StartTimeUtc);
        Assert.True(prefill.StartTimeUtc + prefill.Duration <= decode.StartTimeUtc);
        Assert.True(decode.StartTimeUtc + decode.Duration <= a.StartTimeUtc + a.Duration);
        Assert.Equal(0, Tag(prefill, "sharpinfer.prefill.cached_tokens"));
        Assert.Equal(prompt.Length, Tag(prefill, "sharpinfer.prefill.computed_tokens"));
        Assert.Equal(8, Tag(decode, "gen_ai.usage.output_tokens"));

        // 2: the same prompt again: every token before the last comes from the prefix cache (the full blocks, then the
        // first run's partly filled last block token by token)
        var second = await RunAsync(engine, new EngineRequest
        {
            PromptTokens = prompt,
            Sampling = SamplingParams.Greedy(4) with { IgnoreEos = true },
            RequestId = "second-0",
            ResponseId = "second",
            Operation = EngineTelemetry.Chat,
        });
        var b = spans.Request("second");
        Assert.Equal("chat stories", b.DisplayName);
        int expectedHit = prompt.Length - 1;
        Assert.True(expectedHit > 0);
        Assert.Equal(expectedHit, Tag(b, "gen_ai.usage.cache_read.input_tokens"));
        Assert.Equal(second.Final.CachedPromptTokens, Tag(b, "gen_ai.usage.cache_read.input_tokens"));
        Assert.Equal(prompt.Length, Tag(b, "gen_ai.usage.input_tokens"));
        Assert.Equal(second.Generated, Tag(b, "gen_ai.usage.output_tokens"));
        var secondPrefill = spans.ChildrenOf(b).Single(c => c.DisplayName == EngineTelemetry.PrefillSpan);
        Assert.Equal(expectedHit, Tag(secondPrefill, "sharpinfer.prefill.cached_tokens"));
        Assert.Equal(prompt.Length - expectedHit, Tag(secondPrefill, "sharpinfer.prefill.computed_tokens"));

        // 3: a stop string taken from the first reply ends the same greedy generation early with "stop"
        string stop = first.Text.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1];
        var third = await RunAsync(engine, new EngineRequest
        {
            PromptTokens = prompt,
            Sampling = SamplingParams.Greedy(8) with { IgnoreEos = true, Stop = [stop] },
            RequestId = "third",
        });
        Assert.Equal(FinishReason.Stop, third.Final.Finish);
        var c3 = spans.Request("third");
        Assert.Equal([third.Final.Finish!.Value.ToApiString()], (string[])c3.GetTagItem("gen_ai.response.finish_reasons")!);
        Assert.Equal([stop], (string[])c3.GetTagItem("gen_ai.request.stop_sequences")!);
        Assert.Equal(third.Generated, Tag(c3, "gen_ai.usage.output_tokens"));

        // 4: cancelled before any step ran: "abort", marked as a cancellation, no prefill or decode phase
        engine.HoldSteps();
        using var cts = new CancellationTokenSource();
        var stream = engine.AddRequest(new EngineRequest { PromptTokens = prompt, Sampling = SamplingParams.Greedy(8), RequestId = "fourth" }, cts.Token);
        await cts.CancelAsync();
        engine.ResumeSteps();
        RequestOutput? last = null;
        await foreach (var o in stream) last = o;
        Assert.Equal(FinishReason.Abort, last?.Finish);
        var d = spans.Request("fourth");
        Assert.Equal(["abort"], (string[])d.GetTagItem("gen_ai.response.finish_reasons")!);
        Assert.Equal("cancelled", d.GetTagItem("error.type"));
        Assert.Equal(0, Tag(d, "gen_ai.usage.output_tokens"));
        Assert.Equal([EngineTelemetry.QueueSpan], spans.ChildrenOf(d).Select(c => c.DisplayName));
    }

    [Fact]
    public async Task SpansParentUnderTheCallersActivityWithoutBecomingCurrent()
    {
        using var callerSource = new ActivitySource("SharpInfer.Tests.Tracing.Caller");
        using var spans = new SpanRecorder(EngineTelemetry.SourceName, callerSource.Name);
        using var engine = NewEngine();
        var prompt = ServerModels.Stories.Tokenizer.Encode(Text);
        using (var caller = callerSource.StartActivity("caller"))
        {
            Assert.NotNull(caller);
            // two choices of one call: each parents under the caller, neither under the other
            var one = engine.AddRequest(new EngineRequest { PromptTokens = prompt, Sampling = SamplingParams.Greedy(3), RequestId = "one" });
            Assert.Same(caller, Activity.Current);
            var two = engine.AddRequest(new EngineRequest { PromptTokens = prompt, Sampling = SamplingParams.Greedy(3), RequestId = "two" });
            Assert.Same(caller, Activity.Current);
            await foreach (var _ in one) { }
            await foreach (var _ in two) { }
            Assert.Same(caller, Activity.Current);
            Assert.Equal(caller.SpanId, spans.Request("one").ParentSpanId);
            Assert.Equal(caller.SpanId, spans.Request("two").ParentSpanId);
            Assert.Equal(caller.TraceId, spans.Request("two").TraceId);
        }
    }

    [Fact]
    public async Task WithoutAListenerNoActivityIsCreated()
    {
        int engineActivities = 0;
        void OnCurrentChanged(object? sender, ActivityChangedEventArgs e)
        {
            if (e.Current?.Source.Name == EngineTelemetry.SourceName) Interlocked.Increment(ref engineActivities);
        }
        Activity.CurrentChanged += OnCurrentChanged;
        try
        {
            using var engine = NewEngine();
            var prompt = ServerModels.Stories.Tokenizer.Encode(Text);
            Assert.False(EngineTelemetry.Source.HasListeners());
            await RunAsync(engine, new EngineRequest { PromptTokens = prompt, Sampling = SamplingParams.Greedy(4), RequestId = "unheard" });
            Assert.Equal(0, Volatile.Read(ref engineActivities));

            // the same request with a listener: the observation above would have seen its activity
            using var spans = new SpanRecorder(EngineTelemetry.SourceName);
            await RunAsync(engine, new EngineRequest { PromptTokens = prompt, Sampling = SamplingParams.Greedy(4), RequestId = "heard" });
            Assert.True(Volatile.Read(ref engineActivities) > 0);
            spans.Request("heard");
        }
        finally
        {
            Activity.CurrentChanged -= OnCurrentChanged;
        }
    }
}
