using System.Text.Json;
using SharpInfer.Gguf;
using SharpInfer.Tokenization;
using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Tokenization;

/// <summary>
/// gpt-oss's harmony chat template, as stored in the synthetic gpt-oss GGUF, renders exactly like Python's Jinja2 on
/// what the shared goldens leave out: its kwargs (reasoning_effort, model_identity, builtin_tools), the developer
/// role, thinking fields (kept only where harmony keeps them), the TypeScript rendering of tool schemas (recursive
/// macros, Jinja's loop scoping of <c>set</c>), string tool arguments, and its raise_exception paths. References in
/// Data/harmony-renders.json, made by Data/make_harmony_renders.py.
/// </summary>
public class HarmonyTemplateTests
{
    private static readonly JsonElement[] Reference = JsonDocument.Parse(File.ReadAllText(
        Path.Combine(TestPaths.RepoRoot, "tests", "SharpInfer.Tests", "Tokenization", "Data", "harmony-renders.json"))).RootElement
        .EnumerateArray().Select(e => e.Clone()).ToArray();

    private static readonly JinjaOptions Options = new()
    {
        Globals = new Dictionary<string, JinjaValue>
        {
            ["strftime_now"] = new JinjaFunction("strftime_now", _ => JinjaValue.From("22 Nov 2026")),
        },
    };

    private static readonly Lazy<string> TemplateText = new(() =>
    {
        using var g = GgufFile.Open(TokenizerModels.PathOf("gpt-oss-tiny"));
        return g.GetString("tokenizer.chat_template") ?? throw new InvalidOperationException("the gpt-oss file has no chat template");
    });

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in Reference) data.Add(c.GetProperty("case").GetString()!);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RendersLikeJinja2(string caseName)
    {
        var line = Reference.Single(c => c.GetProperty("case").GetString() == caseName);
        var request = ChatTemplateGoldenTests.RequestFromArgs(line.GetProperty("args"));
        var template = ChatTemplate.GetCached(TemplateText.Value, Options);
        if (line.TryGetProperty("rendered", out var rendered))
        {
            Assert.Equal(rendered.GetString(), template.Render(request));
        }
        else
        {
            var ex = Assert.Throws<TemplateException>(() => template.Render(request));
            Assert.Contains(line.GetProperty("error").GetString()!, ex.Message);
        }
    }

    [Fact]
    public void TheFileHoldsTheHarmonyTemplate()
    {
        // the renders above are of this text: the generator reads the shared copy, the test the GGUF's
        Assert.Equal(File.ReadAllText(Path.Combine(TestPaths.Shared, "templates", "openai-gpt-oss-120b.jinja")), TemplateText.Value);
    }
}
