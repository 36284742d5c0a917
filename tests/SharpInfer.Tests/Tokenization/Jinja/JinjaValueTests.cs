using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Tokenization.Jinja;

/// <summary>Conversion of JSON inputs, custom globals, strftime_now with a fixed clock, thread safety.</summary>
public class JinjaValueTests
{
    [Fact]
    public void JsonElementAndJsonNodeConvertTheSameWay()
    {
        const string json = """{"b": [1, 2.0, "x", null, true, {"z": 1, "a": 2}], "a": 12345678901234567890}""";
        var fromNode = JinjaValue.FromJson(JsonNode.Parse(json));
        var fromElement = JinjaValue.FromJson(JsonDocument.Parse(json).RootElement);
        const string expected = "{'b': [1, 2.0, 'x', None, True, {'z': 1, 'a': 2}], 'a': 12345678901234567890}";
        Assert.Equal(expected, fromNode.ToString());
        Assert.Equal(expected, fromElement.ToString());
    }

    [Fact]
    public void PrimitiveJsonValuesKeepTheirKind()
    {
        var obj = new JsonObject { ["i"] = 3, ["d"] = 1.0, ["s"] = "t", ["b"] = false, ["n"] = null };
        Assert.Equal("3|1.0|t|False|None", JinjaTemplate.Parse("{{ i }}|{{ d }}|{{ s }}|{{ b }}|{{ n }}").Render(obj));
    }

    [Fact]
    public void CustomGlobalsAndVariablesShadowBuiltins()
    {
        var options = new JinjaOptions
        {
            Globals = new Dictionary<string, JinjaValue>
            {
                ["shout"] = new JinjaFunction("shout", a => JinjaValue.From(a.Positional[0].ToString().ToUpperInvariant() + "!")),
            },
        };
        var t = JinjaTemplate.Parse("{{ shout('hi') }} {{ range(2)|list }}", options);
        Assert.Equal("HI! [0, 1]", t.Render());
        var shadow = new Dictionary<string, JinjaValue> { ["range"] = new JinjaFunction("range", _ => JinjaValue.From("x")) };
        Assert.Equal("HI! ['x']", t.Render(shadow));
    }

    [Theory]
    [InlineData("%d %b %Y", "22 Nov 2026")]
    [InlineData("%Y-%m-%d", "2026-11-22")]
    [InlineData("%B %d, %Y", "November 22, 2026")]
    [InlineData("%A %a %H:%M:%S %I%p %j %y %-d %e", "Sunday Sun 09:05:07 09AM 326 26 22 22")]
    [InlineData("%% %Q", "% %Q")]
    public void StrftimeNowUsesTheInjectedClock(string format, string expected)
    {
        var options = new JinjaOptions { Clock = () => new DateTimeOffset(2026, 11, 22, 9, 5, 7, TimeSpan.Zero) };
        Assert.Equal(expected, JinjaTemplate.Parse("{{ strftime_now('" + format + "') }}", options).Render());
    }

    [Fact]
    public void StrftimeNowDefaultsToTheRealClock()
    {
        string year = JinjaTemplate.Parse("{{ strftime_now('%Y') }}").Render();
        Assert.Equal(DateTimeOffset.Now.Year.ToString(), year);
    }

    [Fact]
    public void ParsedTemplateRendersConcurrently()
    {
        var t = JinjaTemplate.Parse("{% set ns = namespace(s=0) %}{% for i in range(n) %}{% set ns.s = ns.s + i %}{% endfor %}{{ ns.s }}");
        var results = Enumerable.Range(0, 64).AsParallel().Select(n =>
            t.Render(new Dictionary<string, JinjaValue> { ["n"] = JinjaValue.From((long)n) })).ToArray();
        for (int n = 0; n < 64; n++) Assert.Equal((n * (n - 1) / 2).ToString(), results[n]);
    }
}
