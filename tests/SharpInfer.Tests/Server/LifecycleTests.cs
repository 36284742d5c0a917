using System.ClientModel;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using SharpInfer.Server;

namespace SharpInfer.Tests.Server;

/// <summary>Disconnects, concurrency and graceful shutdown, over real sockets.</summary>
public class LifecycleTests
{
    private static JsonObject LongStream(int maxTokens = 1000) => new()
    {
        ["prompt"] = "Once upon a time",
        ["max_tokens"] = maxTokens,
        ["temperature"] = 0,
        ["ignore_eos"] = true,
        ["stream"] = true,
        ["stream_options"] = new JsonObject { ["include_usage"] = true },
    };

    [Fact]
    public async Task ClientDisconnectMidStreamAbortsTheRequestAndFreesItsKvBlocks()
    {
        await using var s = await ServerHarness.StartAsync(loopback: true);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        // a prefill and a few decode steps, then the engine holds between steps, so the request cannot run to
        // max_tokens before the disconnect is noticed, however slow the machine (aborts are still taken while held)
        s.Engine.AllowSteps(12);
        var res = await s.PostStreamAsync("v1/completions", LongStream(), cts.Token);
        var reader = ServerHarness.ReadSseAsync(res, cts.Token).GetAsyncEnumerator(cts.Token);
        for (int i = 0; i < 3; i++)
        {
            Assert.True(await reader.MoveNextAsync());
            Assert.NotNull(reader.Current);
        }
        await DisconnectCheck.WaitForAsync(() => s.Engine.Stats.Running == 1);   // the published stats lag a step behind
        Assert.True(s.Engine.Stats.KvBlocksUsed > 0, $"the request should hold KV blocks while it streams: {s.Engine.Stats}");
        Assert.Equal(1, s.Engine.Stats.Running);
        // the client goes away: its connection closes (see MaxResponseDrainSize in the harness)
        cts.Cancel();
        await reader.DisposeAsync();
        res.Dispose();
        Assert.True(await s.WaitIdleAsync(), $"KV blocks still used after the disconnect: {s.Engine.Stats}");
        var scrape = s.Host.Exporter!.Scrape();
        Assert.True(scrape.Contains("sharpinfer:request_success_total{model_name=\"stories260K\",finished_reason=\"abort\"} 1"), scrape);
        Assert.True(s.Engine.Stats.GenerationTokens < 1000);
    }

