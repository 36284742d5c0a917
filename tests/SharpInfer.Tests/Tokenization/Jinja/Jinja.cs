using System.Text.Json.Nodes;
using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Tokenization.Jinja;

/// <summary>Test helpers: render a template with variables given as a JSON object text.</summary>
internal static class J
{
    public static string R(string template, string? json = null, JinjaOptions? options = null)
    {
        var t = JinjaTemplate.Parse(template, options);
        return json is null ? t.Render() : t.Render(JsonNode.Parse(json)!.AsObject());
    }

    public static TemplateException Fails(string template, string? json = null, JinjaOptions? options = null) =>
        Assert.Throws<TemplateException>(() => R(template, json, options));
}
