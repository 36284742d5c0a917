using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Gguf;
using SharpInfer.Tests.Tokenization;
using SharpInfer.Tokenization;
using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Engine;

public class ChatFormatterTests
{
    /// <summary>A formatter for a test model's vocabulary and its own template (or <paramref name="template"/>).</summary>
    internal static ChatFormatter For(string model, string? template = null) =>
        template is null ? OwnTemplate.GetOrAdd(model, m => new ChatFormatter(TokenizerModels.Get(m), ModelTemplate(m)))
                         : new ChatFormatter(TokenizerModels.Get(model), template);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, ChatFormatter> OwnTemplate = new();

    private static string? ModelTemplate(string model)
    {
        using var g = GgufFile.Open(TokenizerModels.PathOf(model));
        return g.GetString("tokenizer.chat_template");
    }

    private static JsonArray Msgs(string json) => JsonNode.Parse(json)!.AsArray();

    private static readonly JsonArray Conversation = Msgs("""
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a prime."}]
        """);

    [Fact]
    public void TemplateThatWritesBosGivesExactlyOneBos()
    {
        var f = For("llama3-tiny");   // Llama 3's template starts with {{ bos_token }}; the metadata adds BOS too
        var vocab = f.Tokenizer.Vocabulary;
        Assert.True(vocab.AddBos);
        Assert.Equal("<|begin_of_text|>", f.BosToken);
        var p = f.Format(new ChatFormatRequest { Messages = Conversation });
        Assert.StartsWith("<|begin_of_text|><|start_header_id|>system", p.Text);
        Assert.False(p.AddedBos);
        Assert.Equal(vocab.BosId, p.TokenIds[0]);
        Assert.Equal(1, p.TokenIds.Count(id => id == vocab.BosId));
        // run/tokenize keep llama.cpp's plain tokenization, which gives two here
        var plain = f.Tokenizer.Encode(p.Text, addSpecial: true, parseSpecial: true);
        Assert.Equal([vocab.BosId, vocab.BosId], plain[..2]);
        Assert.Equal(plain[1..], p.TokenIds);
    }

    [Fact]
    public void TemplateWithoutBosGetsBosWhenTheMetadataSaysSo()
    {
        const string noBos = "{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{% endfor %}";
        var f = For("llama3-tiny", noBos);
        var p = f.Format(new ChatFormatRequest { Messages = Conversation, AddGenerationPrompt = false });
        Assert.DoesNotContain("<|begin_of_text|>", p.Text);
        Assert.True(p.AddedBos);
        Assert.Equal(f.Tokenizer.Encode(p.Text, addSpecial: true, parseSpecial: true), p.TokenIds);
        Assert.Equal(f.Tokenizer.Vocabulary.BosId, p.TokenIds[0]);
        Assert.Equal(1, p.TokenIds.Count(id => id == f.Tokenizer.Vocabulary.BosId));
    }

    [Fact]
    public void NoBosWhenTheMetadataDoesNotAddIt()
    {
        var f = For("qwen3-tiny");
        Assert.False(f.Tokenizer.Vocabulary.AddBos);
        Assert.Equal("<|im_end|>", f.EosToken);
        var p = f.Format(new ChatFormatRequest { Messages = Conversation });
        Assert.False(p.AddedBos);
        Assert.Equal(f.Tokenizer.Encode(p.Text, addSpecial: false, parseSpecial: true), p.TokenIds);
        Assert.Equal(f.Tokenizer.Vocabulary.GetId("<|im_start|>"), p.TokenIds[0]);
    }

    [Fact]
    public void SentencePieceFallbackTemplateHasOneBosPerTurnAndNoDoubleBosAtTheStart()
    {
        // no template: ChatML, as llama.cpp; the Llama 2 built-in (ChatTemplate.Fallback's pick for this vocabulary)
        // writes bos_token before each [INST]
        Assert.Equal(ChatTemplateFallback.ChatMl, For("mistral-tiny").Template.FallbackKind);
        var f = For("mistral-tiny", ChatTemplate.FallbackSource(ChatTemplateFallback.Llama2));
        Assert.Equal("<s>", f.BosToken);
        var p = f.Format(new ChatFormatRequest { Messages = Conversation });
        Assert.StartsWith("<s>[INST] <<SYS>>", p.Text);
        Assert.False(p.AddedBos);
        int bos = f.Tokenizer.Vocabulary.BosId;
        Assert.Equal(bos, p.TokenIds[0]);
        Assert.NotEqual(bos, p.TokenIds[1]);
        Assert.Equal(2, p.TokenIds.Count(id => id == bos));   // two user turns
    }

