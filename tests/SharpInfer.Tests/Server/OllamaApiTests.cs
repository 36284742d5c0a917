using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using SharpInfer.Server;

namespace SharpInfer.Tests.Server;

/// <summary>
/// Ollama's API (<c>/api/*</c>) over raw HTTP: replies equal what the OpenAI routes give for the same prompt and
/// sampling (the Ollama routes are a translation onto the same chat path), NDJSON streams reassemble to the whole
/// reply, counts equal the tokenizer's, and bad requests get Ollama's <c>{"error": "..."}</c> with a 4xx.
/// </summary>
public class OllamaApiTests
{
    /// <summary>Greedy, and no repeat penalty (Ollama's default is 1.1), so the OpenAI route's defaults match.</summary>
    internal static JsonObject Greedy(int numPredict) => new() { ["temperature"] = 0, ["repeat_penalty"] = 1.0, ["num_predict"] = numPredict };

    internal static JsonArray Conversation(string user, string? system = "Be brief.")
    {
        var messages = new JsonArray();
        if (system != null) messages.Add(new JsonObject { ["role"] = "system", ["content"] = system });
        messages.Add(new JsonObject { ["role"] = "user", ["content"] = user });
        return messages;
    }

    /// <summary>The lines of an NDJSON response, each parsed.</summary>
    internal static async Task<List<JsonObject>> ReadNdjsonAsync(HttpResponseMessage res)
    {
        var lines = new List<JsonObject>();
        using var reader = new StreamReader(await res.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken));
        while (await reader.ReadLineAsync(TestContext.Current.CancellationToken) is { } line)
        {
            Assert.NotEqual("", line);   // one object per line, nothing between
            lines.Add((JsonObject)JsonNode.Parse(line)!);
        }
        return lines;
    }

    internal static async Task<(HttpResponseMessage Response, List<JsonObject> Lines)> StreamAsync(ServerHarness s, string path, JsonObject body)
    {
        var res = await s.PostStreamAsync(path, body, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        return (res, await ReadNdjsonAsync(res));
    }

    [Fact]
    public async Task ChatMatchesChatCompletionsAndItsStreamReassembles()
    {
        await using var s = await ServerHarness.StartAsync();
        var body = new JsonObject { ["model"] = s.ModelId, ["messages"] = Conversation("Once upon a time"), ["options"] = Greedy(12), ["stream"] = false };
        var whole = await s.PostOkAsync("api/chat", body);
        var chat = await s.PostOkAsync("v1/chat/completions", new JsonObject { ["messages"] = Conversation("Once upon a time"), ["max_tokens"] = 12, ["temperature"] = 0 });
        var choice = chat["choices"]![0]!;
        Assert.Equal(choice["message"]!["content"]!.GetValue<string>(), whole["message"]!["content"]!.GetValue<string>());
        Assert.Equal("assistant", whole["message"]!["role"]!.GetValue<string>());
        Assert.Equal(choice["finish_reason"]!.GetValue<string>(), whole["done_reason"]!.GetValue<string>());
        Assert.True(whole["done"]!.GetValue<bool>());
        Assert.Equal(chat["usage"]!["prompt_tokens"]!.GetValue<int>(), whole["prompt_eval_count"]!.GetValue<int>());
        Assert.Equal(chat["usage"]!["completion_tokens"]!.GetValue<int>(), whole["eval_count"]!.GetValue<int>());
        AssertDurations(whole);
        Assert.Equal(s.ModelId, whole["model"]!.GetValue<string>());
        Assert.True(DateTimeOffset.TryParse(whole["created_at"]!.GetValue<string>(), out _));

        // streaming is the default: NDJSON, one piece per line, then the final object with the counts
        body.Remove("stream");
        var (res, lines) = await StreamAsync(s, "api/chat", body);
        using var response = res;
        Assert.Equal("application/x-ndjson", res.Content.Headers.ContentType!.MediaType);
        Assert.All(lines.SkipLast(1), l => Assert.False(l["done"]!.GetValue<bool>()));
        var last = lines[^1];
        Assert.True(last["done"]!.GetValue<bool>());
        Assert.Equal("", last["message"]!["content"]!.GetValue<string>());
        Assert.Equal(whole["message"]!["content"]!.GetValue<string>(), string.Concat(lines.Select(l => l["message"]!["content"]!.GetValue<string>())));
        Assert.Equal(whole["eval_count"]!.GetValue<int>(), last["eval_count"]!.GetValue<int>());
        Assert.Equal(whole["prompt_eval_count"]!.GetValue<int>(), last["prompt_eval_count"]!.GetValue<int>());
        AssertDurations(last);
    }

    /// <summary>Durations are measured nanoseconds: positive, and none longer than the whole request.</summary>
    internal static void AssertDurations(JsonObject final)
    {
        long total = final["total_duration"]!.GetValue<long>();
        Assert.True(total > 0);
        foreach (var name in new[] { "load_duration", "prompt_eval_duration", "eval_duration" })
        {
            long d = final[name]!.GetValue<long>();
            Assert.InRange(d, 0, total);
        }
        Assert.True(final["prompt_eval_duration"]!.GetValue<long>() > 0);
    }

    [Fact]
    public async Task GenerateMatchesTheOpenAiRoutesAndReturnsItsContext()
    {
        await using var s = await ServerHarness.StartAsync();
        // templated: the system and the prompt as a two-message chat
        var gen = await s.PostOkAsync("api/generate", new JsonObject
        {
            ["model"] = s.ModelId + ":latest",
            ["prompt"] = "Once upon a time",
            ["system"] = "Be brief.",
            ["options"] = Greedy(10),
            ["stream"] = false,
        });
        var chat = await s.PostOkAsync("v1/chat/completions", new JsonObject { ["messages"] = Conversation("Once upon a time"), ["max_tokens"] = 10, ["temperature"] = 0 });
        Assert.Equal(chat["choices"]![0]!["message"]!["content"]!.GetValue<string>(), gen["response"]!.GetValue<string>());
        int promptTokens = gen["prompt_eval_count"]!.GetValue<int>();
        Assert.Equal(chat["usage"]!["prompt_tokens"]!.GetValue<int>(), promptTokens);
        AssertDurations(gen);

        // context: the prompt's and the reply's token ids, which decode to the reply's text at the end
        var context = gen["context"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
        Assert.Equal(promptTokens + gen["eval_count"]!.GetValue<int>(), context.Length);
        var tokenizer = s.Engine.Model.Tokenizer;
        Assert.Equal(gen["response"]!.GetValue<string>(), tokenizer.Decode(context[promptTokens..]));

        // raw: the prompt as it is, as /v1/completions tokenizes it
        var raw = await s.PostOkAsync("api/generate", new JsonObject
        {
            ["model"] = s.ModelId,
            ["prompt"] = "Once upon a time",
            ["raw"] = true,
            ["options"] = Greedy(10),
            ["stream"] = false,
        });
        var completion = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = "Once upon a time", ["max_tokens"] = 10, ["temperature"] = 0 });
        Assert.Equal(completion["choices"]![0]!["text"]!.GetValue<string>(), raw["response"]!.GetValue<string>());
        Assert.Equal(completion["usage"]!["prompt_tokens"]!.GetValue<int>(), raw["prompt_eval_count"]!.GetValue<int>());

        // a follow-up with that context continues the same sequence: its prompt is the context, then the new prompt
        var next = await s.PostOkAsync("api/generate", new JsonObject
        {
            ["model"] = s.ModelId,
            ["prompt"] = " and then",
            ["raw"] = true,
            ["context"] = raw["context"]!.DeepClone(),
            ["options"] = Greedy(6),
            ["stream"] = false,
        });
        var earlier = raw["context"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
        var newPrompt = tokenizer.Encode(" and then", addSpecial: true, parseSpecial: true);
        int bos = newPrompt[0] == tokenizer.Vocabulary.BosId ? 1 : 0;
        Assert.Equal(earlier.Length + newPrompt.Length - bos, next["prompt_eval_count"]!.GetValue<int>());
        var nextContext = next["context"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
        Assert.Equal(earlier, nextContext[..earlier.Length]);
        var expected = await s.PostOkAsync("v1/completions", new JsonObject
        {
            ["prompt"] = new JsonArray([.. earlier.Concat(newPrompt[bos..]).Select(i => (JsonNode)i)]),
            ["max_tokens"] = 6,
            ["temperature"] = 0,
        });
        Assert.Equal(expected["choices"]![0]!["text"]!.GetValue<string>(), next["response"]!.GetValue<string>());
    }

    [Fact]
    public async Task GenerateStreamsResponsePiecesAndEndsWithTheContext()
    {
        await using var s = await ServerHarness.StartAsync();
        var body = new JsonObject { ["model"] = s.ModelId, ["prompt"] = "Once", ["raw"] = true, ["options"] = Greedy(8) };
        var (res, lines) = await StreamAsync(s, "api/generate", body);
        res.Dispose();
        body["stream"] = false;
        var whole = await s.PostOkAsync("api/generate", body);
        Assert.Equal(whole["response"]!.GetValue<string>(), string.Concat(lines.Select(l => l["response"]!.GetValue<string>())));
        Assert.Equal(whole["context"]!.ToJsonString(), lines[^1]["context"]!.ToJsonString());
        Assert.Equal("length", lines[^1]["done_reason"]!.GetValue<string>());
        Assert.Equal(8, lines[^1]["eval_count"]!.GetValue<int>());
    }

    private const string CitySchema = """{"type":"object","properties":{"city":{"type":"string","maxLength":12},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","days"],"additionalProperties":false}""";

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task FormatSchemaGivesValidJson(bool stream)
    {
        await using var s = await ServerHarness.StartAsync();
        var body = new JsonObject
        {
            ["model"] = s.ModelId,
            ["messages"] = Conversation("Plan a trip."),
            ["format"] = JsonNode.Parse(CitySchema),
            ["options"] = new JsonObject { ["seed"] = 3, ["num_predict"] = 120 },
            ["stream"] = stream,
        };
        string content;
        if (stream)
        {
            var (res, lines) = await StreamAsync(s, "api/chat", body);
            res.Dispose();
            content = string.Concat(lines.Select(l => l["message"]!["content"]!.GetValue<string>()));
            Assert.Equal("stop", lines[^1]["done_reason"]!.GetValue<string>());
        }
        else content = (await s.PostOkAsync("api/chat", body))["message"]!["content"]!.GetValue<string>();
        using var doc = JsonDocument.Parse(content);
        Assert.True(JsonSchema.FromText(CitySchema).Evaluate(doc.RootElement).IsValid, content);

        // "json": any JSON object
        body["format"] = "json";
        body["stream"] = false;
        var json = (await s.PostOkAsync("api/chat", body))["message"]!["content"]!.GetValue<string>();
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(json).RootElement.ValueKind);
    }

    internal const string WeatherParameters = """{"type":"object","properties":{"city":{"type":"string","maxLength":12}},"required":["city"],"additionalProperties":false}""";

    /// <summary>stories260K has no tool syntax in its template, so tools use the generic JSON reply; a <c>format</c>
    /// schema of that reply's call shape makes the random model call the tool.</summary>
    internal static JsonObject ToolCallFormat() => new()
    {
        ["type"] = "object",
        ["properties"] = new JsonObject
        {
            ["tool_call"] = new JsonObject
            {
                ["type"] = "object",
                ["properties"] = new JsonObject { ["name"] = new JsonObject { ["enum"] = new JsonArray("get_weather") }, ["arguments"] = JsonNode.Parse(WeatherParameters) },
                ["required"] = new JsonArray("name", "arguments"),
                ["additionalProperties"] = false,
            },
        },
        ["required"] = new JsonArray("tool_call"),
        ["additionalProperties"] = false,
    };

    internal static JsonArray WeatherTool() => new(new JsonObject
    {
        ["type"] = "function",
        ["function"] = new JsonObject { ["name"] = "get_weather", ["description"] = "Weather of a city", ["parameters"] = JsonNode.Parse(WeatherParameters) },
    });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ToolCallsHaveObjectArgumentsAndGoBackIntoThePrompt(bool stream)
    {
        await using var s = await ServerHarness.StartAsync();
        var body = new JsonObject
        {
            ["model"] = s.ModelId,
            ["messages"] = Conversation("Weather in Paris?", null),
            ["tools"] = WeatherTool(),
            ["format"] = ToolCallFormat(),
            ["options"] = new JsonObject { ["temperature"] = 0, ["num_predict"] = 200 },
            ["stream"] = stream,
        };
        JsonNode call;
        if (stream)
        {
            var (res, lines) = await StreamAsync(s, "api/chat", body);
            res.Dispose();
            call = Assert.Single(lines.SelectMany(l => l["message"]!["tool_calls"]?.AsArray() ?? []))!;
            Assert.Equal("", string.Concat(lines.Select(l => l["message"]!["content"]!.GetValue<string>())));
        }
        else
        {
            var whole = await s.PostOkAsync("api/chat", body);
            call = Assert.Single(whole["message"]!["tool_calls"]!.AsArray())!;
            Assert.Equal("stop", whole["done_reason"]!.GetValue<string>());
        }
        Assert.Equal("get_weather", call["function"]!["name"]!.GetValue<string>());
        var args = Assert.IsType<JsonObject>(call["function"]!["arguments"]);
        Assert.True(JsonSchema.FromText(WeatherParameters).Evaluate(JsonDocument.Parse(args.ToJsonString()).RootElement).IsValid, args.ToJsonString());

        // the call and its result sent back: the prompt is the one chat completions renders for the same conversation
        var history = Conversation("Weather in Paris?", null);
        history.Add(new JsonObject { ["role"] = "assistant", ["content"] = "", ["tool_calls"] = new JsonArray(new JsonObject { ["function"] = new JsonObject { ["name"] = "get_weather", ["arguments"] = args.DeepClone() } }) });
        history.Add(new JsonObject { ["role"] = "tool", ["content"] = "21 C and sunny", ["tool_name"] = "get_weather" });
        var next = await s.PostOkAsync("api/chat", new JsonObject
        {
            ["model"] = s.ModelId,
            ["messages"] = history,
            ["tools"] = WeatherTool(),
            ["options"] = Greedy(4),
            ["stream"] = false,
        });
        var openAi = Conversation("Weather in Paris?", null);
        openAi.Add(new JsonObject
        {
            ["role"] = "assistant",
            ["content"] = "",
            ["tool_calls"] = new JsonArray(new JsonObject { ["id"] = "call_0", ["type"] = "function", ["function"] = new JsonObject { ["name"] = "get_weather", ["arguments"] = args.ToJsonString() } }),
        });
        openAi.Add(new JsonObject { ["role"] = "tool", ["content"] = "21 C and sunny", ["tool_call_id"] = "call_0", ["name"] = "get_weather" });
        var chat = await s.PostOkAsync("v1/chat/completions", new JsonObject { ["messages"] = openAi, ["tools"] = WeatherTool(), ["max_tokens"] = 4, ["temperature"] = 0 });
        Assert.Equal(chat["usage"]!["prompt_tokens"]!.GetValue<int>(), next["prompt_eval_count"]!.GetValue<int>());
        Assert.Equal(chat["choices"]![0]!["message"]!["content"]?.GetValue<string>() ?? "", next["message"]!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task ThinkSwitchesTheTemplateAndReturnsReasoningAsThinking()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        JsonObject Body(bool think) => new()
        {
            ["model"] = s.ModelId,
            ["messages"] = Conversation("2+2?", null),
            ["think"] = think,
            ["format"] = JsonNode.Parse(CitySchema),
            ["options"] = new JsonObject { ["temperature"] = 0, ["num_predict"] = 200, ["repeat_penalty"] = 1.0 },
            ["stream"] = false,
        };
        JsonObject Chat(bool think) => new()
        {
            ["messages"] = Conversation("2+2?", null),
            ["chat_template_kwargs"] = new JsonObject { ["enable_thinking"] = think },
            ["response_format"] = new JsonObject { ["type"] = "json_schema", ["json_schema"] = new JsonObject { ["name"] = "x", ["schema"] = JsonNode.Parse(CitySchema) } },
            ["max_tokens"] = 200,
            ["temperature"] = 0,
        };
        foreach (bool think in new[] { false, true })
        {
            var ollama = await s.PostOkAsync("api/chat", Body(think));
            var chat = await s.PostOkAsync("v1/chat/completions", Chat(think));
            var message = chat["choices"]![0]!["message"]!;
            Assert.Equal(chat["usage"]!["prompt_tokens"]!.GetValue<int>(), ollama["prompt_eval_count"]!.GetValue<int>());
            Assert.Equal(message["content"]!.GetValue<string>(), ollama["message"]!["content"]!.GetValue<string>());
            Assert.Equal(message["reasoning_content"]?.GetValue<string>(), ollama["message"]!["thinking"]?.GetValue<string>());
        }
        // thinking off renders the template's empty think block, so the two prompts differ
        var off = await s.PostOkAsync("api/chat", Body(false));
        var on = await s.PostOkAsync("api/chat", Body(true));
        Assert.NotEqual(off["prompt_eval_count"]!.GetValue<int>(), on["prompt_eval_count"]!.GetValue<int>());
    }

    [Fact]
    public async Task EmbedIsNormalizedAndEqualsTheOpenAiEmbedding()
    {
        await using var s = await ServerHarness.StartAsync();
        var embed = await s.PostOkAsync("api/embed", new JsonObject { ["model"] = s.ModelId, ["input"] = new JsonArray("hello there", "a cat") });
        var openAi = await s.PostOkAsync("v1/embeddings", new JsonObject { ["input"] = new JsonArray("hello there", "a cat") });
        var vectors = embed["embeddings"]!.AsArray();
        Assert.Equal(2, vectors.Count);
        for (int i = 0; i < 2; i++)
        {
            var v = vectors[i]!.AsArray().Select(x => x!.GetValue<double>()).ToArray();
            var expected = openAi["data"]![i]!["embedding"]!.AsArray().Select(x => x!.GetValue<double>()).ToArray();
            Assert.Equal(expected.Length, v.Length);
            for (int j = 0; j < v.Length; j++) Assert.Equal(expected[j], v[j], 6);
            Assert.Equal(1.0, Math.Sqrt(v.Sum(x => x * x)), 4);
        }
        Assert.Equal(openAi["usage"]!["prompt_tokens"]!.GetValue<int>(), embed["prompt_eval_count"]!.GetValue<int>());
        Assert.True(embed["total_duration"]!.GetValue<long>() > 0);

        // the legacy route: one vector, not normalized (llama-server's /embedding with embd_normalize -1)
        var legacy = await s.PostOkAsync("api/embeddings", new JsonObject { ["model"] = s.ModelId, ["prompt"] = "hello there" });
        using var raw = await s.Http.PostAsync("embedding", ServerHarness.JsonContent(new JsonObject { ["content"] = "hello there", ["embd_normalize"] = -1 }),
                                               TestContext.Current.CancellationToken);
        var rawVector = JsonNode.Parse(await raw.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        var l = legacy["embedding"]!.AsArray().Select(x => x!.GetValue<double>()).ToArray();
        var r = rawVector![0]!["embedding"]![0]!.AsArray().Select(x => x!.GetValue<double>()).ToArray();
        Assert.Equal(r.Length, l.Length);
        for (int j = 0; j < l.Length; j++) Assert.Equal(r[j], l[j], 5);
    }

    [Fact]
    public async Task EmbedTruncatesOverLongInputsUnlessAskedNotTo()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { Engine = o.Engine with { MaxModelLen = 64 } });
        string longText = string.Join(" ", Enumerable.Repeat("the cat sat on the mat", 40));
        var cut = await s.PostOkAsync("api/embed", new JsonObject { ["model"] = s.ModelId, ["input"] = longText });
        Assert.Equal(64, cut["prompt_eval_count"]!.GetValue<int>());
        var (status, error, _) = await s.PostAsync("api/embed", new JsonObject { ["model"] = s.ModelId, ["input"] = longText, ["truncate"] = false });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("context length", error["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task ModelEndpointsDescribeTheServedModel()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var model = s.Engine.Model;
        var tags = await GetJsonAsync(s, "api/tags");
        var entry = Assert.Single(tags["models"]!.AsArray())!;
        Assert.Equal(s.ModelId + ":latest", entry["name"]!.GetValue<string>());
        Assert.Equal(model.File.FileSize, entry["size"]!.GetValue<long>());
        Assert.Equal(64, entry["digest"]!.GetValue<string>().Length);
        Assert.Equal("gguf", entry["details"]!["format"]!.GetValue<string>());
        Assert.Equal(model.Config.Architecture, entry["details"]!["family"]!.GetValue<string>());

        var show = await s.PostOkAsync("api/show", new JsonObject { ["model"] = entry["name"]!.GetValue<string>() });
        var info = show["model_info"]!.AsObject();
        Assert.Equal(model.Config.Architecture, info["general.architecture"]!.GetValue<string>());
        Assert.Equal(model.Config.LayerCount, info[$"{model.Config.Architecture}.block_count"]!.GetValue<int>());
        Assert.Equal(model.File.Tensors.Sum(t => t.ElementCount), info["general.parameter_count"]!.GetValue<long>());
        Assert.Null(info["tokenizer.ggml.tokens"]);   // long arrays only with verbose
        Assert.True(info.ContainsKey("tokenizer.ggml.tokens"));
        Assert.Equal(s.Host.Prompts!.Formatter.Template.Source, show["template"]!.GetValue<string>());
        var capabilities = show["capabilities"]!.AsArray().Select(c => c!.GetValue<string>()).ToArray();
        Assert.Equal(["completion", "tools", "thinking"], capabilities);
        var verbose = await s.PostOkAsync("api/show", new JsonObject { ["model"] = s.ModelId, ["verbose"] = true });
        Assert.Equal(model.Config.VocabSize, verbose["model_info"]!["tokenizer.ggml.tokens"]!.AsArray().Count);

        var ps = await GetJsonAsync(s, "api/ps");
        Assert.Equal(s.Engine.MaxModelLen, Assert.Single(ps["models"]!.AsArray())!["context_length"]!.GetValue<int>());
        Assert.Matches(@"^\d+\.\d+\.\d+$", (await GetJsonAsync(s, "api/version"))["version"]!.GetValue<string>());

        // GET / on the main port is the web page (llama-server's); Ollama's "Ollama is running" answers on --ollama-port
        var root = await s.Http.GetStringAsync("/", TestContext.Current.CancellationToken);
        Assert.StartsWith("<!doctype html>", root);
        using var head = await s.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
    }

    internal static async Task<JsonObject> GetJsonAsync(ServerHarness s, string path)
    {
        using var res = await s.Http.GetAsync(path, TestContext.Current.CancellationToken);
        var text = await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(res.IsSuccessStatusCode, text);
        return (JsonObject)JsonNode.Parse(text)!;
    }

    [Fact]
    public async Task EmptyRequestsLoadTheModelWithoutGenerating()
    {
        await using var s = await ServerHarness.StartAsync();
        var load = await s.PostOkAsync("api/chat", new JsonObject { ["model"] = s.ModelId, ["messages"] = new JsonArray() });
        Assert.Equal("load", load["done_reason"]!.GetValue<string>());
        Assert.True(load["done"]!.GetValue<bool>());
        var unload = await s.PostOkAsync("api/generate", new JsonObject { ["model"] = s.ModelId, ["keep_alive"] = 0 });
        Assert.Equal("unload", unload["done_reason"]!.GetValue<string>());
        // the model stays: it is the server's
        var again = await s.PostOkAsync("api/generate", new JsonObject { ["model"] = s.ModelId, ["prompt"] = "Once", ["keep_alive"] = "5m", ["options"] = Greedy(2), ["stream"] = false });
        Assert.Equal(2, again["eval_count"]!.GetValue<int>());
    }

    [Fact]
    public async Task OptionsBecomeSamplingParameters()
    {
        await using var s = await ServerHarness.StartAsync();
        // seed, top_k, stop and Ollama's default repeat penalty give the same text as the OpenAI route with the same values
        var ollama = await s.PostOkAsync("api/generate", new JsonObject
        {
            ["model"] = s.ModelId,
            ["prompt"] = "Once upon a time",
            ["raw"] = true,
            ["stream"] = false,
            ["options"] = new JsonObject { ["seed"] = 42, ["temperature"] = 0.9, ["top_k"] = 20, ["top_p"] = 0.8, ["min_p"] = 0.05, ["num_predict"] = 24, ["stop"] = new JsonArray("Lily"), ["num_thread"] = 8 },
        });
        var openAi = await s.PostOkAsync("v1/completions", new JsonObject
        {
            ["prompt"] = "Once upon a time",
            ["seed"] = 42,
            ["temperature"] = 0.9,
            ["top_k"] = 20,
            ["top_p"] = 0.8,
            ["min_p"] = 0.05,
            ["max_tokens"] = 24,
            ["stop"] = new JsonArray("Lily"),
            ["repetition_penalty"] = 1.1,
            ["repeat_last_n"] = 64,
        });
        Assert.Equal(openAi["choices"]![0]!["text"]!.GetValue<string>(), ollama["response"]!.GetValue<string>());
        Assert.Equal(openAi["choices"]![0]!["finish_reason"]!.GetValue<string>(), ollama["done_reason"]!.GetValue<string>());

        // num_ctx smaller than the server's context bounds the request
        var small = await s.PostOkAsync("api/generate", new JsonObject
        {
            ["model"] = s.ModelId,
            ["prompt"] = "Once upon a time",
            ["raw"] = true,
            ["stream"] = false,
            ["options"] = new JsonObject { ["num_ctx"] = 8, ["temperature"] = 0 },
        });
        Assert.Equal(8, small["prompt_eval_count"]!.GetValue<int>() + small["eval_count"]!.GetValue<int>());
        Assert.Equal("length", small["done_reason"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("api/chat", "{bad json", 400, "parse")]
    [InlineData("api/chat", """{"messages":[{"role":"user","content":"hi"}]}""", 400, "model is required")]
    [InlineData("api/chat", """{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}""", 404, "model 'llama3.2' not found")]
    [InlineData("api/chat", """{"model":"M","messages":"hi"}""", 400, "messages")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"wizard","content":"hi"}]}""", 400, "messages[0].role")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi","images":["aGVsbG8="]}]}""", 400, "images")]
    [InlineData("api/generate", """{"model":"M","prompt":"hi","images":["aGVsbG8="]}""", 400, "images")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"options":{"temperature":"hot"}}""", 400, "options.temperature")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"options":{"temperature":-3}}""", 400, "options.temperature")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"options":{"top_p":7}}""", 400, "options.top_p")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":-7}}""", 400, "num_predict")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":1e300}}""", 400, "num_predict")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":100000}}""", 400, "maximum context length")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"options":{"num_ctx":100000000}}""", 400, "num_ctx")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"options":[1]}""", 400, "options")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"format":"xml"}""", 400, "format")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"format":{"type":"nonsense"}}""", 400, "format")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"think":"maybe"}""", 400, "think")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"keep_alive":{"a":1}}""", 400, "keep_alive")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"keep_alive":"soon"}""", 400, "keep_alive")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}]}""", 400, "tools[0]")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}]}""", 400, "arguments")]
    [InlineData("api/chat", """{"model":"M","messages":[{"role":"user","content":"hi"}],"stream":"yes"}""", 400, "stream")]
    [InlineData("api/generate", """{"model":"M","prompt":"hi","template":"{{ .Prompt }}"}""", 400, "template")]
    [InlineData("api/generate", """{"model":"M","prompt":"hi","suffix":"end"}""", 400, "suffix")]
    [InlineData("api/generate", """{"model":"M","prompt":"hi","context":[1,2,99999]}""", 400, "context")]
    [InlineData("api/generate", """{"model":"M","prompt":"hi","context":"abc"}""", 400, "context")]
    [InlineData("api/generate", """{"model":"M","prompt":"hi","raw":true,"system":"x"}""", 400, "system")]
    [InlineData("api/generate", """{"model":"M","prompt":"hi","logprobs":true}""", 400, "logprobs")]
    [InlineData("api/embed", """{"model":"M","input":[1,2]}""", 400, "input[0]")]
    [InlineData("api/embed", """{"model":"M","input":{"a":1}}""", 400, "input")]
    [InlineData("api/embed", """{"model":"M","input":"hi","dimensions":0}""", 400, "dimensions")]
    [InlineData("api/embeddings", """{"model":"nope","prompt":"hi"}""", 404, "not found")]
    [InlineData("api/show", """{"model":"nope"}""", 404, "not found")]
    [InlineData("api/show", """{}""", 400, "model is required")]
    public async Task BadRequestsGetOllamasErrorShape(string path, string body, int status, string mentions)
    {
        await using var s = await ServerHarness.StartAsync();
        using var content = new StringContent(body.Replace("\"M\"", JsonSerializer.Serialize(s.ModelId)), Encoding.UTF8, "application/json");
        using var res = await s.Http.PostAsync(path, content, TestContext.Current.CancellationToken);
        var text = await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Equal(status, (int)res.StatusCode);
        var error = Assert.IsType<JsonObject>(JsonNode.Parse(text));
        Assert.Equal(["error"], error.Select(p => p.Key));
        Assert.Contains(mentions, error["error"]!.GetValue<string>());
        Assert.True(await s.WaitIdleAsync());
    }

    [Fact]
    public async Task UnknownRoutesWrongMethodsAndMissingKeysUseTheShapeToo()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { ApiKey = "secret" });
        using (var res = await s.Http.GetAsync("api/nope", TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, res.StatusCode);   // the key is checked first under /api
            Assert.NotNull(JsonNode.Parse(await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["error"]!.GetValue<string>());
        }
        s.Http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "secret");
        using (var res = await s.Http.GetAsync("api/nope", TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.NotFound, res.StatusCode);
            Assert.Contains("/api/nope", JsonNode.Parse(await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["error"]!.GetValue<string>());
        }
        using (var res = await s.Http.GetAsync("api/chat", TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, res.StatusCode);
            Assert.IsType<JsonValue>(JsonNode.Parse(await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["error"], exactMatch: false);
        }
        // GET / stays open (the web page on the main port; Ollama's liveness answer on --ollama-port)
        s.Http.DefaultRequestHeaders.Authorization = null;
        Assert.StartsWith("<!doctype html>", await s.Http.GetStringAsync("/", TestContext.Current.CancellationToken));
    }

    [Fact]
    public Task ClientLeavingAStreamAbortsItsRequest() =>
        // a long string forced by the format grammar keeps the random model from stopping on its own
        DisconnectCheck.StreamAbortsAsync("api/chat", new JsonObject
        {
            ["model"] = "stories260K",   // the harness serves stories260K.gguf under its file name
            ["messages"] = Conversation("Once upon a time"),
            ["format"] = new JsonObject { ["type"] = "string", ["minLength"] = 4000 },
            ["options"] = new JsonObject { ["num_predict"] = 900, ["seed"] = 1 },
        }, "\"done\":false");

    [Fact]
    public async Task OllamaPortIsASecondListener()
    {
        await using var s = await ServerHarness.StartAsync(loopback: true, configure: o => o with { OllamaPort = 0 });
        var urls = s.App.Urls.ToArray();
        Assert.Equal(2, urls.Length);
        using var http = new HttpClient { BaseAddress = new Uri(urls[1] + "/") };
        Assert.Equal("Ollama is running", await http.GetStringAsync("/", TestContext.Current.CancellationToken));
        // the main port's / is the web page
        Assert.StartsWith("<!doctype html>", await s.Http.GetStringAsync("/", TestContext.Current.CancellationToken));
        using var res = await http.PostAsync("api/generate", new StringContent(
            new JsonObject { ["model"] = s.ModelId, ["prompt"] = "Once", ["raw"] = true, ["stream"] = false, ["options"] = Greedy(3) }.ToJsonString(),
            Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal(3, JsonNode.Parse(await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["eval_count"]!.GetValue<int>());
        Assert.Throws<SharpInfer.InvalidRequestException>(() => new ServerOptions { ModelPath = "a.gguf", Port = 8080, OllamaPort = 8080 }.Validate());
    }
}
