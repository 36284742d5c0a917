using System.Text.Json.Nodes;
using SharpInfer.Tokenization;
using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Tokenization;

/// <summary>llama.cpp's built-in templates by name. Expected texts are llama.cpp's own (tests/test-chat-template.cpp,
/// the <c>expected_output</c> its C++ formatter must write for this conversation, with the generation prompt).</summary>
public class BuiltinChatTemplatesTests
{
    private static JsonArray Conversation() => JsonNode.Parse("""
        [{"role": "system", "content": "You are a helpful assistant"}, {"role": "user", "content": "Hello"},
         {"role": "assistant", "content": "Hi there"}, {"role": "user", "content": "Who are you"},
         {"role": "assistant", "content": "   I am an assistant   "}, {"role": "user", "content": "Another question"}]
        """)!.AsArray();

    [Theory]
    [InlineData("chatml", "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n")]
    [InlineData("llama2", "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]")]
    [InlineData("llama2-sys-bos", "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s><s>[INST] Who are you [/INST]   I am an assistant   </s><s>[INST] Another question [/INST]")]
    [InlineData("llama2-sys-strip", "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who are you [/INST]I am an assistant</s>[INST] Another question [/INST]")]
    [InlineData("monarch", "system\nYou are a helpful assistant</s>\n<s>user\nHello</s>\n<s>assistant\nHi there</s>\n<s>user\nWho are you</s>\n<s>assistant\n   I am an assistant   </s>\n<s>user\nAnother question</s>\n<s>assistant\n")]
    [InlineData("gemma", "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n")]
    [InlineData("openchat", "You are a helpful assistant<|end_of_turn|>GPT4 Correct User: Hello<|end_of_turn|>GPT4 Correct Assistant: Hi there<|end_of_turn|>GPT4 Correct User: Who are you<|end_of_turn|>GPT4 Correct Assistant:    I am an assistant   <|end_of_turn|>GPT4 Correct User: Another question<|end_of_turn|>GPT4 Correct Assistant:")]
    [InlineData("deepseek", "You are a helpful assistant### Instruction:\nHello\n### Response:\nHi there\n<|EOT|>\n### Instruction:\nWho are you\n### Response:\n   I am an assistant   \n<|EOT|>\n### Instruction:\nAnother question\n### Response:\n")]
    [InlineData("vicuna", "You are a helpful assistant\n\nUSER: Hello\nASSISTANT: Hi there</s>\nUSER: Who are you\nASSISTANT:    I am an assistant   </s>\nUSER: Another question\nASSISTANT:")]
    [InlineData("vicuna-orca", "SYSTEM: You are a helpful assistant\nUSER: Hello\nASSISTANT: Hi there</s>\nUSER: Who are you\nASSISTANT:    I am an assistant   </s>\nUSER: Another question\nASSISTANT:")]
    [InlineData("command-r", "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a helpful assistant<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Who are you<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>I am an assistant<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Another question<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>")]
    [InlineData("llama3", "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")]
    public void NamedTemplateWritesWhatLlamaCppWrites(string name, string expected)
    {
        var t = ChatTemplate.ForModel(name, _ => false);
        Assert.Equal(expected, t.Render(new ChatRenderRequest { Messages = Conversation(), BosToken = "<s>", EosToken = "</s>" }));
    }

    [Fact]
    public void EveryNameParsesAndRendersAUserTurn()
    {
        Assert.Contains("llama3", BuiltinChatTemplates.Names);
        foreach (var name in BuiltinChatTemplates.Names)
        {
            Assert.True(BuiltinChatTemplates.TryGetSource(name, out var source));
            string text = new ChatTemplate(source).Render(new ChatRenderRequest { Messages = JsonNode.Parse("""[{"role": "user", "content": "probe"}]""")!.AsArray() });
            Assert.Contains("probe", text);
        }
    }

    [Fact]
    public void OtherTextIsJinjaSourceAndNamesAreCaseSensitive()
    {
        // llama.cpp renders a --chat-template that is no template as its literal text (the server suite relies on it)
        var literal = ChatTemplate.ForModel("This is not a chat template, it is", _ => false);
        Assert.Equal("This is not a chat template, it is", literal.Render(new ChatRenderRequest { Messages = Conversation() }));
        Assert.Equal("LLAMA3", ChatTemplate.ForModel("LLAMA3", _ => false).Render(new ChatRenderRequest { Messages = Conversation() }));
        Assert.False(BuiltinChatTemplates.TryGetSource("LLAMA3", out _));
    }

    [Fact]
    public void NoTemplateMeansLlamaCppsChatMlSource()
    {
        var t = ChatTemplate.ForModel(null, _ => false);
        Assert.Equal(BuiltinChatTemplates.ChatMl, t.Source);
        Assert.Equal("<|im_start|>system\nBook<|im_end|>\n<|im_start|>user\nHey<|im_end|>\n<|im_start|>assistant\n",
            t.Render(new ChatRenderRequest { Messages = JsonNode.Parse("""[{"role": "system", "content": "Book"}, {"role": "user", "content": "Hey"}]""")!.AsArray() }));
    }

    [Theory]
    [InlineData("{{ 'a' + x + 'b' }}")]
    [InlineData("{{ none + 'ab' }}")]
    public void ConcatWithNoneOrUndefinedFollowsTheOption(string source)
    {
        Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(source).Render(new JsonObject { ["none"] = null }));
        var lenient = JinjaOptions.Default with { ConcatNoneAsEmpty = true };
        Assert.Equal("ab", JinjaTemplate.Parse(source, lenient).Render(new JsonObject { ["none"] = null }));
        // numbers still raise: the workaround is only string concatenation
        Assert.Throws<TemplateException>(() => JinjaTemplate.Parse("{{ x + 1 }}", lenient).Render(new JsonObject()));
    }
}