    public static TheoryData<string, string> GoldenCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var model in new[] { "qwen3", "llama3" })
            foreach (var line in Golden.Lines($"chat/{model}.jsonl"))
                data.Add(model, line.GetProperty("case").GetString()!);
        return data;
    }

    /// <summary>The formatter, with bos/eos taken from the vocabulary, renders the synthetic models' own templates
    /// exactly like Jinja2 did with the tokens Hugging Face passes.</summary>
    [Theory]
    [MemberData(nameof(GoldenCases))]
    public void RendersGoldenConversationsWithTheVocabularysTokens(string model, string name)
    {
        var line = Golden.Lines($"chat/{model}.jsonl").Single(l => l.GetProperty("case").GetString() == name);
        var args = JsonNode.Parse(line.GetProperty("args").GetRawText())!.AsObject();
        var f = For(model + "-tiny");
        if (args["bos_token"] is { } bos) Assert.Equal(bos.GetValue<string>(), f.BosToken);
        Assert.Equal(args["eos_token"]!.GetValue<string>(), f.EosToken);
        var vars = args.Where(kv => kv.Key is not ("messages" or "tools" or "add_generation_prompt" or "bos_token" or "eos_token"))
            .ToDictionary(kv => kv.Key, kv => kv.Value?.DeepClone());
        var request = new ChatFormatRequest
        {
            Messages = args["messages"]!.AsArray(),
            Tools = args["tools"]?.AsArray(),
            AddGenerationPrompt = args["add_generation_prompt"]!.GetValue<bool>(),
            Variables = vars,
        };
        Assert.Equal(JsonValueKind.String, line.GetProperty("rendered").ValueKind);
        Assert.Equal(line.GetProperty("rendered").GetString(), f.Render(request));
    }

    [Fact]
    public void VariablesOverrideBosAndEosAndReachTheTemplate()
    {
        var f = For("llama3-tiny", "{{ bos_token }}|{{ eos_token }}|{{ enable_thinking }}|{{ n + 1 }}");
        var vars = new Dictionary<string, JsonNode?> { ["bos_token"] = "B", ["enable_thinking"] = false, ["n"] = 41 };
        Assert.Equal("B|<|end_of_text|>|False|42", f.Render(new ChatFormatRequest { Messages = Conversation, Variables = vars }));
        Assert.Equal("<|begin_of_text|>|<|end_of_text|>||0", f.Render(new ChatFormatRequest
        {
            Messages = Conversation,
            Variables = new Dictionary<string, JsonNode?> { ["n"] = -1 },
        }));
    }

    [Theory]
    [InlineData("messages")]
    [InlineData("tools")]
    [InlineData("add_generation_prompt")]
    public void ReservedNamesCannotBeVariables(string name)
    {
        var f = For("qwen3-tiny");
        var e = Assert.Throws<InvalidRequestException>(() => f.Render(new ChatFormatRequest
        {
            Messages = Conversation,
            Variables = new Dictionary<string, JsonNode?> { [name] = 1 },
        }));
        Assert.Equal(name, e.Field);
    }

    [Theory]
    [InlineData("""[]""", "messages", "at least one")]
    [InlineData("""["hi"]""", "messages[0]", "must be an object")]
    [InlineData("""[{"content": "hi"}]""", "messages[0].role", "is required")]
    [InlineData("""[{"role": null, "content": "hi"}]""", "messages[0].role", "is required")]
    [InlineData("""[{"role": 3, "content": "hi"}]""", "messages[0].role", "must be a string, got a number")]
    [InlineData("""[{"role": "", "content": "hi"}]""", "messages[0].role", "must not be empty")]
    [InlineData("""[{"role": "user"}]""", "messages[0].content", "is required for a 'user' message")]
    [InlineData("""[{"role": "user", "content": "a"}, {"role": "user", "content": 7}]""", "messages[1].content", "must be a string or an array of content parts, got a number")]
    [InlineData("""[{"role": "user", "content": {"text": "hi"}}]""", "messages[0].content", "got an object")]
    [InlineData("""[{"role": "user", "content": ["hi"]}]""", "messages[0].content[0]", "content part object")]
    [InlineData("""[{"role": "user", "content": [{"text": "hi"}]}]""", "messages[0].content[0].type", "must be a string")]
    [InlineData("""[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]""", "messages[0].content[0].type", "only text content parts")]
    [InlineData("""[{"role": "user", "content": [{"type": "text", "text": 5}]}]""", "messages[0].content[0].text", "must be a string")]
    [InlineData("""[{"role": "assistant", "content": null, "tool_calls": {"id": 1}}]""", "messages[0].tool_calls", "must be an array")]
    [InlineData("""[{"role": "assistant", "tool_calls": [{"id": "1"}]}]""", "messages[0].tool_calls[0].function", "must be an object")]
    [InlineData("""[{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]""", "messages[0].tool_calls[0].function.name", "must be a string")]
    public void MalformedMessagesAreInvalidRequests(string messages, string field, string message)
    {
        var f = For("qwen3-tiny");
        var e = Assert.Throws<InvalidRequestException>(() => f.Format(new ChatFormatRequest { Messages = Msgs(messages) }));
        Assert.Equal(field, e.Field);
        Assert.Contains(message, e.Message);
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void ToolsMustBeObjects()
    {
        var e = Assert.Throws<InvalidRequestException>(() =>
            For("qwen3-tiny").Render(new ChatFormatRequest { Messages = Conversation, Tools = Msgs("""[{"type": "function"}, 3]""") }));
        Assert.Equal("tools[1]", e.Field);
    }

    [Fact]
    public void AssistantMessagesMayOmitContentWhichReachesTheTemplateAsEmptyString()
    {
        // llama-server hands the template "" for null or missing content (templates test `'</think>' in content`)
        var f = For("qwen3-tiny", "{% for m in messages %}{{ m.role }}:{{ m.content is string }}:{{ m.content | length }};{% endfor %}");
        Assert.Equal("user:True:1;assistant:True:0;assistant:True:0;", f.Render(new ChatFormatRequest
        {
            Messages = Msgs("""[{"role": "user", "content": "x"}, {"role": "assistant", "content": null}, {"role": "assistant"}]"""),
        }));
    }

    [Fact]
    public void ToolCallArgumentsGivenAsJsonStringsAreParsedWithoutChangingTheCallersMessages()
    {
        var f = For("qwen3-tiny", "{% for c in messages[0].tool_calls %}{{ c.function.arguments is mapping }}:{{ c.function.arguments.city | default(c.function.arguments) }};{% endfor %}");
        var msgs = Msgs("""
            [{"role": "assistant", "content": null, "tool_calls": [
              {"type": "function", "function": {"name": "w", "arguments": "{\"city\": \"Paris\"}"}},
              {"type": "function", "function": {"name": "w", "arguments": "not json"}},
              {"type": "function", "function": {"name": "w", "arguments": {"city": "Rome"}}}]}]
            """);
        string before = msgs.ToJsonString();
        Assert.Equal("True:Paris;False:not json;True:Rome;", f.Render(new ChatFormatRequest { Messages = msgs }));
        Assert.Equal(before, msgs.ToJsonString());
    }

    [Fact]
    public void TextPartsAreJoinedForTemplatesThatOnlyRenderStrings()
    {
        // Qwen3's template renders list content as nothing; Llama 3's would print the list's repr
        var parts = Msgs("""[{"role": "user", "content": [{"type": "text", "text": "How"}, {"type": "text", "text": "are you?"}]}]""");
        var asString = Msgs("""[{"role": "user", "content": "How\nare you?"}]""");
        foreach (var model in new[] { "qwen3-tiny", "llama3-tiny" })
        {
            var f = For(model);
            Assert.Equal(ChatContentFormat.String, f.ContentFormat);
            Assert.Equal(f.Render(new ChatFormatRequest { Messages = asString }), f.Render(new ChatFormatRequest { Messages = parts }));
        }
        // no template: llama.cpp's ChatML source renders strings only, so the parts are joined with "\n" as llama.cpp does
        var chatMl = For("qwen3-tiny", "");
        Assert.Equal(ChatTemplateFallback.ChatMl, chatMl.Template.FallbackKind);
        Assert.Equal(ChatContentFormat.String, chatMl.ContentFormat);
        Assert.Equal("<|im_start|>user\nHow\nare you?<|im_end|>\n", chatMl.Render(new ChatFormatRequest { Messages = parts, AddGenerationPrompt = false }));
    }

    [Fact]
    public void StringContentBecomesATextPartForTemplatesThatOnlyRenderParts()
    {
        var f = For("qwen3-tiny", "{% for m in messages %}{% for p in m.content if p is mapping %}[{{ p.text }}]{% endfor %}{% endfor %}");
        Assert.Equal(ChatContentFormat.Parts, f.ContentFormat);
        Assert.Equal("[hello]", f.Render(new ChatFormatRequest { Messages = Msgs("""[{"role": "user", "content": "hello"}]""") }));
    }

    [Fact]
    public void TemplateRaisesComeThroughWithTheTemplatesMessage()
    {
        var f = For("qwen3-tiny", "{% if messages[0].role != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}ok");
        var e = Assert.Throws<TemplateException>(() => f.Format(new ChatFormatRequest { Messages = Conversation }));
        Assert.Equal(TemplateErrorKind.Raised, e.Kind);
        Assert.Equal("first message must be from the user", e.Message);
        Assert.Equal("ok", f.Render(new ChatFormatRequest { Messages = Msgs("""[{"role": "user", "content": "x"}]""") }));
    }

    [Fact]
    public void ForModelUsesTheModelsTemplateUnlessOverridden()
    {
        using var model = SharpInfer.Models.Model.Load(TestModels.Get("qwen3-tiny", "f32"));
        var own = ChatFormatter.ForModel(model);
        Assert.Null(own.Template.FallbackKind);
        Assert.Equal(model.ChatTemplate, own.Template.Source);
        Assert.Equal("x", ChatFormatter.ForModel(model, "x").Render(new ChatFormatRequest { Messages = Conversation }));
    }
}
