using System.Net;
using System.Text.Json.Nodes;
using SharpInfer.Cli.Commands;
using SharpInfer.Server;

namespace SharpInfer.Tests.Server;

/// <summary>Details of llama-server's behaviour that its own test suite checks: prompt progress per computed chunk,
/// <c>truncated</c> when the context fills, its context-size error, <c>ignore_eos</c> as a ban on end-of-generation
/// tokens, model aliases and tags, the web page at <c>/</c>, and the timings on the last chunk of a chat stream.</summary>
public class LlamaServerDetailsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private const string LongPrompt = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.";

    private static async Task<List<JsonObject>> ProgressEvents(ServerHarness s, string path, JsonObject body)
    {
        using var res = await s.PostStreamAsync(path, body, Ct);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var (chunks, _) = await ServerHarness.ReadAllSseAsync(res, Ct);
        return [.. chunks.Where(c => c["prompt_progress"] is not null).Select(c => c["prompt_progress"]!.AsObject())];
    }

    [Fact]
    public async Task ReturnProgressReportsEachPromptChunkThenTheCachedStart()
    {
        // a 16-token step budget splits the prompt into chunks of 16: one event at the start, one per chunk
        await using var s = await ServerHarness.StartAsync(configure: o => o with { Engine = o.Engine with { MaxNumBatchedTokens = 16 } });
        int total = s.Engine.Model.Tokenizer.Encode(LongPrompt, addSpecial: true, parseSpecial: true).Length;
        Assert.True(total > 32, $"the prompt must span several chunks, has {total} tokens");
        var body = new JsonObject { ["prompt"] = LongPrompt, ["n_predict"] = 2, ["temperature"] = 0, ["stream"] = true, ["return_progress"] = true };

        var first = await ProgressEvents(s, "completion", (JsonObject)body.DeepClone());
        Assert.Equal(1 + (total + 15) / 16, first.Count);
        Assert.All(first, p => Assert.Equal(total, p["total"]!.GetValue<int>()));
        Assert.Equal(0, first[0]["processed"]!.GetValue<int>());
        Assert.Equal(0, first[0]["cache"]!.GetValue<int>());
        for (int i = 1; i < first.Count; i++)
        {
            int step = first[i]["processed"]!.GetValue<int>() - first[i - 1]["processed"]!.GetValue<int>();
            Assert.InRange(step, 1, 16);
        }
        Assert.Equal(total, first[^1]["processed"]!.GetValue<int>());

        // the same prompt again: the prefix cache serves its full blocks and the first request's partly filled last
        // block (every prompt token but the last, whose logits are needed), reported as both cache and processed at the start
        var again = await ProgressEvents(s, "completion", (JsonObject)body.DeepClone());
        int cached = again[0]["cache"]!.GetValue<int>();
        Assert.Equal(total - 1, cached);
        Assert.Equal(cached, again[0]["processed"]!.GetValue<int>());
        Assert.Equal(2, again.Count);
        Assert.Equal(total, again[^1]["processed"]!.GetValue<int>());

        // not streaming: no progress (llama-server sends it only in a stream), and OpenAI chat streams carry it too
        var plain = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = LongPrompt, ["n_predict"] = 2, ["return_progress"] = true });
        Assert.Null(plain["prompt_progress"]);
        var chat = await ProgressEvents(s, "v1/chat/completions", new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = LongPrompt + " (chat)" }),
            ["max_tokens"] = 2,
            ["stream"] = true,
            ["return_progress"] = true,
        });
        Assert.True(chat.Count >= 2);
        Assert.Equal(chat[0]["total"]!.GetValue<int>(), chat[^1]["processed"]!.GetValue<int>());
    }

    [Fact]
    public async Task TruncatedWhenTheContextFillsAndTheContextErrorInLlamaServerWords()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { Engine = o.Engine with { MaxModelLen = 48 } });
        var prompt = "Once upon a time";
        int n = s.Engine.Model.Tokenizer.Encode(prompt, addSpecial: true, parseSpecial: true).Length;
        var full = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = prompt, ["n_predict"] = -1, ["ignore_eos"] = true, ["temperature"] = 0 });
        Assert.Equal(48 - n, full["timings"]!["predicted_n"]!.GetValue<int>());
        Assert.True(full["truncated"]!.GetValue<bool>());
        Assert.Equal("limit", full["stop_type"]!.GetValue<string>());
        var shortRun = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = prompt, ["n_predict"] = 3, ["ignore_eos"] = true });
        Assert.False(shortRun["truncated"]!.GetValue<bool>());

        var ids = new JsonArray([.. Enumerable.Repeat(1, 60).Select(i => (JsonNode)i)]);
        var (status, error, _) = await s.PostAsync("completion", new JsonObject { ["prompt"] = ids, ["n_predict"] = 4 });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("exceed_context_size_error", error["error"]!["type"]!.GetValue<string>());
        Assert.Contains("exceeds the available context size (48 tokens)", error["error"]!["message"]!.GetValue<string>());
        Assert.Equal(48, error["error"]!["n_ctx"]!.GetValue<int>());
    }

    [Fact]
    public async Task IgnoreEosBansEndOfGenerationTokensOverTheRequestsBias()
    {
        await using var s = await ServerHarness.StartAsync();
        var eog = s.Engine.Model.Vocabulary.EndOfGenerationIds;
        int eos = eog[0];
        var bias = new JsonObject { [eos.ToString(System.Globalization.CultureInfo.InvariantCulture)] = 100 };
        // pushed up by +100 the end-of-generation token comes first and ends the answer
        var stopped = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = "Once", ["n_predict"] = 8, ["temperature"] = 0, ["logit_bias"] = bias.DeepClone() });
        Assert.Equal("eos", stopped["stop_type"]!.GetValue<string>());
        Assert.Equal(0, stopped["timings"]!["predicted_n"]!.GetValue<int>());
        Assert.DoesNotContain(stopped["generation_settings"]!["logit_bias"]!.AsArray(), e => e!["bias"] is null);

        // ignore_eos bans it anyway (llama-server's -inf bias): never generated, listed with a null (-inf) bias
        var r = await s.PostOkAsync("completion", new JsonObject
        {
            ["prompt"] = "Once",
            ["n_predict"] = 8,
            ["temperature"] = 0,
            ["logit_bias"] = bias.DeepClone(),
            ["ignore_eos"] = true,
            ["return_tokens"] = true,
        });
        var tokens = r["tokens"]!.AsArray().Select(t => t!.GetValue<int>()).ToArray();
        Assert.Equal(8, tokens.Length);
        Assert.DoesNotContain(tokens, eog.Contains);
        var banned = r["generation_settings"]!["logit_bias"]!.AsArray().Where(e => e!["bias"] is null).Select(e => e!["token"]!.GetValue<int>()).Order();
        Assert.Equal(eog.Order(), banned);
    }

    [Fact]
    public async Task AliasesAndTagsAreListedAndAnAliasNamesTheModel()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with
        {
            ServedModelName = "code",
            ModelAliases = ["code", "fim", "tinyllama-2"],
            ModelTags = ["chat", "small"],
        });
        using var res = await s.Http.GetAsync("v1/models", Ct);
        var model = JsonNode.Parse(await res.Content.ReadAsStringAsync(Ct))!["data"]![0]!;
        Assert.Equal("code", model["id"]!.GetValue<string>());
        Assert.Equal(["code", "fim", "tinyllama-2"], model["aliases"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Equal(["chat", "small"], model["tags"]!.AsArray().Select(a => a!.GetValue<string>()));
        var ok = await s.PostAsync("v1/completions", new JsonObject { ["model"] = "fim", ["prompt"] = "Once", ["max_tokens"] = 1 });
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        var unknown = await s.PostAsync("v1/completions", new JsonObject { ["model"] = "other", ["prompt"] = "Once", ["max_tokens"] = 1 });
        Assert.Equal(HttpStatusCode.NotFound, unknown.Status);
    }

    [Fact]
    public void CommaSeparatedAliasAndTagsFlagsAsLlamaServer()
    {
        ServerOptions? o = null;
        var cmd = ServeCommand.Create(x =>
        {
            o = x;
            return 0;
        });
        Assert.Equal(0, cmd.Parse(["-m", TestPaths.Stories260K, "--alias", "tinyllama-2, fim,code", "--tags", "small,chat,small", "--no-ui"]).Invoke());
        // the id is the first name in sorted order, as llama-server's std::set gives it
        Assert.Equal("code", o!.ModelId);
        Assert.Equal(["code", "fim", "tinyllama-2"], o.ModelAliases);
        Assert.Equal(["chat", "small"], o.ModelTags);
        Assert.False(o.WebUi);
        Assert.Equal(0, cmd.Parse(["-m", TestPaths.Stories260K, "--alias", "one"]).Invoke());
        Assert.Equal("one", o.ModelId);
        Assert.True(o.WebUi);
    }

    [Fact]
    public async Task WebPageAndItsFilesAreServedWithoutTheKeyUnlessNoUi()
    {
        await using (var s = await ServerHarness.StartAsync(configure: o => o with { ApiKey = "secret" }))
        {
            var page = await s.Http.GetStringAsync("/", Ct);
            Assert.StartsWith("<!doctype html>", page);
            Assert.Contains("v1/chat/completions", page);
            foreach (var path in new[] { "/sw.js", "/manifest.webmanifest", "/_app/version.json", "/index.html" })
            {
                using var res = await s.Http.GetAsync(path, Ct);
                Assert.True(res.StatusCode == HttpStatusCode.OK, $"{path}: {res.StatusCode}");
            }
            JsonNode.Parse(await s.Http.GetStringAsync("/manifest.webmanifest", Ct));   // valid JSON
        }
        await using (var s = await ServerHarness.StartAsync(configure: o => o with { WebUi = false }))
        {
            foreach (var path in new[] { "/", "/sw.js", "/manifest.webmanifest", "/_app/version.json" })
            {
                using var res = await s.Http.GetAsync(path, Ct);
                Assert.Equal(HttpStatusCode.NotFound, res.StatusCode);
            }
        }
    }

    [Fact]
    public async Task ChatStreamWithUsageCarriesTheTimingsOnTheUsageChunk()
    {
        await using var s = await ServerHarness.StartAsync();
        using var res = await s.PostStreamAsync("v1/chat/completions", new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "test" }),
            ["max_tokens"] = 5,
            ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
            ["ignore_eos"] = true,
        }, Ct);
        var (chunks, done) = await ServerHarness.ReadAllSseAsync(res, Ct);
        Assert.True(done);
        var usage = chunks[^1];
        Assert.Empty(usage["choices"]!.AsArray());
        var t = usage["timings"]!;
        Assert.Equal(5, t["predicted_n"]!.GetValue<int>());
        Assert.Equal(usage["usage"]!["prompt_tokens"]!.GetValue<int>(), t["prompt_n"]!.GetValue<int>() + t["cache_n"]!.GetValue<int>());
        Assert.NotNull(t["prompt_per_second"]);
        Assert.NotNull(t["predicted_per_token_ms"]);
        Assert.All(chunks.Take(chunks.Count - 1), c => Assert.Null(c["timings"]));
    }

    [Fact]
    public async Task ContextShiftKeepsBosDropsHalfAndGoesOnAsTheShiftedSequenceWould()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { ContextShift = true, Engine = o.Engine with { MaxModelLen = 48 } });
        var tok = s.Engine.Model.Tokenizer;
        var prompt = tok.Encode("Once upon a time", addSpecial: true, parseSpecial: true);
        var r = await s.PostOkAsync("completion", new JsonObject
        {
            ["prompt"] = "Once upon a time",
            ["n_predict"] = 60,
            ["ignore_eos"] = true,
            ["temperature"] = 0,
            ["return_tokens"] = true,
        });
        var gen = r["tokens"]!.AsArray().Select(t => t!.GetValue<int>()).ToArray();
        Assert.Equal(60, gen.Length);
        Assert.Equal(60, r["timings"]!["predicted_n"]!.GetValue<int>());
        Assert.True(r["truncated"]!.GetValue<bool>());
        Assert.Equal("limit", r["stop_type"]!.GetValue<string>());

        // the first shift: the context (48) is full; BOS is kept (n_keep 0 + BOS), half of the other 47 tokens dropped,
        // and the next token is the greedy continuation of the shifted sequence computed from scratch
        int before = 48 - prompt.Length;
        int[] full = [.. prompt, .. gen[..before]];
        Assert.Equal(s.Engine.Model.Vocabulary.BosId, full[0]);
        int[] shifted = [full[0], .. full[(1 + 47 / 2)..]];
        var direct = await s.PostOkAsync("completion", new JsonObject
        {
            ["prompt"] = new JsonArray([.. shifted.Select(t => (JsonNode)t)]),
            ["n_predict"] = 1,
            ["ignore_eos"] = true,
            ["temperature"] = 0,
            ["return_tokens"] = true,
        });
        Assert.Equal(direct["tokens"]![0]!.GetValue<int>(), gen[before]);

        // -1 still ends at the context's end, as llama-server without an explicit n_predict would fill it
        var unbounded = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = "Once upon a time", ["n_predict"] = -1, ["ignore_eos"] = true });
        Assert.Equal(before, unbounded["timings"]!["predicted_n"]!.GetValue<int>());
    }

    [Fact]
    public async Task TwoAssistantMessagesAtTheEndAreRefusedAndTupleSchemasWork()
    {
        await using var s = await ServerHarness.StartAsync();
        var (status, body, _) = await s.PostAsync("v1/chat/completions", new JsonObject
        {
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "user", ["content"] = "test" },
                new JsonObject { ["role"] = "assistant", ["content"] = "a" },
                new JsonObject { ["role"] = "assistant", ["content"] = "b" }),
        });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("messages", body["error"]!["param"]!.GetValue<string>());

        // draft-04's tuple form of items: exactly those items, in order
        var r = await s.PostOkAsync("v1/chat/completions", new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Write an example" }),
            ["max_tokens"] = 60,
            ["temperature"] = 0,
            ["response_format"] = new JsonObject
            {
                ["type"] = "json_object",
                ["schema"] = new JsonObject { ["items"] = new JsonArray(new JsonObject { ["type"] = "integer" }, new JsonObject { ["type"] = "boolean" }) },
            },
        });
        Assert.Equal("stop", r["choices"]![0]!["finish_reason"]!.GetValue<string>());
        var array = JsonNode.Parse(r["choices"]![0]!["message"]!["content"]!.GetValue<string>())!.AsArray();
        Assert.Equal(2, array.Count);
        Assert.Equal(System.Text.Json.JsonValueKind.Number, array[0]!.GetValueKind());
        Assert.Contains(array[1]!.GetValueKind(), new[] { System.Text.Json.JsonValueKind.True, System.Text.Json.JsonValueKind.False });
    }

    [Fact]
    public async Task IdleServerSleepsAnswersHealthAndPropsAsleepAndWakesForARequest()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { SleepIdleSeconds = 1 });
        var body = new JsonObject { ["prompt"] = "Once upon a time", ["n_predict"] = 6, ["temperature"] = 0 };
        var before = await s.PostOkAsync("completion", body.DeepClone());
        // wait for the state (the hang guard is generous: a loaded machine may delay the idle timer)
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!s.Host.IsSleeping && DateTime.UtcNow < deadline) await Task.Delay(50, Ct);
        Assert.True(s.Host.IsSleeping);
        Assert.Null(s.Host.Engine);   // the engine and its KV cache were released

        using (var health = await s.Http.GetAsync("health", Ct)) Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        var props = JsonNode.Parse(await s.Http.GetStringAsync("props", Ct))!;
        Assert.True(props["is_sleeping"]!.GetValue<bool>());
        Assert.Equal(1024, props["default_generation_settings"]!["n_ctx"]!.GetValue<int>());
        Assert.True(s.Host.IsSleeping);   // neither /health nor /props woke it

        var after = await s.PostOkAsync("completion", body.DeepClone());
        Assert.Equal(before["content"]!.GetValue<string>(), after["content"]!.GetValue<string>());
        Assert.False(JsonNode.Parse(await s.Http.GetStringAsync("props", Ct))!["is_sleeping"]!.GetValue<bool>());
        Assert.NotNull(s.Host.Engine);
    }

    [Fact]
    public async Task ResponsesStreamReportsProgressTimingsPerTokenAndFinalTimings()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { Engine = o.Engine with { MaxNumBatchedTokens = 16 } });
        using var res = await s.PostStreamAsync("v1/responses", new JsonObject
        {
            ["input"] = LongPrompt,
            ["max_output_tokens"] = 4,
            ["temperature"] = 0,
            ["ignore_eos"] = true,
            ["stream"] = true,
            ["timings_per_token"] = true,
            ["return_progress"] = true,
        }, Ct);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        // typed events: "event: name" then "data: {...}" lines
        var events = (await res.Content.ReadAsStringAsync(Ct)).Split('\n')
            .Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => JsonNode.Parse(l["data: ".Length..])!.AsObject()).ToList();
        var progress = events.Where(e => e["prompt_progress"] is not null).ToList();
        Assert.True(progress.Count >= 3, $"{progress.Count} progress events");   // the start and a chunk of 16 at a time
        Assert.All(progress, e => Assert.Equal("response.in_progress", e["type"]!.GetValue<string>()));
        var last = progress[^1]["prompt_progress"]!;
        Assert.Equal(last["total"]!.GetValue<int>(), last["processed"]!.GetValue<int>());
        var deltas = events.Where(e => e["type"]!.GetValue<string>() == "response.output_text.delta").ToList();
        Assert.NotEmpty(deltas);
        Assert.All(deltas, d => Assert.NotNull(d["timings"]!["predicted_per_second"]));
        var end = events[^1];
        Assert.Equal(4, end["timings"]!["predicted_n"]!.GetValue<int>());
        Assert.Equal(4, end["response"]!["usage"]!["output_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task FingerprintAndBuildInfoHaveLlamaServersShape()
    {
        await using var s = await ServerHarness.StartAsync();
        var r = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = "Once", ["max_tokens"] = 1 });
        var fingerprint = r["system_fingerprint"]!.GetValue<string>();
        Assert.Matches(@"^b\d+\.\d+\.\d+-sharpinfer$", fingerprint);
        Assert.Equal(fingerprint, JsonNode.Parse(await s.Http.GetStringAsync("props", Ct))!["build_info"]!.GetValue<string>());
    }
}

