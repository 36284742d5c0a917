using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SharpInfer.Server;
using SharpInfer.Server.Api;

namespace SharpInfer.Tests.Server;

/// <summary>
/// What a refused over-long prompt costs the server. The handler is called in-process on this thread with the body
/// in memory (every await completes at once, which the test checks), so the bytes allocated for the request are
/// counted exactly by <see cref="GC.GetAllocatedBytesForCurrentThread"/>, whatever else the machine does. Time is
/// reported, never asserted. Before the fix a 15 MiB prompt was decoded twice, tokenized to millions of tokens and
/// took the server from 68 to 648 MB.
/// </summary>
public class OversizedRequestCostTests(ITestOutputHelper output)
{
    private const int Huge = 15 << 20;

    /// <summary>Beyond the body bytes themselves (one buffer), a refusal may allocate this much.</summary>
    private const long Overhead = 1 << 20;

    private static string HugeText(int bytes, string unit = "Once upon a time there was a little girl. ")
    {
        var sb = new StringBuilder(bytes + unit.Length);
        while (sb.Length < bytes) sb.Append(unit);
        return sb.ToString(0, bytes);
    }

    public static TheoryData<string> HugeRequests() =>
        ["completion string", "completion escaped string", "completion list of strings", "completion ids", "completion lists of ids",
         "chat string", "chat text part"];

