using System.Net;
using System.Text.Json.Nodes;

namespace SharpInfer.Tests.Server;

/// <summary>Prefix caching as API users see it: <c>usage.prompt_tokens_details.cached_tokens</c> (responses and the
/// streamed usage chunk), <c>cache_salt</c> isolation and validation, the Prometheus counters, turning it off, and
/// admission seats coming back as soon as a client disconnects.</summary>
public class PrefixCachingApiTests
{
    private const string SystemPrompt =
        "You are a storyteller for small children. You tell short, kind stories about animals, the sun, the park and " +
        "little girls and boys who play outside, and you always end with a happy ending.";

    private static JsonObject Chat(string user, bool stream = false, string? salt = null)
    {
        var body = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = SystemPrompt }, new JsonObject { ["role"] = "user", ["content"] = user }),
            ["max_tokens"] = 8,
            ["temperature"] = 0,
        };
        if (stream)
        {
            body["stream"] = true;
            body["stream_options"] = new JsonObject { ["include_usage"] = true };
        }
        if (salt != null) body["cache_salt"] = salt;
        return body;
    }

    private static int Cached(JsonNode usage) => usage["prompt_tokens_details"]!["cached_tokens"]!.GetValue<int>();

    [Fact]
    public async Task ARepeatedPrefixIsReportedAsCachedTokensWithTheSameAnswer()
    {
        await using var s = await ServerHarness.StartAsync();
        var first = await s.PostOkAsync("v1/chat/completions", Chat("Tell me about a cat."));
        int prompt = first["usage"]!["prompt_tokens"]!.GetValue<int>();
        Assert.True(prompt > 48, $"prompt {prompt} tokens: the system prompt must span several blocks");
        Assert.Equal(0, Cached(first["usage"]!));

        var same = await s.PostOkAsync("v1/chat/completions", Chat("Tell me about a cat."));
        // every full block but the one with the last token, and of that one what the first request's partly filled
        // last block holds, when the prompt ends in it
        Assert.Equal(ExpectedHit(prompt, first), Cached(same["usage"]!));
        Assert.Equal(first["choices"]![0]!["message"]!["content"]!.GetValue<string>(), same["choices"]![0]!["message"]!["content"]!.GetValue<string>());

        var other = await s.PostOkAsync("v1/chat/completions", Chat("Tell me about a dog."));
        int c = Cached(other["usage"]!);
        Assert.True(c >= 48 && c < prompt && c % 16 == 0, $"cached {c} of {prompt}: the system prompt's blocks");

        // the streamed usage chunk carries it too
        using var res = await s.PostStreamAsync("v1/chat/completions", Chat("Tell me about a dog.", stream: true), TestContext.Current.CancellationToken);
        var (chunks, done) = await ServerHarness.ReadAllSseAsync(res, TestContext.Current.CancellationToken);
        Assert.True(done);
        var usage = chunks[^1]["usage"]!;
        Assert.Equal(other["usage"]!["prompt_tokens"]!.GetValue<int>(), usage["prompt_tokens"]!.GetValue<int>());
        Assert.True(Cached(usage) >= c);

        // legacy completions report it the same way
        var text = string.Join(' ', Enumerable.Repeat("Once upon a time there was a little dog.", 6));
        var comp1 = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = text, ["max_tokens"] = 4, ["temperature"] = 0 });
        var comp2 = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = text, ["max_tokens"] = 4, ["temperature"] = 0 });
        Assert.Equal(0, Cached(comp1["usage"]!));
        Assert.Equal(ExpectedHit(comp1["usage"]!["prompt_tokens"]!.GetValue<int>(), comp1), Cached(comp2["usage"]!));
        Assert.True(Cached(comp2["usage"]!) > 0);
    }

    /// <summary>The hit of a request repeating the <paramref name="prompt"/> tokens of an earlier one that answered
    /// <paramref name="earlier"/>: the earlier request computed its prompt and answer, the last answer token excepted
    /// when it stopped at its length limit (the end-of-generation token is not part of the answer). Full blocks are hits
    /// but for the one holding the prompt's last token, whose logits are needed; when the computed tokens end in that
    /// same block, it was kept as a partial block and is a hit up to that last token.</summary>
    private static int ExpectedHit(int prompt, JsonNode earlier)
    {
        int answer = earlier["usage"]!["completion_tokens"]!.GetValue<int>();
        int computed = prompt + answer - (earlier["choices"]![0]!["finish_reason"]!.GetValue<string>() == "length" ? 1 : 0);
        int full = (prompt - 1) / 16;
        return computed / 16 == full ? prompt - 1 : full * 16;
    }

    [Fact]
    public async Task CacheSaltsIsolateTenantsAndAreValidated()
    {
        await using var s = await ServerHarness.StartAsync();
        Assert.Equal(0, Cached((await s.PostOkAsync("v1/chat/completions", Chat("Hi.", salt: "tenant-a")))["usage"]!));
        Assert.Equal(0, Cached((await s.PostOkAsync("v1/chat/completions", Chat("Hi.", salt: "tenant-b")))["usage"]!));
        Assert.Equal(0, Cached((await s.PostOkAsync("v1/chat/completions", Chat("Hi.")))["usage"]!));
        Assert.True(Cached((await s.PostOkAsync("v1/chat/completions", Chat("Hi.", salt: "tenant-a")))["usage"]!) > 0);

        foreach (JsonNode bad in new JsonNode[] { "", 42, new JsonArray("a"), new string('x', 1025) })
        {
            var body = Chat("Hi.");
            body["cache_salt"] = bad;
            var (status, error, _) = await s.PostAsync("v1/chat/completions", body);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal("cache_salt", error["error"]!["param"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task PrometheusCountsQueriesAndHitsInTokens()
    {
        await using var s = await ServerHarness.StartAsync();
        await s.PostOkAsync("v1/chat/completions", Chat("Tell me about a cat."));
        var second = await s.PostOkAsync("v1/chat/completions", Chat("Tell me about a cat."));
        var scrape = s.Host.Exporter!.Scrape();
        double Value(string name)
        {
            var line = scrape.Split('\n').Single(l => l.StartsWith(name + "{", StringComparison.Ordinal));
            return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        }
        Assert.Contains("# TYPE sharpinfer:prefix_cache_queries_total counter", scrape);
        Assert.Contains("# TYPE sharpinfer:prefix_cache_hits_total counter", scrape);
        Assert.Contains("# TYPE sharpinfer:prefix_cache_evictions_total counter", scrape);
        int prompt = second["usage"]!["prompt_tokens"]!.GetValue<int>();
        Assert.Equal(2 * prompt, Value("sharpinfer:prefix_cache_queries_total"));
        Assert.Equal(Cached(second["usage"]!), Value("sharpinfer:prefix_cache_hits_total"));
        // a second scrape reports the same running totals (observable counters are not summed twice)
        Assert.Equal(scrape.Split('\n').Single(l => l.StartsWith("sharpinfer:prefix_cache_hits_total{", StringComparison.Ordinal)),
                     s.Host.Exporter!.Scrape().Split('\n').Single(l => l.StartsWith("sharpinfer:prefix_cache_hits_total{", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task NoPrefixCachingComputesEveryPrompt()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { Engine = o.Engine with { EnablePrefixCaching = false } });
        var first = await s.PostOkAsync("v1/chat/completions", Chat("Tell me about a cat."));
        var second = await s.PostOkAsync("v1/chat/completions", Chat("Tell me about a cat."));
        Assert.Equal(0, Cached(second["usage"]!));
        Assert.Equal(first["choices"]![0]!["message"]!["content"]!.GetValue<string>(), second["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.False(s.Engine.PrefixCaching);
    }

    [Fact]
    public async Task SeatsComeBackAsSoonAsAClientDisconnects()
    {
        // every seat taken by one n=4 stream and no waiting room: any other request is 429 while it runs
        await using var s = await ServerHarness.StartAsync(loopback: true, configure: o => o with
        { Engine = o.Engine with { MaxNumSeqs = 4, MaxQueuedRequests = 0 } });
        var body = new JsonObject { ["prompt"] = "Once upon a time", ["max_tokens"] = 1000, ["ignore_eos"] = true, ["n"] = 4, ["stream"] = true };
        for (int round = 0; round < 5; round++)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            var res = await s.PostStreamAsync("v1/completions", body, cts.Token);
            var reader = ServerHarness.ReadSseAsync(res, cts.Token).GetAsyncEnumerator(cts.Token);
            Assert.True(await reader.MoveNextAsync());
            Assert.Equal(4, s.Engine.ActiveRequests);
            var (busy, _, _) = await s.PostAsync("v1/completions", new JsonObject { ["prompt"] = "Hi", ["max_tokens"] = 1 });
            Assert.Equal((HttpStatusCode)429, busy);
            cts.Cancel();
            await reader.DisposeAsync();
            res.Dispose();
            // what /metrics shows: nothing running or waiting. From then on the seats must be free.
            var deadline = DateTime.UtcNow.AddMinutes(1);   // hang guard
            while ((s.Engine.Stats.Running > 0 || s.Engine.Stats.Waiting > 0) && DateTime.UtcNow < deadline) await Task.Delay(5, TestContext.Current.CancellationToken);
            Assert.Equal(0, s.Engine.ActiveRequests);
            var again = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = "Hi", ["max_tokens"] = 1, ["n"] = 4 });
            Assert.Equal(4, again["choices"]!.AsArray().Count);
        }
    }
}
