using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Engine;

public class EngineLifecycleTests
{
    private static readonly Lazy<Model> Stories = new(() => Model.Load(TestPaths.Stories260K));

    private static EngineRequest Req(int[] prompt, int max = 16, float temp = 0, ulong seed = 1) =>
        new() { PromptTokens = prompt, Sampling = new SamplingParams { Temperature = temp, MaxTokens = max, Seed = seed } };

    [Fact]
    public async Task ThousandRandomAddAbortFinishOperationsLeaveNoBlocks()
    {
        var model = Stories.Value;
        using var engine = new LlmEngine(model, new EngineOptions
        {
            Threads = 2,
            MaxNumSeqs = 8,
            MaxNumBatchedTokens = 64,
            MaxQueuedRequests = 10_000,
            KvCacheMemoryBytes = 2L * model.Config.LayerCount * model.Config.KvHeadCount * model.Config.HeadDim * 2 * 16 * 24,
        });
        var rng = new Random(7);
        var running = new List<(CancellationTokenSource Cts, Task<FinishReason?> Task)>();
        int aborted = 0;
        for (int op = 0; op < 1000; op++)
        {
            int kind = rng.Next(4);
            if (kind <= 1 || running.Count == 0)
            {
                var prompt = Enumerable.Range(0, 1 + rng.Next(80)).Select(_ => 3 + rng.Next(500)).ToArray();
                var cts = new CancellationTokenSource();
                var stream = engine.AddRequest(Req(prompt, max: 1 + rng.Next(12), temp: 0.8f, seed: (ulong)op), cts.Token);
                running.Add((cts, Drain(stream)));
            }
            else if (kind == 2)
            {
                int i = rng.Next(running.Count);
                running[i].Cts.Cancel();
                aborted++;
                running.RemoveAt(i);
            }
            else
            {
                // let some requests finish (wait for one when many are in flight, so the backlog stays bounded)
                if (running.Count > 24) await Task.WhenAny(running.Select(r => r.Task));
                else await Task.Delay(rng.Next(3));
                running.RemoveAll(r => r.Task.IsCompleted);
            }
        }
        foreach (var r in running) await r.Task;
        await EngineExactnessTests.WaitIdle(engine);
        Assert.Equal(0, engine.Stats.KvBlocksUsed);
        Assert.Equal(0, engine.Stats.Running);
        Assert.Equal(0, engine.Stats.Waiting);
        Assert.True(aborted > 100);
        Assert.True(engine.Stats.FinishedRequests >= 400);
    }

    private static async Task<FinishReason?> Drain(IAsyncEnumerable<RequestOutput> stream)
    {
        FinishReason? f = null;
        try
        {
            await foreach (var o in stream) f = o.Finish ?? f;
        }
        catch (OperationCanceledException) { }
        return f;
    }

    [Fact]
    public async Task AbortFreesBlocksImmediatelyAndEndsTheStream()
    {
        using var engine = new LlmEngine(Stories.Value, new EngineOptions { Threads = 1, MaxNumSeqs = 4 });
        var cts = new CancellationTokenSource();
        var outputs = new List<RequestOutput>();
        var prompt = Stories.Value.Tokenizer.Encode("Once upon a time");
        await foreach (var o in engine.AddRequest(Req(prompt, max: 100_000 / 100), cts.Token))
        {
            outputs.Add(o);
            if (outputs.Count == 5)
            {
                engine.HoldSteps();   // no further step can finish the request before the abort is taken
                cts.Cancel();
            }
            if (o.IsFinal) break;
        }
        Assert.Equal(FinishReason.Abort, outputs[^1].Finish);
        await EngineExactnessTests.WaitIdle(engine);
        Assert.Equal(0, engine.Stats.KvBlocksUsed);
    }

    [Fact]
    public async Task AbandoningTheStreamAbortsTheRequest()
    {
        using var engine = new LlmEngine(Stories.Value, new EngineOptions { Threads = 1 });
        var prompt = Stories.Value.Tokenizer.Encode("The little dog");
        await foreach (var o in engine.AddRequest(Req(prompt, max: 500)))
            break;   // the consumer goes away after the first token
        await EngineExactnessTests.WaitIdle(engine);
        Assert.Equal(0, engine.Stats.KvBlocksUsed);
        Assert.Equal(0, engine.Stats.Running);
    }

