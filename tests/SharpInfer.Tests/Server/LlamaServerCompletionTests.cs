using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Sampling;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Server;

/// <summary>llama-server's native <c>/completion</c> (and <c>/completions</c>, <c>/infill</c>): every answer checked
/// against the engine run directly or against the OpenAI route for the same prompt.</summary>
public class LlamaServerCompletionTests
{
    private const string Prompt = "Once upon a time, there was a little";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(string Text, List<int> Ids, List<TokenLogProbs> LogProbs)> Direct(ServerHarness s, int[] prompt, int maxTokens, int? logprobs = null)
    {
        var text = new StringBuilder();
        var ids = new List<int>();
        var lps = new List<TokenLogProbs>();
        await foreach (var o in s.Engine.AddRequest(new EngineRequest { PromptTokens = prompt, Sampling = SamplingParams.Greedy(maxTokens) with { Logprobs = logprobs } }, Ct))
        {
            text.Append(o.Text);
            ids.AddRange(o.TokenIds);
            if (o.LogProbs != null) lps.AddRange(o.LogProbs);
        }
        return (text.ToString(), ids, lps);
    }

    private static JsonArray Ids(IEnumerable<int> ids) => new([.. ids.Select(i => (JsonNode)i)]);

    [Fact]
    public async Task GreedyContentEqualsV1CompletionsAndCountsMatchTimings()
    {
        await using var s = await ServerHarness.StartAsync();
        var promptIds = s.Engine.Model.Tokenizer.Encode(Prompt, addSpecial: true, parseSpecial: true);
        var direct = await Direct(s, promptIds, 12);
        var v1 = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = Prompt, ["max_tokens"] = 12, ["temperature"] = 0 });
        foreach (var path in new[] { "completion", "completions" })
        {
            var r = await s.PostOkAsync(path, new JsonObject { ["prompt"] = Prompt, ["n_predict"] = 12, ["temperature"] = 0, ["return_tokens"] = true });
            var content = r["content"]!.GetValue<string>();
            Assert.Equal(v1["choices"]![0]!["text"]!.GetValue<string>(), content);
            var tokens = r["tokens"]!.AsArray().Select(t => t!.GetValue<int>()).ToArray();
            Assert.Equal(direct.Ids, tokens);
            Assert.Equal(direct.Text, content);
            Assert.Equal(12, r["tokens_predicted"]!.GetValue<int>());
            Assert.Equal(promptIds.Length, r["tokens_evaluated"]!.GetValue<int>());
            var t = r["timings"]!;
            Assert.Equal(12, t["predicted_n"]!.GetValue<int>());
            Assert.Equal(promptIds.Length, t["prompt_n"]!.GetValue<int>() + t["cache_n"]!.GetValue<int>());
            Assert.True(t["prompt_ms"]!.GetValue<double>() > 0);
            Assert.Equal("limit", r["stop_type"]!.GetValue<string>());
            Assert.True(r["stop"]!.GetValue<bool>());
            Assert.False(r["truncated"]!.GetValue<bool>());
            Assert.Equal(content.Contains('\n'), r["has_new_line"]!.GetValue<bool>());
            Assert.Equal(12, r["generation_settings"]!["n_predict"]!.GetValue<int>());
            Assert.Equal(s.Engine.Model.Tokenizer.Decode(promptIds, renderSpecial: true), r["prompt"]!.GetValue<string>());
        }
        // without return_tokens the list is empty, as llama-server's
        var plain = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = Prompt, ["n_predict"] = 2 });
        Assert.Empty(plain["tokens"]!.AsArray());
    }

    [Fact]
    public async Task PromptFormsTokenizeAsLlamaServer()
    {
        await using var s = await ServerHarness.StartAsync();
        var tok = s.Engine.Model.Tokenizer;
        var ids = tok.Encode(Prompt, addSpecial: true, parseSpecial: true);
        var expected = await Direct(s, ids, 6);
        async Task<JsonNode> Run(JsonNode prompt)
        {
            using var res = await s.Http.PostAsync("completion", ServerHarness.JsonContent(new JsonObject { ["prompt"] = prompt, ["n_predict"] = 6, ["temperature"] = 0 }), Ct);
            var text = await res.Content.ReadAsStringAsync(Ct);
            Assert.True(res.StatusCode == HttpStatusCode.OK, text);
            return JsonNode.Parse(text)!;
        }
        Assert.Equal(expected.Text, (await Run(Ids(ids)))["content"]!.GetValue<string>());
        Assert.Equal(expected.Text, (await Run(new JsonObject { ["prompt_string"] = Prompt }))["content"]!.GetValue<string>());
        // mixed: ids then a string (no BOS for a string that does not come first)
        var tail = tok.Encode(" little", addSpecial: false, parseSpecial: true);
        var head = tok.Encode("Once upon a time, there was a", addSpecial: true, parseSpecial: true);
        var mixed = Ids(head);
        mixed.Add(" little");
        var mixedExpected = await Direct(s, [.. head, .. tail], 6);
        Assert.Equal(mixedExpected.Text, (await Run(mixed))["content"]!.GetValue<string>());
        // several prompts: a list of results in order
        var many = await Run(new JsonArray(Ids(ids), Prompt, "One day"));
        var list = many.AsArray();
        Assert.Equal(3, list.Count);
        Assert.Equal(expected.Text, list[0]!["content"]!.GetValue<string>());
        Assert.Equal(expected.Text, list[1]!["content"]!.GetValue<string>());
        Assert.Equal((await Direct(s, tok.Encode("One day", addSpecial: true, parseSpecial: true), 6)).Text, list[2]!["content"]!.GetValue<string>());
        Assert.Equal(2, list[2]!["index"]!.GetValue<int>());
    }

    [Fact]
    public async Task NProbsAreTheEnginesLogProbs()
    {
        await using var s = await ServerHarness.StartAsync();
        var ids = s.Engine.Model.Tokenizer.Encode(Prompt, addSpecial: true, parseSpecial: true);
        var expected = await Direct(s, ids, 5, logprobs: 3);
        var r = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = Prompt, ["n_predict"] = 5, ["temperature"] = 0, ["n_probs"] = 3 });
        var probs = r["completion_probabilities"]!.AsArray();
        Assert.Equal(5, probs.Count);
        for (int i = 0; i < 5; i++)
        {
            var p = probs[i]!;
            Assert.Equal(expected.LogProbs[i].TokenId, p["id"]!.GetValue<int>());
            Assert.Equal(expected.LogProbs[i].LogProb, p["logprob"]!.GetValue<float>(), 5);
            Assert.Equal(Encoding.UTF8.GetString(s.Engine.Model.Tokenizer.PieceBytes(p["id"]!.GetValue<int>())), p["token"]!.GetValue<string>());
            var top = p["top_logprobs"]!.AsArray();
            Assert.Equal(3, top.Count);
            for (int k = 0; k < 3; k++)
            {
                Assert.Equal(expected.LogProbs[i].Top[k].Id, top[k]!["id"]!.GetValue<int>());
                Assert.Equal(expected.LogProbs[i].Top[k].LogProb, top[k]!["logprob"]!.GetValue<float>(), 5);
            }
        }
        // post_sampling_probs: the same distribution as probabilities
        var post = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = Prompt, ["n_predict"] = 1, ["temperature"] = 0, ["n_probs"] = 2, ["post_sampling_probs"] = true });
        var first = post["completion_probabilities"]![0]!;
        Assert.Equal(MathF.Exp(expected.LogProbs[0].LogProb), first["prob"]!.GetValue<float>(), 4);
        Assert.Equal(2, first["top_probs"]!.AsArray().Count);
    }

    [Fact]
    public async Task StreamConcatenatesToTheNonStreamedContent()
    {
        await using var s = await ServerHarness.StartAsync();
        var body = new JsonObject { ["prompt"] = Prompt, ["n_predict"] = 10, ["temperature"] = 0 };
        var whole = await s.PostOkAsync("completion", body);
        body["stream"] = true;
        body["return_progress"] = true;
        body["timings_per_token"] = true;
        using var res = await s.PostStreamAsync("completion", body, Ct);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var (chunks, done) = await ServerHarness.ReadAllSseAsync(res, Ct);
        Assert.False(done);   // llama-server's native stream has no [DONE]
        var progress = chunks[0]["prompt_progress"]!;
        Assert.Equal(whole["tokens_evaluated"]!.GetValue<int>(), progress["total"]!.GetValue<int>());
        var partial = chunks.Where(c => !c["stop"]!.GetValue<bool>() && c["prompt_progress"] is null).ToList();
        Assert.Equal(10, partial.Count);
        Assert.All(partial, c => Assert.NotNull(c["timings"]));
        Assert.Equal(whole["content"]!.GetValue<string>(), string.Concat(chunks.Select(c => c["content"]!.GetValue<string>())));
        var last = chunks[^1];
        Assert.True(last["stop"]!.GetValue<bool>());
        Assert.Equal("", last["content"]!.GetValue<string>());
        Assert.Equal(10, last["timings"]!["predicted_n"]!.GetValue<int>());
        Assert.Equal("limit", last["stop_type"]!.GetValue<string>());
    }

    [Fact]
    public async Task StopStringIsAWordStopNamingTheWord()
    {
        await using var s = await ServerHarness.StartAsync();
        var free = (await s.PostOkAsync("completion", new JsonObject { ["prompt"] = Prompt, ["n_predict"] = 12, ["temperature"] = 0 }))["content"]!.GetValue<string>();
        string word = free.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2];
        int at = free.IndexOf(word, StringComparison.Ordinal);
        var r = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = Prompt, ["n_predict"] = 12, ["temperature"] = 0, ["stop"] = new JsonArray("zzzz", word) });
        Assert.Equal(free[..at], r["content"]!.GetValue<string>());
        Assert.Equal("word", r["stop_type"]!.GetValue<string>());
        Assert.Equal(word, r["stopping_word"]!.GetValue<string>());
    }

    [Fact]
    public async Task LogitBiasInBothFormsBansTheGreedyToken()
    {
        await using var s = await ServerHarness.StartAsync();
        var tok = s.Engine.Model.Tokenizer;
        var ids = tok.Encode(Prompt, addSpecial: true, parseSpecial: true);
        int greedy = (await Direct(s, ids, 1)).Ids[0];
        string piece = Encoding.UTF8.GetString(tok.PieceBytes(greedy));
        JsonNode[] forms =
        [
            new JsonArray(new JsonArray(greedy, false)),
            new JsonObject { [greedy.ToString(System.Globalization.CultureInfo.InvariantCulture)] = -100 },
            new JsonArray(new JsonArray(piece, -100)),
        ];
        foreach (var bias in forms)
        {
            var r = await s.PostOkAsync("completion", new JsonObject
            { ["prompt"] = Prompt, ["n_predict"] = 1, ["temperature"] = 0, ["logit_bias"] = bias.DeepClone(), ["return_tokens"] = true });
            Assert.NotEqual(greedy, r["tokens"]![0]!.GetValue<int>());
        }
    }

    [Fact]
    public async Task ResponseFieldsServerNPredictSeedAndCachePrompt()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { DefaultNPredict = 5, DefaultSeed = 1234 });
        var picked = await s.PostOkAsync("completion", new JsonObject
        { ["prompt"] = Prompt, ["n_predict"] = 100, ["response_fields"] = new JsonArray("content", "generation_settings/n_predict", "nope/x") });
        Assert.Equal(2, picked.Count);
        Assert.Equal(100, picked["generation_settings/n_predict"]!.GetValue<int>());   // the request's own value wins over --n-predict
        var a = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = Prompt, ["temperature"] = 1.0 });
        Assert.Equal(1234, a["generation_settings"]!["seed"]!.GetValue<long>());
        Assert.Equal(5, a["tokens_predicted"]!.GetValue<int>());
        // the server's seed makes sampled answers repeat; cache_prompt false computes the whole prompt again
        var b = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = Prompt, ["temperature"] = 1.0, ["cache_prompt"] = false });
        Assert.Equal(a["content"]!.GetValue<string>(), b["content"]!.GetValue<string>());
        Assert.Equal(0, b["timings"]!["cache_n"]!.GetValue<int>());
    }

    [Fact]
    public async Task InfillLaysOutPrefixSuffixMiddle()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var tok = s.Engine.Model.Tokenizer;
        var v = tok.Vocabulary;
        Assert.NotEqual(Vocabulary.None, v.FimPrefixId);
        int[] expectedPrompt =
        [
            .. v.AddBos && v.BosId != Vocabulary.None ? new[] { v.BosId } : [],
            v.FimPrefixId, .. tok.Encode("def add(a, b):", false, false), v.FimSuffixId, .. tok.Encode("\n    return c", false, false), v.FimMiddleId,
        ];
        var expected = await Direct(s, expectedPrompt, 4);
        var r = await s.PostOkAsync("infill", new JsonObject
        { ["input_prefix"] = "def add(a, b):", ["input_suffix"] = "\n    return c", ["n_predict"] = 4, ["temperature"] = 0 });
        Assert.Equal(expected.Text, r["content"]!.GetValue<string>());
        Assert.Equal(expectedPrompt.Length, r["tokens_evaluated"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("{\"n_predict\": 3}", "prompt")]
    [InlineData("{\"prompt\": [1, 999999]}", "prompt")]
    [InlineData("{\"prompt\": \"a\", \"n_probs\": 100}", "n_probs")]
    [InlineData("{\"prompt\": \"a\", \"samplers\": [\"nope\"]}", "samplers")]
    [InlineData("{\"prompt\": \"a\", \"mirostat\": 2}", "mirostat")]
    [InlineData("{\"prompt\": \"a\", \"n_predict\": -7}", "n_predict")]
    [InlineData("{\"prompt\": \"a\", \"logit_bias\": [[1]]}", "logit_bias")]
    [InlineData("{\"prompt\": \"a\", \"id_slot\": 99}", "id_slot")]
    [InlineData("{\"prompt\": {\"prompt_string\": \"a\", \"multimodal_data\": [\"AAAA\"]}}", "prompt")]
    [InlineData("{\"prompt\": \"a\", \"temperature\": \"hot\"}", "temperature")]
    public async Task MalformedRequestsAre400InLlamaServersShape(string body, string param)
    {
        await using var s = await ServerHarness.StartAsync();
        using var res = await s.Http.PostAsync("completion", new StringContent(body, Encoding.UTF8, "application/json"), Ct);
        var json = JsonNode.Parse(await res.Content.ReadAsStringAsync(Ct))!;
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        Assert.Equal(400, json["error"]!["code"]!.GetValue<int>());
        Assert.Equal("invalid_request_error", json["error"]!["type"]!.GetValue<string>());
        Assert.Equal(param, json["error"]!["param"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(json["error"]!["message"]!.GetValue<string>()));
    }

    [Fact]
    public async Task OverlongPromptIsExceedContextSizeAndInfillWithoutFimIs501()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { Engine = o.Engine with { MaxModelLen = 64 } });
        var (status, json, _) = await s.PostAsync("completion", new JsonObject { ["prompt"] = string.Join(' ', Enumerable.Repeat("Once upon a time", 40)) });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("exceed_context_size_error", json["error"]!["type"]!.GetValue<string>());
        (status, json, _) = await s.PostAsync("infill", new JsonObject { ["input_prefix"] = "a" });
        Assert.Equal(HttpStatusCode.NotImplemented, status);
        Assert.Equal(501, json["error"]!["code"]!.GetValue<int>());
        Assert.Equal("not_supported_error", json["error"]!["type"]!.GetValue<string>());
        using var bad = await s.Http.PostAsync("completion", new StringContent("{not json", Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal(400, JsonNode.Parse(await bad.Content.ReadAsStringAsync(Ct))!["error"]!["code"]!.GetValue<int>());
    }
}