    [Fact]
    public async Task ClientDisconnectDuringANonStreamingRequestAbortsIt()
    {
        await using var s = await ServerHarness.StartAsync(loopback: true);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var body = LongStream();
        body.Remove("stream");
        body.Remove("stream_options");
        // held between steps: the request is accepted but cannot finish before the client goes away, however slow
        // the machine (aborts are still taken while held)
        s.Engine.HoldSteps();
        var send = s.Http.PostAsync("v1/completions", ServerHarness.JsonContent(body), cts.Token);
        var deadline = DateTime.UtcNow.AddMinutes(5);   // hang guard only
        while (s.Engine.ActiveRequests == 0 && DateTime.UtcNow < deadline) await Task.Delay(5, TestContext.Current.CancellationToken);
        Assert.Equal(1, s.Engine.ActiveRequests);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => send);
        Assert.True(await s.WaitIdleAsync(), $"KV blocks still used after the disconnect: {s.Engine.Stats}");
        Assert.True(s.Engine.Stats.GenerationTokens < 1000);
    }

    [Fact]
    public async Task TwoHundredConcurrentStreamsGiveTheSameTextsAsSoloRuns()
    {
        await using var s = await ServerHarness.StartAsync(loopback: true, configure: o => o with
        { Engine = o.Engine with { MaxNumSeqs = 16, MaxNumBatchedTokens = 256, MaxQueuedRequests = 256 } });
        string[] prompts =
        [
            "Once upon a time", "The little dog", "Lily and Tom went to the park", "One day, a bird", "The sun was hot",
            "Mom said", "There was a big tree", "Ben had a red ball", "The cat was sad", "They went to the store",
        ];
        var chat = s.Chat();
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12 };

        async Task<string> Completion(string prompt)
        {
            using var res = await s.PostStreamAsync("v1/completions", new JsonObject
            { ["prompt"] = prompt, ["max_tokens"] = 12, ["temperature"] = 0, ["stream"] = true }, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            var (chunks, done) = await ServerHarness.ReadAllSseAsync(res, TestContext.Current.CancellationToken);
            Assert.True(done);
            return string.Concat(chunks.Select(c => c["choices"]![0]!["text"]!.GetValue<string>())) + "|" +
                   chunks[^1]["choices"]![0]!["finish_reason"]!.GetValue<string>();
        }

        async Task<string> Chat(string prompt)
        {
            var text = new StringBuilder();
            ChatFinishReason? finish = null;
            await foreach (var u in chat.CompleteChatStreamingAsync([new UserChatMessage(prompt)], options, TestContext.Current.CancellationToken))
            {
                foreach (var p in u.ContentUpdate) text.Append(p.Text);
                finish ??= u.FinishReason;
            }
            return text + "|" + finish;
        }

        var soloCompletion = new Dictionary<string, string>();
        var soloChat = new Dictionary<string, string>();
        foreach (var p in prompts)
        {
            soloCompletion[p] = await Completion(p);
            soloChat[p] = await Chat(p);
        }
        var jobs = Enumerable.Range(0, 200).Select(i =>
        {
            var p = prompts[i % prompts.Length];
            bool useChat = i % 2 == 1;
            return Task.Run(async () => (Prompt: p, Chat: useChat, Text: useChat ? await Chat(p) : await Completion(p)));
        }).ToArray();
        var results = await Task.WhenAll(jobs);
        Assert.Equal(200, results.Length);
        foreach (var r in results)
            Assert.Equal(r.Chat ? soloChat[r.Prompt] : soloCompletion[r.Prompt], r.Text);
        Assert.True(s.Engine.Stats.MaxConcurrency > 1, "the requests should have been batched");
        Assert.True(await s.WaitIdleAsync());
    }

    [Fact]
    public async Task GracefulShutdownRefusesNewRequestsAndFinishesInFlightOnes()
    {
        await using var s = await ServerHarness.StartAsync(loopback: true, configure: o => o with { ShutdownTimeout = TimeSpan.FromSeconds(60) });
        using var res = await s.PostStreamAsync("v1/completions", LongStream(300), TestContext.Current.CancellationToken);
        var chunks = new List<JsonObject>();
        bool done = false, shutdownStarted = false;
        await foreach (var c in ServerHarness.ReadSseAsync(res, TestContext.Current.CancellationToken))
        {
            if (c == null) { done = true; break; }
            chunks.Add(c);
            if (shutdownStarted) continue;
            shutdownStarted = true;
            s.App.Lifetime.StopApplication();   // what SIGTERM / Ctrl-C does
            Assert.Equal(ServerState.Stopping, s.Host.State);
            var (status, json, _) = await s.PostAsync("v1/completions", new JsonObject { ["prompt"] = "Hi", ["max_tokens"] = 2 });
            Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
            Assert.Equal("shutting_down", json["error"]!["code"]!.GetValue<string>());
            using var health = await s.Http.GetAsync("health", TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        }
        Assert.True(done);
        var finish = chunks.Where(c => c["choices"]!.AsArray().Count > 0).Last()["choices"]![0]!["finish_reason"]!.GetValue<string>();
        Assert.Equal("length", finish);
        Assert.Equal(300, chunks[^1]["usage"]!["completion_tokens"]!.GetValue<int>());
        await s.App.StopAsync(TestContext.Current.CancellationToken);
        Assert.Equal(ServerState.Stopped, s.Host.State);
    }

    [Fact]
    public async Task RequestsStillRunningWhenTheShutdownTimeoutEndsAreAborted()
    {
        await using var s = await ServerHarness.StartAsync(loopback: true, configure: o => o with
        { ShutdownTimeout = TimeSpan.FromMilliseconds(200), Engine = o.Engine with { MaxModelLen = 2048 } });
        using var res = await s.PostStreamAsync("v1/completions", LongStream(2000), TestContext.Current.CancellationToken);
        var chunks = new List<JsonObject>();
        Task? stop = null;
        bool done = false;
        await foreach (var c in ServerHarness.ReadSseAsync(res, TestContext.Current.CancellationToken))
        {
            if (c == null) { done = true; break; }
            chunks.Add(c);
            stop ??= s.App.StopAsync(TestContext.Current.CancellationToken);
        }
        Assert.True(done);
        await stop!;
        var last = chunks.Where(c => c["choices"]!.AsArray().Count > 0).Last()["choices"]![0]!["finish_reason"]!.GetValue<string>();
        Assert.Contains(last, new[] { "abort", "length" });
        Assert.Equal(ServerState.Stopped, s.Host.State);
        Assert.Equal(0, s.Engine.Stats.KvBlocksUsed);
        Assert.Equal(0, s.Engine.Stats.Running);
    }

    [Fact]
    public async Task ServeCommandStopsGracefullyOnSigterm()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        var cli = Path.Combine(AppContext.BaseDirectory, "SharpInfer.Cli.dll");
        Assert.True(File.Exists(cli), cli);
        var psi = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { cli, "serve", "-m", TestPaths.Stories260K, "--port", "0", "-t", "1", "--max-model-len", "1024",
                             "--kv-cache-memory", "16MiB", "--shutdown-timeout", "60", "--served-model-name", "tiny", "--ollama-port", "0" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        limit.CancelAfter(TimeSpan.FromMinutes(3));   // never hang on a server that does not stop
        var ct = limit.Token;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync(ct);
        var output = new StringBuilder();
        string? url = null, ollamaUrl = null;
        try
        {
            while (await p.StandardOutput.ReadLineAsync(ct) is { } line)
            {
                output.AppendLine(line);
                if (line.StartsWith("listening on ", StringComparison.Ordinal)) url ??= line["listening on ".Length..].Split(' ')[0];
                if (line.StartsWith("ready:", StringComparison.Ordinal)) break;
            }
            if (url == null) Assert.Fail(output + await stderr);
            ollamaUrl = (await p.StandardOutput.ReadLineAsync(ct))?.Split(' ')[^1];   // "Ollama API: http://…/api", after ready:
            var text = output.ToString();
            Assert.Contains("max_num_seqs", text);
            Assert.Contains("KV cache: 16.0 MiB", text);

            using var http = new HttpClient { BaseAddress = new Uri(url + "/") };
            using var models = await http.GetAsync("v1/models", ct);
            Assert.Contains("\"id\":\"tiny\"", await models.Content.ReadAsStringAsync(ct));
            // --ollama-port: a second listener, announced after ready:
            Assert.NotNull(ollamaUrl);
            Assert.EndsWith("/api", ollamaUrl);
            Assert.NotEqual(url, ollamaUrl[..^"/api".Length]);
            using (var ollama = new HttpClient { BaseAddress = new Uri(ollamaUrl[..^"/api".Length] + "/") })
                Assert.Contains("\"name\":\"tiny:latest\"", await ollama.GetStringAsync("api/tags", ct));
            using var req = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = ServerHarness.JsonContent(LongStream(500)) };
            using var res = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct);
            var chunks = new List<JsonObject>();
            bool done = false;
            await foreach (var c in ServerHarness.ReadSseAsync(res, ct))
            {
                if (c == null) { done = true; break; }
                if (chunks.Count == 0) Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
                chunks.Add(c);
            }
            Assert.True(done);
            Assert.Equal(500, chunks[^1]["usage"]!["completion_tokens"]!.GetValue<int>());
            await p.WaitForExitAsync(ct);
            output.Append(await p.StandardOutput.ReadToEndAsync(ct));
            Assert.Equal(0, p.ExitCode);
            Assert.Contains("server stopped", output.ToString());
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
    }
}
