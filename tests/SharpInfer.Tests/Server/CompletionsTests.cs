using System.Text;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Server;

/// <summary>/v1/completions (legacy completions; the OpenAI .NET client has no API for it, so raw HTTP).</summary>
public class CompletionsTests
{
    private static async Task<(string Text, int Completion)> Direct(ServerHarness s, int[] prompt, int maxTokens)
    {
        var text = new StringBuilder();
        int completion = 0;
        await foreach (var o in s.Engine.AddRequest(new EngineRequest { PromptTokens = prompt, Sampling = SamplingParams.Greedy(maxTokens) },
                                                    TestContext.Current.CancellationToken))
        {
            text.Append(o.Text);
            completion = o.CompletionTokens;
        }
        return (text.ToString(), completion);
    }

    private static string Text(JsonObject response, int choice = 0) => response["choices"]![choice]!["text"]!.GetValue<string>();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task StringPromptListOfOneStringAndTokenIdsGiveTheSameGreedyText(bool loopback)
    {
        await using var s = await ServerHarness.StartAsync(loopback: loopback);
        const string prompt = "Once upon a time, there was a little dog";
        var ids = s.Engine.Model.Tokenizer.Encode(prompt, addSpecial: true, parseSpecial: true);
        var expected = await Direct(s, ids, 12);

        var a = await s.PostOkAsync("v1/completions", new JsonObject { ["model"] = s.ModelId, ["prompt"] = prompt, ["max_tokens"] = 12, ["temperature"] = 0 });
        var b = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = new JsonArray(prompt), ["max_tokens"] = 12, ["temperature"] = 0 });
        var c = await s.PostOkAsync("v1/completions", new JsonObject
        { ["prompt"] = new JsonArray([.. ids.Select(i => (JsonNode)i)]), ["max_tokens"] = 12, ["temperature"] = 0 });
        Assert.Equal(expected.Text, Text(a));
        Assert.Equal(expected.Text, Text(b));
        Assert.Equal(expected.Text, Text(c));
        Assert.Equal("text_completion", a["object"]!.GetValue<string>());
        Assert.StartsWith("cmpl-", a["id"]!.GetValue<string>());
        Assert.Equal(ids.Length, a["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.Equal(expected.Completion, a["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.Equal(ids.Length + expected.Completion, a["usage"]!["total_tokens"]!.GetValue<int>());
        Assert.Null(a["choices"]![0]!["logprobs"]);
    }

    [Fact]
    public async Task DefaultMaxTokensIsSixteenAsInOpenAi()
    {
        await using var s = await ServerHarness.StartAsync();
        var r = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = "The cat", ["temperature"] = 0, ["ignore_eos"] = true });
        Assert.Equal(16, r["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.Equal("length", r["choices"]![0]!["finish_reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task StreamingWithUsageConcatenatesToTheSameText()
    {
        await using var s = await ServerHarness.StartAsync();
        var body = new JsonObject { ["prompt"] = "Tom had a big red ball", ["max_tokens"] = 10, ["temperature"] = 0, ["ignore_eos"] = true };
        var whole = await s.PostOkAsync("v1/completions", body.DeepClone());
        body["stream"] = true;
        body["stream_options"] = new JsonObject { ["include_usage"] = true };
        using var res = await s.PostStreamAsync("v1/completions", body, TestContext.Current.CancellationToken);
        var (chunks, done) = await ServerHarness.ReadAllSseAsync(res, TestContext.Current.CancellationToken);
        Assert.True(done);
        var usageChunk = chunks[^1];
        Assert.Empty(usageChunk["choices"]!.AsArray());
        Assert.Equal(whole["usage"]!.ToJsonString(), usageChunk["usage"]!.ToJsonString());
        var textChunks = chunks[..^1];
        Assert.All(textChunks, c => Assert.True(c.ContainsKey("usage") && c["usage"] is null));   // usage: null on every other chunk
        Assert.Equal(Text(whole), string.Concat(textChunks.Select(c => Text(c))));
        Assert.Equal("length", textChunks[^1]["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.Single(textChunks.Select(c => c["id"]!.GetValue<string>()).Distinct());
    }

    [Fact]
    public async Task LogprobsInCompletionsFormat()
    {
        await using var s = await ServerHarness.StartAsync();
        var r = await s.PostOkAsync("v1/completions", new JsonObject
        { ["prompt"] = "The sun", ["max_tokens"] = 6, ["temperature"] = 0, ["logprobs"] = 2, ["ignore_eos"] = true });
        var lp = r["choices"]![0]!["logprobs"]!;
        var tokens = lp["tokens"]!.AsArray().Select(t => t!.GetValue<string>()).ToArray();
        var tokenLps = lp["token_logprobs"]!.AsArray().Select(t => t!.GetValue<double>()).ToArray();
        var tops = lp["top_logprobs"]!.AsArray();
        var offsets = lp["text_offset"]!.AsArray().Select(t => t!.GetValue<int>()).ToArray();
        Assert.Equal(6, tokens.Length);
        Assert.Equal(6, tokenLps.Length);
        Assert.Equal(6, tops.Count);
        Assert.Equal(string.Concat(tokens), Text(r));
        int expectedOffset = 0;
        for (int i = 0; i < tokens.Length; i++)
        {
            Assert.Equal(expectedOffset, offsets[i]);
            expectedOffset += tokens[i].Length;
            var top = tops[i]!.AsObject();
            Assert.InRange(top.Count, 1, 3);   // 2 alternatives, plus the chosen token when it is not among them
            Assert.True(top.ContainsKey(tokens[i]));
            Assert.Equal(tokenLps[i], top[tokens[i]]!.GetValue<double>(), 5);
            Assert.True(tokenLps[i] <= 0);
        }
    }

    [Fact]
    public async Task StopStringsAndEcho()
    {
        await using var s = await ServerHarness.StartAsync();
        var free = Text(await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = "Lily saw a bird", ["max_tokens"] = 30, ["temperature"] = 0 }));
        var word = free.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).First(w => w.Length >= 3);
        var stopped = await s.PostOkAsync("v1/completions", new JsonObject
        { ["prompt"] = "Lily saw a bird", ["max_tokens"] = 30, ["temperature"] = 0, ["stop"] = new JsonArray("zzzz-not-there", word) });
        Assert.Equal(free[..free.IndexOf(word, StringComparison.Ordinal)], Text(stopped));
        Assert.Equal("stop", stopped["choices"]![0]!["finish_reason"]!.GetValue<string>());

        var single = await s.PostOkAsync("v1/completions", new JsonObject
        { ["prompt"] = "Lily saw a bird", ["max_tokens"] = 30, ["temperature"] = 0, ["stop"] = word });
        Assert.Equal(Text(stopped), Text(single));

        var echoed = await s.PostOkAsync("v1/completions", new JsonObject
        { ["prompt"] = "Lily saw a bird", ["max_tokens"] = 30, ["temperature"] = 0, ["echo"] = true });
        Assert.Equal("Lily saw a bird" + free, Text(echoed));
    }

    [Fact]
    public async Task SeveralPromptsTimesNChoices()
    {
        await using var s = await ServerHarness.StartAsync();
        var r = await s.PostOkAsync("v1/completions", new JsonObject
        { ["prompt"] = new JsonArray("The cat", "The dog"), ["n"] = 2, ["max_tokens"] = 5, ["temperature"] = 0, ["ignore_eos"] = true });
        var choices = r["choices"]!.AsArray();
        Assert.Equal(4, choices.Count);
        Assert.Equal([0, 1, 2, 3], choices.Select(c => c!["index"]!.GetValue<int>()));
        Assert.Equal(Text(r, 0), Text(r, 1));   // greedy: both choices of one prompt agree
        Assert.Equal(Text(r, 2), Text(r, 3));
        var cat = Text(await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = "The cat", ["max_tokens"] = 5, ["temperature"] = 0, ["ignore_eos"] = true }));
        Assert.Equal(cat, Text(r, 0));
        int promptTokens = s.Engine.Model.Tokenizer.Encode("The cat").Length + s.Engine.Model.Tokenizer.Encode("The dog").Length;
        Assert.Equal(promptTokens, r["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.Equal(20, r["usage"]!["completion_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task PenaltiesAndSeedChangeSampling()
    {
        await using var s = await ServerHarness.StartAsync();
        JsonObject Body(int seed) => new()
        {
            ["prompt"] = "One day",
            ["max_tokens"] = 24,
            ["temperature"] = 1.5,
            ["seed"] = seed,
            ["ignore_eos"] = true,
            ["presence_penalty"] = 0.5,
            ["frequency_penalty"] = 0.5,
            ["top_p"] = 0.95
        };
        var a = Text(await s.PostOkAsync("v1/completions", Body(1)));
        var a2 = Text(await s.PostOkAsync("v1/completions", Body(1)));
        var b = Text(await s.PostOkAsync("v1/completions", Body(2)));
        Assert.Equal(a, a2);
        Assert.NotEqual(a, b);
    }
}
