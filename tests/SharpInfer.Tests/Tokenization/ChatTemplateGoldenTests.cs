using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Tokenization;
using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Tokenization;

/// <summary>Every case of ../shared/golden/chat/*.jsonl must render exactly like Python's Jinja2 (configured
/// like Hugging Face transformers), or raise where Jinja2 raised.</summary>
public class ChatTemplateGoldenTests
{
    /// <summary>The golden harness replaced strftime_now with a function returning this constant.</summary>
    private static readonly JinjaOptions GoldenOptions = new()
    {
        Globals = new Dictionary<string, JinjaValue>
        {
            ["strftime_now"] = new JinjaFunction("strftime_now", _ => JinjaValue.From("22 Nov 2026")),
        },
    };

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var file in Golden.Files("chat"))
            foreach (var line in Golden.Lines("chat/" + file))
                data.Add(file, line.GetProperty("case").GetString()!);
        return data;
    }

    internal static string TemplateFor(string file)
    {
        string name = Path.GetFileNameWithoutExtension(file);
        if (name is "qwen3" or "llama3")
        {
            var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Shared, "tokenizers", name, "tokenizer_config.json")));
            return cfg.RootElement.GetProperty("chat_template").GetString()!;
        }
        return File.ReadAllText(Path.Combine(TestPaths.Shared, "templates", name + ".jinja"));
    }

    internal static ChatRenderRequest RequestFromArgs(JsonElement args)
    {
        var obj = JsonNode.Parse(args.GetRawText())!.AsObject();
        var extra = new Dictionary<string, JsonNode?>();
        foreach (var (k, v) in obj)
            if (k is not ("messages" or "tools" or "add_generation_prompt" or "bos_token" or "eos_token"))
                extra[k] = v?.DeepClone();
        return new ChatRenderRequest
        {
            Messages = obj["messages"]!.AsArray().DeepClone().AsArray(),
            Tools = obj["tools"]?.DeepClone().AsArray(),
            AddGenerationPrompt = obj["add_generation_prompt"]?.GetValue<bool>() ?? true,
            BosToken = obj["bos_token"]?.GetValue<string>(),
            EosToken = obj["eos_token"]?.GetValue<string>(),
            Variables = extra,
        };
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RendersLikeJinja2(string file, string caseName)
    {
        var line = Golden.Lines("chat/" + file).Single(l => l.GetProperty("case").GetString() == caseName);
        var args = line.GetProperty("args");
        var request = RequestFromArgs(args);

        // exactly the golden's variables are passed, no more, no fewer
        var expectedNames = args.EnumerateObject().Select(p => p.Name).OrderBy(n => n, StringComparer.Ordinal);
        Assert.Equal(expectedNames, ChatTemplate.BuildVariables(request).Keys.OrderBy(n => n, StringComparer.Ordinal));

        var template = ChatTemplate.GetCached(TemplateFor(file), GoldenOptions);
        var rendered = line.GetProperty("rendered");
        if (rendered.ValueKind == JsonValueKind.String)
        {
            Assert.Equal(rendered.GetString(), template.Render(request));
        }
        else
        {
            var ex = Assert.Throws<TemplateException>(() => template.Render(request));
            var error = line.GetProperty("error");
            if (error.ValueKind == JsonValueKind.String) Assert.Contains(error.GetString()!, ex.Message);
        }
    }
}