    /// <summary>The endpoint and a 15 MiB body of each shape (built in the test: theory data this big would be
    /// serialized at discovery).</summary>
    private static (string Path, string Json) Build(string shape)
    {
        string Text() => HugeText(Huge);
        string Escaped() => HugeText(Huge / 3, "line one\nline \"two\"\t\u00e9\u4e2d\ud83d\ude00\n");   // escapes and multi-byte text
        string Ids() => "[" + string.Join(",", Enumerable.Repeat("1", Huge / 2)) + "]";
        return shape switch
        {
            "completion string" => ("v1/completions", new JsonObject { ["prompt"] = Text(), ["max_tokens"] = 1 }.ToJsonString()),
            "completion escaped string" => ("v1/completions", new JsonObject { ["prompt"] = Escaped(), ["max_tokens"] = 1 }.ToJsonString()),
            "completion list of strings" => ("v1/completions", new JsonObject { ["prompt"] = new JsonArray("short", Text()) }.ToJsonString()),
            "completion ids" => ("v1/completions", "{\"prompt\": " + Ids() + "}"),
            "completion lists of ids" => ("v1/completions", "{\"prompt\": [[1, 2], " + Ids() + "]}"),
            "chat string" => ("v1/chat/completions",
                new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = Text() }) }.ToJsonString()),
            "chat text part" => ("v1/chat/completions", new JsonObject
            {
                ["messages"] = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = "be brief" },
                    new JsonObject { ["role"] = "user", ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = Escaped() }) }),
            }.ToJsonString()),
            _ => throw new ArgumentException(shape),
        };
    }

    [Theory]
    [MemberData(nameof(HugeRequests))]
    public async Task AHugePromptIsRefusedForLittleMoreThanItsBody(string shape)
    {
        await using var server = await ServerHarness.StartAsync();
        var (path, json) = Build(shape);
        var body = Encoding.UTF8.GetBytes(json);
        json = null!;
        var (error, allocated, elapsed) = CallInPlace(server, path, body);
        output.WriteLine($"{shape}, {body.Length:N0}-byte body: refused in {elapsed.TotalMilliseconds:F0} ms, {allocated:N0} bytes allocated");
        Assert.Equal(400, error.Status);
        Assert.Equal("context_length_exceeded", error.Code);
        Assert.True(allocated < body.Length + Overhead,
            $"refusing a {body.Length:N0}-byte body allocated {allocated:N0} bytes (more than the body + {Overhead:N0})");
    }

    [Fact]
    public async Task APromptWithinTheByteBoundButOverTheContextIsRefusedCheaply()
    {
        // 1024-token context: single letters pass the byte bound yet give a token each; the budgeted encode stops
        await using var server = await ServerHarness.StartAsync();
        var tokenizer = server.Engine.Model.Tokenizer;
        int bytes = (server.Engine.MaxModelLen - 1) * tokenizer.MaxBytesPerToken;
        var body = Encoding.UTF8.GetBytes(new JsonObject { ["prompt"] = HugeText(bytes, "q ") }.ToJsonString());
        Assert.False(tokenizer.IsLongerThan(HugeText(bytes, "q "), server.Engine.MaxModelLen - 1));
        var (error, allocated, elapsed) = CallInPlace(server, "v1/completions", body);
        output.WriteLine($"{body.Length:N0}-byte prompt under the byte bound: refused in {elapsed.TotalMilliseconds:F0} ms, {allocated:N0} bytes allocated");
        Assert.Equal("context_length_exceeded", error.Code);
        Assert.True(allocated < 4 * body.Length + Overhead, $"{allocated:N0} bytes allocated");
    }

    [Fact]
    public async Task OverHttpTheRefusalIsTheUsual400()
    {
        await using var server = await ServerHarness.StartAsync();
        var (status, error, _) = await server.PostAsync("v1/completions", new JsonObject { ["prompt"] = HugeText(Huge), ["max_tokens"] = 1 });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("context_length_exceeded", error["error"]?["code"]?.GetValue<string>());
        Assert.Equal("prompt", error["error"]?["param"]?.GetValue<string>());
        Assert.Contains("1024 tokens", error["error"]?["message"]?.GetValue<string>());
        // and a prompt that fits still runs
        var ok = await server.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = "Once upon a time", ["max_tokens"] = 2 });
        Assert.Equal(2, ok["usage"]?["completion_tokens"]?.GetValue<int>());
    }

    [Fact]
    public async Task LargeBodiesAreDecodedAFewAtATime()
    {
        // hold every slot, then a large body must wait for one; a small body never waits
        var held = new List<IDisposable>();
        for (int i = 0; i < LargeBodies.MaxConcurrent; i++) held.Add(await LargeBodies.EnterAsync(TestContext.Current.CancellationToken));
        try
        {
            Assert.Equal(0, LargeBodies.FreeSlots);
            var large = JsonBody.ReadAsync(Request(new byte[(int)LargeBodies.Threshold]), 16 << 20, TestContext.Current.CancellationToken);
            var small = JsonBody.ReadAsync(Request("{\"a\": 1}"u8.ToArray()), 16 << 20, TestContext.Current.CancellationToken);
            Assert.True(small.IsCompletedSuccessfully);
            Assert.False(large.IsCompleted);
            held[0].Dispose();
            // the large body is all zero bytes: once it gets its slot it is read and refused as invalid JSON
            var e = await Assert.ThrowsAsync<ApiException>(() => large.WaitAsync(TimeSpan.FromMinutes(2), TestContext.Current.CancellationToken));
            Assert.Equal(400, e.Status);
        }
        finally
        {
            foreach (var h in held) h.Dispose();
        }
    }

    [Fact]
    public async Task ALargeBodyIsFollowedByACompaction()
    {
        // the heap is compacted once a burst of large bodies is over: wait for that state (the quiet period is a second;
        // the bound is only a hang guard)
        await using var server = await ServerHarness.StartAsync();
        long before = LargeBodies.Collections;
        var (status, _, _) = await server.PostAsync("v1/completions", new JsonObject { ["prompt"] = HugeText(2 << 20), ["max_tokens"] = 1 });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        using var guard = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        guard.CancelAfter(TimeSpan.FromMinutes(2));
        while (LargeBodies.Collections == before) await Task.Delay(50, guard.Token);
    }

    private static HttpRequest Request(byte[] body)
    {
        var ctx = new DefaultHttpContext();
        ctx.Request.Method = "POST";
        ctx.Request.ContentType = "application/json";
        ctx.Request.ContentLength = body.Length;
        ctx.Request.Body = new MemoryStream(body, writable: false);
        return ctx.Request;
    }

    /// <summary>Runs the endpoint on this thread: the body is in memory, so each await completes synchronously and every
    /// byte the refusal allocates is allocated here.</summary>
    private static (ApiException Error, long Allocated, TimeSpan Elapsed) CallInPlace(ServerHarness server, string path, byte[] body)
    {
        var log = server.App.Services.GetRequiredService<ILogger<ModelHost>>();
        Task Call()
        {
            var request = Request(body);
            return path == "v1/completions"
                ? GenerationEndpoints.CompletionsAsync(request.HttpContext, server.Host, log)
                : GenerationEndpoints.ChatAsync(request.HttpContext, server.Host, log);
        }

        // The same request once before measuring: the first one JIT-compiles the path, and the JSON parser rents an
        // index buffer as large as the body from the shared array pool, which later requests of that size reuse.
        // What is measured is the steady state, the cost of each further refusal.
        _ = Call();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        var task = Call();
        sw.Stop();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(task.IsCompleted, "the refusal went asynchronous, so its allocations were not all counted on this thread");
        var error = Assert.IsType<ApiException>(task.Exception?.InnerException);
        return (error, allocated, sw.Elapsed);
    }
}
