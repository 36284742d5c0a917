using System.Net;
using System.Text.Json.Nodes;
using SharpInfer.Server;

namespace SharpInfer.Tests.Server;

/// <summary>/v1/models, /health, /tokenize, /detokenize, and the small option parsers.</summary>
public class InfoEndpointTests
{
    [Fact]
    public async Task ModelsListsTheServedModel()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { ServedModelName = "my-model" });
        using var res = await s.Http.GetAsync("v1/models", TestContext.Current.CancellationToken);
        var json = JsonNode.Parse(await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        Assert.Equal("list", json["object"]!.GetValue<string>());
        var model = json["data"]![0]!;
        Assert.Equal("my-model", model["id"]!.GetValue<string>());
        Assert.Equal("model", model["object"]!.GetValue<string>());
        Assert.Equal(s.Engine.MaxModelLen, model["max_model_len"]!.GetValue<int>());
        // requests name it by that id
        var ok = await s.PostOkAsync("v1/completions", new JsonObject { ["model"] = "my-model", ["prompt"] = "Hi", ["max_tokens"] = 1 });
        Assert.Equal("my-model", ok["model"]!.GetValue<string>());
    }

    [Fact]
    public void ModelIdIsTheFileNameWithoutGgufUnlessNamed()
    {
        Assert.Equal("Qwen3-0.6B-Q8_0", new ServerOptions { ModelPath = "/models/Qwen3-0.6B-Q8_0.gguf" }.ModelId);
        Assert.Equal("x", new ServerOptions { ModelPath = "/models/a.gguf", ServedModelName = "x" }.ModelId);
        Assert.Equal("http://[::1]:8080", new ServerOptions { ModelPath = "a.gguf", Host = "::1" }.ListenUrl);
        Assert.Throws<InvalidRequestException>(() => new ServerOptions { ModelPath = "a.gguf", Port = 70000 }.Validate());
    }

    [Fact]
    public async Task TokenizeAndDetokenizeRoundTripLikeLlamaServer()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var tok = s.Engine.Model.Tokenizer;
        const string text = "Hello <|im_start|>world, ünïcode!";
        var r = await s.PostOkAsync("tokenize", new JsonObject { ["content"] = text });
        var ids = r["tokens"]!.AsArray().Select(t => t!.GetValue<int>()).ToArray();
        Assert.Equal(tok.Encode(text, addSpecial: false, parseSpecial: true), ids);
        Assert.Contains(s.Engine.Model.Vocabulary.GetId("<|im_start|>"), ids);   // special tokens parsed by default

        var noParse = await s.PostOkAsync("tokenize", new JsonObject { ["content"] = text, ["parse_special"] = false });
        Assert.DoesNotContain(s.Engine.Model.Vocabulary.GetId("<|im_start|>"), noParse["tokens"]!.AsArray().Select(t => t!.GetValue<int>()));

        var pieces = await s.PostOkAsync("tokenize", new JsonObject { ["content"] = "Hi there", ["with_pieces"] = true });
        Assert.Equal("Hi there", string.Concat(pieces["tokens"]!.AsArray().Select(t => t!["piece"]!.GetValue<string>())));

        var back = await s.PostOkAsync("detokenize", new JsonObject { ["tokens"] = new JsonArray([.. ids.Select(i => (JsonNode)i)]) });
        Assert.Equal(text, back["content"]!.GetValue<string>());

        var (status, err, _) = await s.PostAsync("detokenize", new JsonObject { ["tokens"] = new JsonArray(1, -3) });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("tokens", err["error"]!["param"]!.GetValue<string>());
        (status, err, _) = await s.PostAsync("tokenize", new JsonObject { ["content"] = 5 });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("content", err["error"]!["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task TokenizeAddsBosWhenAsked()
    {
        await using var s = await ServerHarness.StartAsync();
        var v = s.Engine.Model.Vocabulary;
        var with = await s.PostOkAsync("tokenize", new JsonObject { ["content"] = "Once", ["add_special"] = true });
        var without = await s.PostOkAsync("tokenize", new JsonObject { ["content"] = "Once" });
        Assert.Equal(v.BosId, with["tokens"]![0]!.GetValue<int>());
        Assert.NotEqual(v.BosId, without["tokens"]![0]!.GetValue<int>());
        Assert.Equal(without["tokens"]!.AsArray().Count + 1, with["tokens"]!.AsArray().Count);
    }

    [Fact]
    public async Task ChatPromptsGetBosOnceAccordingToTheVocabulary()
    {
        // stories260K adds BOS; without a template it gets ChatML (as in llama.cpp), which does not write BOS: one is added
        await using var s = await ServerHarness.StartAsync();
        var builder = new PromptBuilder(s.Engine.Model);
        var v = s.Engine.Model.Vocabulary;
        var messages = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" });
        var (text, tokens) = builder.Build(messages);
        Assert.StartsWith("<|im_start|>user", text);
        Assert.Equal(v.BosId, tokens[0]);
        Assert.Equal(1, tokens.Count(t => t == v.BosId));
        // a template that writes bos_token itself (llama2) gets no second one
        var llama2 = new PromptBuilder(s.Engine.Model, "llama2-sys-bos");
        var (withBos, bosTokens) = llama2.Build(new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" },
                                                              new JsonObject { ["role"] = "assistant", ["content"] = "Yo" },
                                                              new JsonObject { ["role"] = "user", ["content"] = "Again" }));
        Assert.Contains("</s><s>[INST] Again", withBos);
        Assert.Equal(v.BosId, bosTokens[0]);
        Assert.Equal(2, bosTokens.Count(t => t == v.BosId));   // the added one and the template's in the history
        // a rendered prompt without the BOS text gets it prepended
        var plain = builder.Formatter.Tokenize("[INST] Hi [/INST]");
        Assert.Equal(v.BosId, plain[0]);
        Assert.Equal(1, plain.Count(t => t == v.BosId));

        var r = await s.PostOkAsync("v1/chat/completions", new JsonObject { ["messages"] = messages.DeepClone(), ["max_tokens"] = 1 });
        Assert.Equal(tokens.Length, r["usage"]!["prompt_tokens"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("2GiB", 2L << 30)]
    [InlineData("512MiB", 512L << 20)]
    [InlineData("1.5GB", 1_500_000_000L)]
    [InlineData("4096", 4096L)]
    [InlineData("64 KiB", 64L << 10)]
    public void ByteSizesParse(string text, long bytes) => Assert.Equal(bytes, ByteSize.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("GiB")]
    [InlineData("2 parsecs")]
    [InlineData("0")]
    public void BadByteSizesAreRejected(string text) => Assert.Throws<InvalidRequestException>(() => ByteSize.Parse(text));
}
