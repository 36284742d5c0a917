using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Cli;
using SharpInfer.Gguf;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Cli;

public class TemplateCommandTests
{
    private static string Qwen3 => TestModels.Get("qwen3-tiny", "f32");
    private static string Llama3 => TestModels.Get("llama3-tiny", "f32");

    private static JsonElement GoldenCase(string file, string name) =>
        Golden.Lines($"chat/{file}.jsonl").Single(l => l.GetProperty("case").GetString() == name);

    private static CliHarness.Result Template(string model, string messagesJson, params string[] more) =>
        CliHarness.Run(["template", "-m", model, "--messages", CliHarness.TempFile(messagesJson), .. more]);

    [Theory]
    [InlineData("qwen3", "multi_turn")]
    [InlineData("llama3", "multi_turn")]
    [InlineData("qwen3", "tool_call_round_trip")]
    public void PrintsExactlyWhatChatTemplateRenders(string family, string name)
    {
        var golden = GoldenCase(family, name);
        var args = JsonNode.Parse(golden.GetProperty("args").GetRawText())!.AsObject();
        string path = TestModels.Get(family + "-tiny", "f32");
        string? source;
        Tokenizer tok;
        using (var g = GgufFile.Open(path))
        {
            source = g.GetString("tokenizer.chat_template");
            tok = Tokenizer.FromGguf(g);
        }
        string conversation = new JsonObject { ["messages"] = args["messages"]!.DeepClone(), ["tools"] = args["tools"]?.DeepClone() }.ToJsonString();

        var r = Template(path, conversation);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.Stderr);
        var expected = ChatTemplate.ForModel(source, t => tok.Vocabulary.GetId(t) >= 0).Render(new ChatRenderRequest
        {
            Messages = args["messages"]!.AsArray(),
            Tools = args["tools"]?.AsArray(),
            AddGenerationPrompt = true,
            BosToken = tok.Vocabulary.BosId >= 0 ? tok.Vocabulary.GetText(tok.Vocabulary.BosId) : null,
            EosToken = tok.Vocabulary.GetText(tok.Vocabulary.EosId),
        });
        Assert.Equal(expected, r.Stdout);                                   // byte for byte: no newline added
        Assert.Equal(golden.GetProperty("rendered").GetString(), r.Stdout); // and what Jinja2 rendered
    }

    [Fact]
    public void NoGenerationPromptMatchesTheGolden()
    {
        var golden = GoldenCase("qwen3", "no_gen_prompt");
        var messages = golden.GetProperty("args").GetProperty("messages").GetRawText();
        var r = Template(Qwen3, messages, "--no-generation-prompt");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(golden.GetProperty("rendered").GetString(), r.Stdout);
        Assert.EndsWith("<|im_start|>assistant\n", Template(Qwen3, messages).Stdout);
    }

    [Fact]
    public void VarsAreJsonWhenValidJsonElseStrings()
    {
        var tmpl = CliHarness.TempFile("{{ b is boolean }} {{ b }}|{{ n + 1 }}|{{ o.a }}|{{ s }}|{{ q }}|{{ e | length }}|{{ z is none }}", ".jinja");
        var r = Template(Qwen3, """[{"role": "user", "content": "x"}]""", "--chat-template-file", tmpl,
            "--var", "b=true", "--var", "n=3", "--var", """o={"a":1}""", "--var", "s=hello world", "--var", "q=\"7\"", "--var", "e=", "--var", "z=null");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("True True|4|1|hello world|7|0|True", r.Stdout);

        Assert.True(ChatTemplateOptions.ParseValue("true")!.GetValue<bool>());
        Assert.Equal(JsonValueKind.String, ChatTemplateOptions.ParseValue("{a:1}")!.GetValueKind());
        Assert.Equal("a=b", ChatTemplateOptions.ParseVariables(["x=a=b"])["x"]!.GetValue<string>());
    }

    [Fact]
    public void VarsReachTheModelsTemplateAndOverrideBosAndEos()
    {
        const string user = """[{"role": "user", "content": "Hi"}]""";
        Assert.EndsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n", Template(Qwen3, user, "--var", "enable_thinking=false").Stdout);
        Assert.EndsWith("<|im_start|>assistant\n", Template(Qwen3, user, "--var", "enable_thinking=true").Stdout);

        Assert.StartsWith("<|begin_of_text|><|start_header_id|>user", Template(Llama3, user).Stdout);
        Assert.StartsWith("[BOS]<|start_header_id|>user", Template(Llama3, user, "--var", "bos_token=[BOS]").Stdout);
        var eos = CliHarness.TempFile("{{ bos_token }}{{ eos_token }}", ".jinja");
        Assert.Equal("<|begin_of_text|>END", Template(Llama3, user, "--chat-template-file", eos, "--var", "eos_token=END").Stdout);
    }

    [Fact]
    public void ChatTemplateFileReplacesTheModelsTemplate()
    {
        var tmpl = CliHarness.TempFile("{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}{% if add_generation_prompt %}>{% endif %}{% if tools %}{{ tools | length }} tools{% endif %}", ".jinja");
        const string msgs = """[{"role": "system", "content": "S"}, {"role": "user", "content": "ünï"}]""";
        Assert.Equal("[system:S][user:ünï]>", Template(Qwen3, msgs, "--chat-template-file", tmpl).Stdout);
        Assert.Equal("[system:S][user:ünï]", Template(Qwen3, msgs, "--chat-template-file", tmpl, "--no-generation-prompt").Stdout);
        var tools = CliHarness.TempFile("""[{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "g"}}]""");
        Assert.Equal("[system:S][user:ünï]>2 tools", Template(Qwen3, msgs, "--chat-template-file", tmpl, "--tools", tools).Stdout);
        // a request body with "messages" and "tools" works too
        Assert.Equal("[user:x]>1 tools", Template(Qwen3, """{"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}""",
            "--chat-template-file", tmpl).Stdout);
    }

    [Fact]
    public void IdsFollowTheChatBosRule()
    {
        var r = Template(Llama3, """[{"role": "user", "content": "Hi"}]""", "--ids");
        Assert.Equal(0, r.ExitCode);
        var ids = JsonSerializer.Deserialize<int[]>(r.Stdout)!;
        Assert.Equal(128000, ids[0]);
        Assert.Equal(1, ids.Count(id => id == 128000));
    }

    [Fact]
    public void MessagesCanComeFromStdin()
    {
        var tmpl = CliHarness.TempFile("{{ messages[0].content }}", ".jinja");
        var r = CliHarness.Run(["template", "-m", Qwen3, "--messages", "-", "--chat-template-file", tmpl], stdin: """[{"role": "user", "content": "from stdin"}]""");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("from stdin", r.Stdout);
    }

    [Theory]
    [InlineData("""[{"role": "user", "content": "x"}""", null, "is not valid JSON")]
    [InlineData("""{"role": "user"}""", null, "must hold an array of messages")]
    [InlineData("""[{"content": "x"}]""", null, "'messages[0].role' is required")]
    [InlineData("""[{"role": "user", "content": 1}]""", null, "'messages[0].content' must be a string")]
    [InlineData("""[{"role": "system", "content": "x"}]""", "{{ raise_exception('System messages are not supported') }}", "error: System messages are not supported")]
    [InlineData("""[{"role": "user", "content": "x"}]""", "{% for %}", "template syntax error")]
    [InlineData("""[{"role": "user", "content": "x"}]""", "{{ messages[0].nope.deeper }}", "template error")]
    public void ErrorsGoToStderrWithExitCodeOne(string messages, string? template, string expected)
    {
        string[] more = template is null ? [] : ["--chat-template-file", CliHarness.TempFile(template, ".jinja")];
        var r = Template(Qwen3, messages, more);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.Stdout);
        Assert.StartsWith("error: ", r.Stderr);
        Assert.Contains(expected, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);   // no stack trace
    }

    [Fact]
    public void BadArgumentsAreErrors()
    {
        const string ok = """[{"role": "user", "content": "x"}]""";
        var missing = Path.Combine(TestPaths.Cache, "tmp", "does-not-exist.json");
        var cases = new[]
        {
            (Template(Qwen3, ok, "--var", "novalue"), "--var expects name=value"),
            (Template(Qwen3, ok, "--var", "=3"), "--var expects name=value"),
            (Template(Qwen3, ok, "--var", "messages=[]"), "'messages' cannot be set"),
            (CliHarness.Run(["template", "-m", Qwen3, "--messages", missing]), "cannot read messages file"),
            (Template(Qwen3, ok, "--tools", missing), "cannot read tools file"),
            (Template(Qwen3, ok, "--chat-template-file", missing), "cannot read chat template file"),
            (Template(Qwen3, ok, "--tools", CliHarness.TempFile("""{"a": 1}""")), "must hold an array of tool definitions"),
            (Template(missing, ok), missing),
        };
        foreach (var (r, expected) in cases)
        {
            Assert.Equal(1, r.ExitCode);
            Assert.Equal("", r.Stdout);
            Assert.Contains(expected, r.Stderr);
        }
        var noMessages = CliHarness.Run(["template", "-m", Qwen3]);
        Assert.NotEqual(0, noMessages.ExitCode);
        Assert.Contains("--messages", noMessages.Stderr);
    }
}
