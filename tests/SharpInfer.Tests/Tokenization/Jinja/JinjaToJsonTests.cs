namespace SharpInfer.Tests.Tokenization.Jinja;

/// <summary>tojson must equal Python's json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...).</summary>
public class JinjaToJsonTests
{
    [Fact]
    public void DefaultSeparatorsAndEscapes() =>
        Assert.Equal("{\"a\": [1, 2.5, null, true, \"é\\n\\\"q\\\"\\u0001\"], \"b\": {}, \"c\": []}",
            J.R("{{ x|tojson }}", """{"x": {"a": [1, 2.5, null, true, "é\n\"q\"\u0001"], "b": {}, "c": []}}"""));

    [Fact]
    public void IndentUsesCommaWithoutSpaceAndNewlines() =>
        Assert.Equal("{\n  \"a\": [\n    1,\n    \"é\"\n  ],\n  \"b\": {},\n  \"d\": {\n    \"e\": 1\n  }\n}",
            J.R("{{ x|tojson(indent=2) }}", """{"x": {"a": [1, "é"], "b": {}, "d": {"e": 1}}}"""));

    [Theory]
    [InlineData("{{ x|tojson(ensure_ascii=true) }}", "[\"\\u00e9\", \"\\ud83d\\udc4b\", \"\\u007f\"]")]
    [InlineData("{{ x|tojson }}", "[\"é\", \"👋\", \"\u007f\"]")]
    public void EnsureAscii(string template, string expected) =>
        Assert.Equal(expected, J.R(template, """{"x": ["é", "👋", "\u007f"]}"""));

    [Theory]
    [InlineData("{{ x|tojson(separators=(',', ':')) }}", "{\"b\":1,\"a\":[1.0,1e-05,1e+16,100.0,12345678901234567890]}")]
    [InlineData("{{ x|tojson(sort_keys=true) }}", "{\"a\": [1.0, 1e-05, 1e+16, 100.0, 12345678901234567890], \"b\": 1}")]
    [InlineData("{{ x|tojson(indent='\\t', sort_keys=true) }}", "{\n\t\"a\": [\n\t\t1.0,\n\t\t1e-05,\n\t\t1e+16,\n\t\t100.0,\n\t\t12345678901234567890\n\t],\n\t\"b\": 1\n}")]
    [InlineData("{{ [1, 2]|tojson(indent=0) }}", "[\n1,\n2\n]")]
    [InlineData("{{ {'a': 1}|tojson(indent=1, separators=(', ', ': ')) }}", "{\n \"a\": 1\n}")]
    public void SeparatorsSortKeysAndFloats(string template, string expected) =>
        Assert.Equal(expected, J.R(template, """{"x": {"b": 1, "a": [1.0, 1e-05, 1e16, 1e2, 12345678901234567890]}}"""));

    [Theory]
    [InlineData("{{ 1.0|tojson }} {{ 'x'|tojson }} {{ none|tojson }} {{ [1, (2, 3)]|tojson }} {{ {1: 'a', true: 'b', none: 'c'}|tojson }}", "1.0 \"x\" null [1, [2, 3]] {\"1\": \"b\", \"null\": \"c\"}")]
    [InlineData("{{ 1e22|tojson }} {{ 1.0e-7|tojson }} {{ 5e-324|tojson }} {{ -0.0|tojson }}", "1e+22 1e-07 5e-324 -0.0")]
    [InlineData("{{ '\\u2028</script>\\''|tojson }}", "\"\u2028</script>'\"")]
    public void ScalarsAndKeys(string template, string expected) => Assert.Equal(expected, J.R(template));
}
