using SharpInfer.Cli.Commands;

namespace SharpInfer.Tests.Server;

/// <summary><c>bench serve</c> against the in-process server on a loopback port.</summary>
public class BenchServeTests
{
    [Fact]
    public async Task BenchServeCompletesEveryRequestAndCountsTokensFromUsage()
    {
        await using var s = await ServerHarness.StartAsync(loopback: true);
        var options = new BenchServeOptions
        {
            BaseUrl = s.BaseAddress.ToString(),
            NumPrompts = 12,
            RequestRate = 200,
            MaxConcurrency = 4,
            InputLen = (4, 10),
            OutputLen = (5, 5),
            Seed = 3,
        };
        var finished = new System.Collections.Concurrent.ConcurrentBag<(int Done, int Total)>();
        var result = await BenchServe.RunAsync(options, ct: TestContext.Current.CancellationToken, onDone: (d, t) => finished.Add((d, t)));
        Assert.Equal(12, result.Completed);
        Assert.Equal(0, result.Failed);
        // the progress callback heard every request once, counting 1..12 of 12
        Assert.Equal(Enumerable.Range(1, 12), finished.Select(f => f.Done).Order());
        Assert.All(finished, f => Assert.Equal(12, f.Total));
        Assert.Equal(s.ModelId, result.Model);   // taken from /v1/models
        Assert.Equal(60, result.TotalOutputTokens);
        Assert.True(result.InputTokensFromServer);
        // the prompt tokens reported are the server's count of the generated prompts
        var tokenizer = s.Engine.Model.Tokenizer;
        long expectedInput = BenchServe.BuildDataset(options).Sum(d => (long)tokenizer.Encode(d.Prompt).Length);
        Assert.Equal(expectedInput, result.TotalInputTokens);
        Assert.InRange(result.MaxConcurrencyObserved, 1, 4);
        Assert.True(result.Duration > 0);
        Assert.Equal(result.Completed / result.Duration, result.RequestThroughput, 9);
        Assert.Equal(result.TotalOutputTokens / result.Duration, result.OutputThroughput, 9);
        Assert.Equal((result.TotalInputTokens + result.TotalOutputTokens) / result.Duration, result.TotalTokenThroughput, 9);
        Assert.Equal(12, result.TtftMs.Length);
        Assert.All(result.TtftMs, t => Assert.True(t > 0));
        Assert.Equal(12, result.TpotMs.Length);
        Assert.NotEmpty(result.ItlMs);
        Assert.All(result.Requests, r => Assert.True(r.Latency >= r.Ttft));
        Assert.True(BenchServeResult.Percentile(result.TtftMs, 50) <= BenchServeResult.Percentile(result.TtftMs, 99));

        var json = result.ToJson();
        Assert.Equal(12, json["completed"]!.GetValue<int>());
        Assert.Equal(60, json["total_output_tokens"]!.GetValue<long>());
        foreach (var key in new[] { "request_throughput", "output_throughput", "total_token_throughput", "mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms",
                                    "mean_tpot_ms", "median_tpot_ms", "p99_tpot_ms", "mean_itl_ms", "median_itl_ms", "p99_itl_ms" })
            Assert.True(json.ContainsKey(key), key);
        var printed = new StringWriter();
        result.Print(printed);
        Assert.Contains("Successful requests:                    12", printed.ToString());
    }

    [Fact]
    public async Task SharedPrefixOverChatCompletions()
    {
        await using var s = await ServerHarness.StartAsync(loopback: true);
        var options = new BenchServeOptions
        {
            BaseUrl = s.BaseAddress.ToString().TrimEnd('/'),
            Model = s.ModelId,
            NumPrompts = 6,
            Dataset = "shared-prefix",
            PrefixLen = 12,
            InputLen = (3, 3),
            OutputLen = (2, 4),
            Endpoint = "/v1/chat/completions",
        };
        var data = BenchServe.BuildDataset(options);
        var prefix = string.Join(' ', data[0].Prompt.Split(' ').Take(12));
        Assert.All(data, d => Assert.StartsWith(prefix + " ", d.Prompt));
        Assert.All(data, d => Assert.Equal(15, d.Prompt.Split(' ').Length));
        Assert.Equal(6, data.Select(d => d.Prompt).Distinct().Count());
        var result = await BenchServe.RunAsync(options, ct: TestContext.Current.CancellationToken);
        Assert.Equal(6, result.Completed);
        Assert.Equal(data.Sum(d => d.OutputLen), result.TotalOutputTokens);
    }

    [Fact]
    public async Task FailuresAreCountedNotThrown()
    {
        await using var s = await ServerHarness.StartAsync(loopback: true, configure: o => o with { ApiKey = "k" });
        var result = await BenchServe.RunAsync(new BenchServeOptions
        {
            BaseUrl = s.BaseAddress.ToString(),
            Model = s.ModelId,
            NumPrompts = 3,
            InputLen = (2, 2),
            OutputLen = (2, 2),
        }, ct: TestContext.Current.CancellationToken);
        Assert.Equal(0, result.Completed);
        Assert.Equal(3, result.Failed);
        Assert.All(result.Requests, r => Assert.StartsWith("HTTP 401", r.Error));
    }

    [Theory]
    [InlineData("128", 128, 128)]
    [InlineData("64:256", 64, 256)]
    public void RangesParse(string text, int min, int max) => Assert.Equal((min, max), BenchServeCommand.ParseRange(text, "input-len"));

