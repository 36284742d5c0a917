using System.Text.Json.Nodes;
using SharpInfer.Tokenization;
using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Tokenization;

public class ChatTemplateTests
{
    private static JsonArray Messages(string json) => JsonNode.Parse(json)!.AsArray();

    [Theory]
    [InlineData(new[] { "<|im_start|>", "<|start_header_id|>" }, ChatTemplateFallback.ChatMl)]
    [InlineData(new[] { "<|start_header_id|>" }, ChatTemplateFallback.Llama3)]
    [InlineData(new string[0], ChatTemplateFallback.Llama2)]
    public void FallbackChoosesByVocabulary(string[] vocab, Enum expected) =>
        Assert.Equal((ChatTemplateFallback)expected, ChatTemplate.Fallback(vocab.Contains).FallbackKind);

    [Fact]
    public void ForModelPrefersTheModelsTemplate()
    {
        var own = ChatTemplate.ForModel("{{ messages|length }}", _ => true);
        Assert.Null(own.FallbackKind);
        Assert.Equal("0", own.Render(new ChatRenderRequest { Messages = [] }));
        // no template: ChatML whatever the vocabulary holds, as llama.cpp (common_chat_templates_init)
        Assert.Equal(ChatTemplateFallback.ChatMl, ChatTemplate.ForModel("  ", _ => false).FallbackKind);
        Assert.Equal(ChatTemplateFallback.ChatMl, ChatTemplate.ForModel(null, t => t == "<|start_header_id|>").FallbackKind);
    }

    [Fact]
    public void ChatMlFallbackRendersTurnsAndContentParts()
    {
        var t = ChatTemplate.Fallback(tok => tok == "<|im_start|>");
        var msgs = Messages("""[{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "there"}]}]""");
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
            t.Render(new ChatRenderRequest { Messages = msgs }));
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n",
            t.Render(new ChatRenderRequest { Messages = msgs, AddGenerationPrompt = false }));
    }

    [Fact]
    public void Llama3FallbackRendersHeadersAndBos()
    {
        var t = ChatTemplate.Fallback(tok => tok == "<|start_header_id|>");
        var msgs = Messages("""[{"role": "user", "content": "  Hello  "}]""");
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            t.Render(new ChatRenderRequest { Messages = msgs, BosToken = "<|begin_of_text|>" }));
        Assert.Equal("<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>",
            t.Render(new ChatRenderRequest { Messages = msgs, AddGenerationPrompt = false }));
    }

    [Fact]
    public void Llama2FallbackFoldsTheSystemPromptIntoTheFirstUserTurn()
    {
        var t = ChatTemplate.Fallback(_ => false);
        var msgs = Messages("""[{"role": "system", "content": "Sys"}, {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]""");
        Assert.Equal("<s>[INST] <<SYS>>\nSys\n<</SYS>>\n\nQ1 [/INST] A1 </s><s>[INST] Q2 [/INST]",
            t.Render(new ChatRenderRequest { Messages = msgs, BosToken = "<s>", EosToken = "</s>" }));
    }

    [Fact]
    public void OnlyGivenVariablesAreDefined()
    {
        var t = new ChatTemplate("{{ tools is defined }} {{ bos_token is defined }} {{ eos_token }} {{ add_generation_prompt }} {{ enable_thinking }} {{ messages[0].content }}");
        var request = new ChatRenderRequest
        {
            Messages = Messages("""[{"role": "user", "content": "x"}]"""),
            EosToken = "</s>",
            AddGenerationPrompt = false,
            Variables = new Dictionary<string, JsonNode?> { ["enable_thinking"] = false, ["messages"] = "ignored" },
        };
        Assert.Equal("False False </s> False False x", t.Render(request));
        Assert.Equal(["add_generation_prompt", "enable_thinking", "eos_token", "messages"],
            ChatTemplate.BuildVariables(request).Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void RaisedTemplateErrorsSurfaceAsTemplateException()
    {
        var t = new ChatTemplate("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}");
        var ex = Assert.Throws<TemplateException>(() => t.Render(new ChatRenderRequest { Messages = Messages("""[{"role": "system", "content": "s"}]""") }));
        Assert.Equal(TemplateErrorKind.Raised, ex.Kind);
        Assert.Equal("System role not supported", ex.Message);
    }

    [Fact]
    public void GetCachedReturnsTheSameParsedTemplate()
    {
        const string src = "{{ messages|length }} cached";
        Assert.Same(ChatTemplate.GetCached(src), ChatTemplate.GetCached(src));
    }

    [Fact]
    public void Qwen3TwentyMessageRenderIsRepeatable()
    {
        var template = ChatTemplate.GetCached(ChatTemplateGoldenTests.TemplateFor("qwen3.jsonl"));
        var msgs = new JsonArray { new JsonObject { ["role"] = "system", ["content"] = "You are a helpful assistant." } };
        for (int i = 0; i < 19; i++)
            msgs.Add(i % 2 == 0
                ? new JsonObject { ["role"] = "user", ["content"] = $"Question number {i}: what is {i} + {i}?" }
                : new JsonObject { ["role"] = "assistant", ["content"] = $"<think>\nadding\n</think>\n\nThe answer is {2 * i}." });
        var request = new ChatRenderRequest { Messages = msgs, EosToken = "<|im_end|>" };
        string first = template.Render(request);
        Assert.Equal(20, first.Split("<|im_start|>").Length - 2); // 20 turns + the generation prompt
        Assert.EndsWith("<|im_start|>assistant\n", first);

        var variables = ChatTemplate.BuildVariables(request);
        // a parsed template renders the same text every time (speed is measured in benchmarks, not tests)
        for (int i = 0; i < 20; i++) Assert.Equal(first, template.Template.Render(variables));
    }
}
