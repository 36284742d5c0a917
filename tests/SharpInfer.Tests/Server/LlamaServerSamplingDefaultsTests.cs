using System.Text;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Server;

/// <summary><c>serve --sampling-defaults llama-server</c>: the OpenAI routes fill omitted sampling fields with
/// llama-server's defaults and sample with llama.cpp's chain — the one the native <c>/completion</c> uses — so the same
/// prompt and seed give the same text on both; explicit fields still win; without the flag nothing changes.</summary>
public class LlamaServerSamplingDefaultsTests
{
    private const string Prompt = "Once upon a time, there was a little";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<ServerHarness> Start(bool llamaServer, int? nPredict = null) =>
        ServerHarness.StartAsync(configure: o => o with { LlamaServerSampling = llamaServer, DefaultSeed = 42, DefaultNPredict = nPredict });

    private static JsonArray Chat() => new(
        new JsonObject { ["role"] = "system", ["content"] = "Book" },
        new JsonObject { ["role"] = "user", ["content"] = "What is the best book" });

    private static async Task<string> Direct(ServerHarness s, SamplingParams sampling)
    {
        var prompt = s.Engine.Model.Tokenizer.Encode(Prompt, addSpecial: true, parseSpecial: true);
        var text = new StringBuilder();
        await foreach (var o in s.Engine.AddRequest(new EngineRequest { PromptTokens = prompt, Sampling = sampling }, Ct))
            text.Append(o.Text);
        return text.ToString();
    }

    private static string Text(JsonObject v1) => v1["choices"]![0]!["text"]!.GetValue<string>();

    [Fact]
    public async Task SeededChatAndCompletionsEqualNativeCompletionOnTheSamePrompt()
    {
        await using var s = await Start(llamaServer: true);
        // the chat turn's rendered prompt, sent as is to the native route (which samples with llama.cpp's chain)
        var rendered = (await s.PostOkAsync("apply-template", new JsonObject { ["messages"] = Chat() }))["prompt"]!.GetValue<string>();
        var native = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = rendered, ["n_predict"] = 16 });
        var chat = await s.PostOkAsync("v1/chat/completions", new JsonObject { ["messages"] = Chat(), ["max_tokens"] = 16 });
        Assert.Equal(native["content"]!.GetValue<string>(), chat["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal(native["tokens_evaluated"]!.GetValue<int>(), chat["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.Equal(16, chat["usage"]!["completion_tokens"]!.GetValue<int>());

        var nativeRaw = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = Prompt, ["n_predict"] = 16 });
        var v1 = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = Prompt, ["max_tokens"] = 16 });
        Assert.Equal(nativeRaw["content"]!.GetValue<string>(), Text(v1));
        // it is sampled (temperature 0.8 with --seed), not greedy
        var greedy = await Direct(s, SamplingParams.Greedy(16));
        Assert.NotEqual(greedy, Text(v1));
    }

    [Fact]
    public async Task DefaultsFillOnlyOmittedFields()
    {
        await using var s = await Start(llamaServer: true, nPredict: 5);
        // omitted fields: llama-server's values, spelled out on the native route
        var omitted = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = Prompt, ["max_tokens"] = 16 });
        var spelled = await s.PostOkAsync("completion", new JsonObject
        {
            ["prompt"] = Prompt,
            ["n_predict"] = 16,
            ["temperature"] = 0.8,
            ["top_k"] = 40,
            ["top_p"] = 0.95,
            ["min_p"] = 0.05,
            ["seed"] = 42,
        });
        Assert.Equal(spelled["content"]!.GetValue<string>(), Text(omitted));

        // explicit fields win: temperature 0 is greedy; another seed samples as the native route does with that seed
        var greedy = await Direct(s, SamplingParams.Greedy(16));
        Assert.Equal(greedy, Text(await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = Prompt, ["max_tokens"] = 16, ["temperature"] = 0 })));
        var seeded = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = Prompt, ["max_tokens"] = 16, ["seed"] = 7, ["top_k"] = 5 });
        var nativeSeeded = await s.PostOkAsync("completion", new JsonObject { ["prompt"] = Prompt, ["n_predict"] = 16, ["seed"] = 7, ["top_k"] = 5 });
        Assert.Equal(nativeSeeded["content"]!.GetValue<string>(), Text(seeded));
        Assert.NotEqual(Text(omitted), Text(seeded));

        // no max_tokens: the server's --n-predict, on both OpenAI routes
        var v1 = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = Prompt, ["ignore_eos"] = true });
        Assert.Equal(5, v1["usage"]!["completion_tokens"]!.GetValue<int>());
        var chat = await s.PostOkAsync("v1/chat/completions", new JsonObject { ["messages"] = Chat(), ["ignore_eos"] = true });
        Assert.Equal(5, chat["usage"]!["completion_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task WithoutTheFlagTheOpenAiRoutesKeepVllmDefaults()
    {
        await using var s = await Start(llamaServer: false, nPredict: 5);
        // vLLM: temperature 1, no top-k/top-p/min-p, the request's seed only (--seed is the native routes'), vLLM's order
        var v1 = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = Prompt, ["max_tokens"] = 16, ["seed"] = 42 });
        Assert.Equal(await Direct(s, new SamplingParams { Seed = 42, MaxTokens = 16 }), Text(v1));
        // and OpenAI's default of 16 tokens for /v1/completions, not --n-predict
        var unbounded = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = Prompt, ["ignore_eos"] = true });
        Assert.Equal(16, unbounded["usage"]!["completion_tokens"]!.GetValue<int>());
    }
}