    [Fact]
    public void InvalidRequestsAreRejectedUpFront()
    {
        using var engine = new LlmEngine(Stories.Value, new EngineOptions { Threads = 1, MaxModelLen = 64 });
        Assert.Throws<InvalidRequestException>(() => engine.AddRequest(Req([])));
        Assert.Throws<ContextLengthExceededException>(() => engine.AddRequest(Req(Enumerable.Repeat(5, 64).ToArray())));
        Assert.Throws<InvalidRequestException>(() => engine.AddRequest(Req([1, 99999])));
        var e = Assert.Throws<InvalidRequestException>(() => engine.AddRequest(new EngineRequest
        { PromptTokens = [1, 2], Sampling = new SamplingParams { TopP = 2 } }));
        Assert.Equal("top_p", e.Field);
    }

    [Fact]
    public async Task FullWaitingQueueRefusesWithOverload()
    {
        using var engine = new LlmEngine(Stories.Value, new EngineOptions { Threads = 1, MaxNumSeqs = 1, MaxNumBatchedTokens = 16, MaxQueuedRequests = 2 });
        var prompt = Stories.Value.Tokenizer.Encode("Once upon a time");
        var streams = new List<Task<FinishReason?>>();
        for (int i = 0; i < 3; i++) streams.Add(Drain(engine.AddRequest(Req(prompt, max: 200))));   // 1 seat + 2 queue slots
        Assert.Throws<EngineOverloadedException>(() => engine.AddRequest(Req(prompt)));
        var results = await Task.WhenAll(streams);
        Assert.All(results, r => Assert.NotNull(r));   // nobody accepted was dropped
    }

    [Fact]
    public async Task GracefulStopFinishesInFlightThenRefuses()
    {
        using var engine = new LlmEngine(Stories.Value, new EngineOptions { Threads = 1 });
        var prompt = Stories.Value.Tokenizer.Encode("Once upon a time");
        engine.HoldSteps();   // both requests are accepted and provably unfinished when the stop begins
        var short1 = Drain(engine.AddRequest(Req(prompt, max: 8)));
        var short2 = Drain(engine.AddRequest(Req(prompt, max: 4)));
        var stop = engine.StopAsync(TimeSpan.FromMinutes(5));   // the grace is only a hang guard here
        Assert.Throws<EngineStoppedException>(() => engine.AddRequest(Req(prompt)));
        Assert.False(short1.IsCompleted);
        engine.ResumeSteps();
        await stop;
        Assert.Equal(FinishReason.Length, await short1);   // in flight at the stop: finished, not aborted
        Assert.Equal(FinishReason.Length, await short2);
        Assert.Throws<EngineStoppedException>(() => engine.AddRequest(Req(prompt)));
    }

    [Fact]
    public async Task StopAbortsWhatIsStillRunningWhenTheGraceEnds()
    {
        using var engine = new LlmEngine(Stories.Value, new EngineOptions { Threads = 1 });
        var prompt = Stories.Value.Tokenizer.Encode("Once upon a time");
        engine.HoldSteps();   // the request cannot progress, so it is certainly unfinished when the grace ends
        var endless = Drain(engine.AddRequest(new EngineRequest
        { PromptTokens = prompt, Sampling = new SamplingParams { Temperature = 0, MaxTokens = 1_000, IgnoreEos = true } }));
        await engine.StopAsync(TimeSpan.FromMilliseconds(50));
        Assert.Equal(FinishReason.Abort, await endless);
        Assert.Equal(0, engine.ActiveRequests);
    }

    [Fact]
    public async Task StaticModeServesEveryRequest()
    {
        using var engine = new LlmEngine(Stories.Value, new EngineOptions { Threads = 1, MaxNumSeqs = 3, Mode = SharpInfer.Scheduling.SchedulingMode.Static, KvType = KvDataType.F32 });
        var prompts = EngineExactnessTests.Prompts(Stories.Value, 7, seed: 9);
        var results = await Task.WhenAll(prompts.Select(p => Drain(engine.AddRequest(Req(p, max: 6)))));
        Assert.All(results, r => Assert.NotNull(r));
        Assert.True(engine.Stats.MaxConcurrency <= 3);
    }
}
