using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Server;

/// <summary>Template variables and templates as llama-server gives them: enable_thinking/date_string/datetime by
/// default, --chat-template-kwargs and --reasoning, the request's chat_template_kwargs and reasoning_effort, built-in
/// template names, ChatML for a model without a template, and the __verbose debug object.</summary>
public class ChatTemplateCompatTests
{
    private const string Probe = "{{ enable_thinking }}|{{ date_string }}|{{ datetime }}|{{ extra | default('-') }}";

    private static JsonObject Apply(JsonObject? extra = null)
    {
        var body = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" }) };
        if (extra != null) foreach (var (k, v) in extra) body[k] = v?.DeepClone();
        return body;
    }

    private static async Task<string> PromptAsync(ServerHarness s, JsonObject? extra = null) =>
        (await s.PostOkAsync("apply-template", Apply(extra)))["prompt"]!.GetValue<string>();

    [Fact]
    public async Task DefaultsAreThinkingOnAndTodaysDateAndRequestsOverrideThem()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { ChatTemplate = Probe });
        var before = DateTimeOffset.Now;
        string prompt = await PromptAsync(s);
        var after = DateTimeOffset.Now;
        string Expected(DateTimeOffset d) => $"True|{d.ToString("dd MMM yyyy", CultureInfo.InvariantCulture)}|{d.ToString("MMM dd yyyy", CultureInfo.InvariantCulture)}|-";
        Assert.True(prompt == Expected(before) || prompt == Expected(after), prompt);

        Assert.StartsWith("False|", await PromptAsync(s, new JsonObject { ["chat_template_kwargs"] = new JsonObject { ["enable_thinking"] = false } }));
        Assert.StartsWith("False|", await PromptAsync(s, new JsonObject { ["reasoning_effort"] = "none" }));
        Assert.StartsWith("True|", await PromptAsync(s, new JsonObject { ["reasoning_effort"] = "high" }));
        var parts = (await PromptAsync(s, new JsonObject { ["chat_template_kwargs"] = new JsonObject { ["date_string"] = "x", ["extra"] = 2 } })).Split('|');
        Assert.Equal(["True", "x", "2"], new[] { parts[0], parts[1], parts[3] });

        // llama-server: an enable_thinking that is not a boolean is refused
        var (status, json, _) = await s.PostAsync("apply-template", Apply(new JsonObject { ["chat_template_kwargs"] = new JsonObject { ["enable_thinking"] = "no" } }));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("enable_thinking", json["error"]!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task ServerKwargsSitBetweenTheDefaultsAndTheRequest()
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with
        {
            ChatTemplate = Probe,
            ChatTemplateKwargs = new Dictionary<string, JsonNode?> { ["enable_thinking"] = false, ["extra"] = "server" },
        });
        string prompt = await PromptAsync(s);
        Assert.StartsWith("False|", prompt);
        Assert.EndsWith("|server", prompt);
        prompt = await PromptAsync(s, new JsonObject { ["chat_template_kwargs"] = new JsonObject { ["enable_thinking"] = true, ["extra"] = "request" } });
        Assert.StartsWith("True|", prompt);
        Assert.EndsWith("|request", prompt);
    }

    [Fact]
    public async Task BuiltInNameAndNoTemplateRenderLikeLlamaCpp()
    {
        var messages = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = " You are a test. " },
                                     new JsonObject { ["role"] = "user", ["content"] = "Hi there" });
        await using (var named = await ServerHarness.StartAsync(configure: o => o with { ChatTemplate = "command-r" }))
        {
            var r = await named.PostOkAsync("apply-template", new JsonObject { ["messages"] = messages.DeepClone() });
            Assert.Equal("<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a test.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
                r["prompt"]!.GetValue<string>());
        }
        // stories260K has no template: llama-server uses ChatML, and the prompt's tokens are that text's (BOS added)
        await using var s = await ServerHarness.StartAsync();
        Assert.Null(ServerModels.Stories.ChatTemplate);
        string chatMl = "<|im_start|>system\n You are a test. <|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n";
        Assert.Equal(chatMl, (await s.PostOkAsync("apply-template", new JsonObject { ["messages"] = messages.DeepClone() }))["prompt"]!.GetValue<string>());
        var chat = await s.PostOkAsync("v1/chat/completions", new JsonObject { ["messages"] = messages.DeepClone(), ["max_tokens"] = 1 });
        Assert.Equal(ServerModels.Stories.Tokenizer.Encode(chatMl, addSpecial: true, parseSpecial: true).Length, chat["usage"]!["prompt_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task VerboseAddsThePromptAsTheModelSawIt()
    {
        var body = new JsonObject
        {
            ["max_tokens"] = 2,
            ["temperature"] = 0,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" }),
        };
        var tok = ServerModels.Stories.Tokenizer;
        var ids = tok.Encode("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", addSpecial: true, parseSpecial: true);
        await using (var s = await ServerHarness.StartAsync())
        {
            Assert.Null((await s.PostOkAsync("v1/chat/completions", body.DeepClone()))["__verbose"]);
            var verbose = (JsonObject)body.DeepClone();
            verbose["verbose"] = true;
            var r = await s.PostOkAsync("chat/completions", verbose);
            var v = r["__verbose"]!.AsObject();
            Assert.Equal(tok.Decode(ids, renderSpecial: true), v["prompt"]!.GetValue<string>());
            Assert.StartsWith("<s>", v["prompt"]!.GetValue<string>());
            Assert.Equal(ids.Length, v["tokens_evaluated"]!.GetValue<int>());
            Assert.Equal(r["usage"]!["completion_tokens"]!.GetValue<int>(), v["tokens_predicted"]!.GetValue<int>());
            Assert.Equal(r["choices"]![0]!["message"]!["content"]!.GetValue<string>(), v["content"]!.GetValue<string>());
        }
        await using var all = await ServerHarness.StartAsync(configure: o => o with { Verbose = true });
        Assert.NotNull((await all.PostOkAsync("v1/chat/completions", body.DeepClone()))["__verbose"]);
        var off = (JsonObject)body.DeepClone();
        off["verbose"] = false;
        Assert.Null((await all.PostOkAsync("v1/chat/completions", off))["__verbose"]);
    }

    [Fact]
    public async Task AFinalAssistantMessageIsContinuedAsLlamaServerDoes()
    {
        await using var s = await ServerHarness.StartAsync();
        JsonArray Conversation(JsonNode prefill) => new(new JsonObject { ["role"] = "user", ["content"] = "Q" },
                                                        new JsonObject { ["role"] = "assistant", ["content"] = prefill });
        const string head = "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n";
        async Task<string> Prompt(JsonObject body) => (await s.PostOkAsync("apply-template", body))["prompt"]!.GetValue<string>();

        Assert.Equal(head + "Whill", await Prompt(new JsonObject { ["messages"] = Conversation("Whill") }));
        // text parts are joined with a blank line (llama.cpp's render_content)
        Assert.Equal(head + "Wh\n\nill", await Prompt(new JsonObject
        {
            ["messages"] = Conversation(new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "Wh" }, new JsonObject { ["type"] = "text", ["text"] = "ill" })),
        }));
        // vLLM's explicit form gives the same prompt; continue_final_message: false renders the message as a closed turn
        Assert.Equal(head + "Whill", await Prompt(new JsonObject { ["messages"] = Conversation("Whill"), ["add_generation_prompt"] = false, ["continue_final_message"] = true }));
        Assert.Equal(head + "Whill<|im_end|>\n<|im_start|>assistant\n", await Prompt(new JsonObject { ["messages"] = Conversation("Whill"), ["continue_final_message"] = false }));

        var chat = await s.PostOkAsync("v1/chat/completions", new JsonObject { ["messages"] = Conversation("Whill"), ["max_tokens"] = 1 });
        Assert.Equal(ServerModels.Stories.Tokenizer.Encode(head + "Whill", addSpecial: true, parseSpecial: true).Length, chat["usage"]!["prompt_tokens"]!.GetValue<int>());

        var two = Conversation("A");
        two.Add(new JsonObject { ["role"] = "assistant", ["content"] = "B" });
        var (status, json, _) = await s.PostAsync("v1/chat/completions", new JsonObject { ["messages"] = two, ["max_tokens"] = 1 });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("2 or more assistant messages", json["error"]!["message"]!.GetValue<string>());
    }
}