    [Theory]
    [InlineData("0")]
    [InlineData("5:2")]
    [InlineData("a:b")]
    [InlineData("1:2:3")]
    public void BadRangesAreRejected(string text) => Assert.Throws<InvalidRequestException>(() => BenchServeCommand.ParseRange(text, "input-len"));

    [Fact]
    public void RateParses()
    {
        Assert.True(double.IsPositiveInfinity(BenchServeCommand.ParseRate("inf")));
        Assert.Equal(2.5, BenchServeCommand.ParseRate("2.5"));
        Assert.Throws<InvalidRequestException>(() => BenchServeCommand.ParseRate("-1"));
    }

    [Fact]
    public async Task MultiTurnConversationsSendTheirHistoryAndReportCacheHits()
    {
        await using var s = await ServerHarness.StartAsync(loopback: true);
        var options = new BenchServeOptions
        {
            BaseUrl = s.BaseAddress.ToString(),
            Endpoint = "/v1/chat/completions",
            Dataset = "multi-turn",
            NumPrompts = 3,
            Turns = 4,
            MaxConcurrency = 2,
            InputLen = (12, 20),
            OutputLen = (10, 10),
            Seed = 5,
        };
        var result = await BenchServe.RunAsync(options, ct: TestContext.Current.CancellationToken);
        Assert.Equal(12, result.Completed);
        Assert.Equal(120, result.TotalOutputTokens);
        // each conversation's prompts grow turn by turn (the history is resent), and later turns hit the cache
        var perConversation = result.Requests.Chunk(4).ToList();
        Assert.Equal(3, perConversation.Count);
        foreach (var turns in perConversation)
        {
            for (int t = 1; t < 4; t++) Assert.True(turns[t].PromptTokens > turns[t - 1].PromptTokens + 10, "turn prompts must hold the history");
            // a first turn shares with other conversations at most the chat template's header, which the tiny model's
            // character-level vocabulary spreads over one block; a later turn reuses at least half its history
            Assert.InRange(turns[0].CachedTokens ?? -1, 0, 16);
            for (int t = 1; t < 4; t++)
                Assert.True(turns[t].CachedTokens >= turns[t - 1].PromptTokens / 2, $"turn {t}: cached {turns[t].CachedTokens} of {turns[t].PromptTokens}, previous prompt {turns[t - 1].PromptTokens}");
        }
        Assert.NotNull(result.CacheHitRate);
        Assert.InRange(result.CacheHitRate!.Value, 0.2, 1.0);
        var json = result.ToJson();
        Assert.Equal(result.TotalCachedTokens, json["total_cached_tokens"]!.GetValue<long>());
        Assert.Equal(4, json["turns"]!.GetValue<int>());
        var printed = new StringWriter();
        result.Print(printed);
        Assert.Contains("Prefix cache hit rate:", printed.ToString());
    }

    [Fact]
    public async Task MultiTurnOpeningsShareTheCommonPrefixAndKeepTheirOwnContext()
    {
        await using var s = await ServerHarness.StartAsync(loopback: true);
        var options = new BenchServeOptions
        {
            BaseUrl = s.BaseAddress.ToString(),
            Endpoint = "/v1/chat/completions",
            Dataset = "multi-turn",
            NumPrompts = 3,
            Turns = 2,
            MaxConcurrency = 1,   // one request at a time: every first turn after the first finds the common prefix cached
            PrefixLen = 40,
            ConversationPrefixLen = (30, 40),
            InputLen = (5, 8),
            OutputLen = (4, 4),
            Seed = 9,
        };
        var result = await BenchServe.RunAsync(options, ct: TestContext.Current.CancellationToken);
        Assert.Equal(6, result.Completed);
        var tokenizer = s.Engine.Model.Tokenizer;
        var common = BenchServe.CommonPrefix(options);
        Assert.Equal(40, common.Split(' ').Length);
        int commonTokens = tokenizer.Encode(common).Length;
        var firstTurns = result.Requests.Chunk(2).Select(c => c[0]).ToList();
        // every opening holds the common prefix, the conversation's own context and the message
        Assert.All(firstTurns, r => Assert.True(r.PromptTokens > commonTokens + 30, $"first prompt {r.PromptTokens} tokens, common prefix {commonTokens}"));
        // the first conversation served finds nothing cached but the template header; every later one at least the
        // common prefix less a block (cached runs are whole blocks), but never its own context (no one sent it before)
        var cached = firstTurns.Select(r => r.CachedTokens ?? -1).Order().ToList();
        Assert.InRange(cached[0], 0, 16);
        // (the chat template's header comes before the common prefix, so a hit may reach a block past it)
        foreach (var c in cached.Skip(1)) Assert.InRange(c, commonTokens - 16, commonTokens + 32);
        Assert.All(firstTurns, r => Assert.True(r.CachedTokens < r.PromptTokens - 30, $"cached {r.CachedTokens} of {r.PromptTokens}: own context reused"));
        var json = result.ToJson();
        Assert.Equal("30:40", json["conversation_prefix_len"]!.GetValue<string>());
        Assert.Equal(40, json["prefix_len"]!.GetValue<int>());
    }

    [Fact]
    public void ConversationPrefixIsRejectedOutsideMultiTurn()
    {
        var options = new BenchServeOptions { Dataset = "random", ConversationPrefixLen = (10, 20) };
        var e = Assert.Throws<InvalidRequestException>(() => options.Validate());
        Assert.Contains("multi-turn", e.Message);
        Assert.Throws<InvalidRequestException>(() => BenchServeCommand.ParseRange("0:5", "conversation-prefix-len"));
    }
}
