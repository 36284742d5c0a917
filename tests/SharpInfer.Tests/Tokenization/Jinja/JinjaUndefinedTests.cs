using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Tokenization.Jinja;

/// <summary>Jinja2's default Undefined: harmless when printed, iterated, tested or defaulted; an error when
/// its attributes, items, calls or arithmetic are used.</summary>
public class JinjaUndefinedTests
{
    [Theory]
    [InlineData("[{{ x }}]", "[]")]
    [InlineData("{% for i in x %}i{% endfor %}done", "done")]
    [InlineData("{{ x is defined }} {{ x is undefined }} {{ x is none }} {{ not x }}", "False True False True")]
    [InlineData("{{ x|default('d') }} {{ x|length }} {{ x|list }} [{{ x|join }}] [{{ x|string }}] [{{ x|upper }}] [{{ x|trim }}]", "d 0 [] [] [] [] []")]
    [InlineData("{{ x == x }} {{ x != none }} {{ x in [1] }} {{ 'a' in x }} [{{ 'a' ~ x ~ 'b' }}]", "True True False False [ab]")]
    [InlineData("[{{ x|first }}] [{{ x|last }}] {{ x|items|list }}", "[] [] []")]
    [InlineData("{% if x %}t{% else %}f{% endif %}{{ x or 'alt' }}", "falt")]
    public void HarmlessUses(string template, string expected) => Assert.Equal(expected, J.R(template));

    [Fact]
    public void MissingKeysAndAttributesAreUndefined()
    {
        const string vars = """{"d": {"a": 1}, "l": []}""";
        Assert.Equal("||False|False|d", J.R("{{ d.missing }}|{{ d['missing'] }}|{{ d.missing is defined }}|{{ l[0] is defined }}|{{ d.missing|default('d') }}", vars));
        Assert.Equal("||", J.R("{{ none.x }}|{{ 5.x }}|", vars));
    }

    [Theory]
    [InlineData("{{ x.attr }}", "'x' is undefined")]
    [InlineData("{{ x['k'] }}", "'x' is undefined")]
    [InlineData("{{ x + 1 }}", "'x' is undefined")]
    [InlineData("{{ 1 - x }}", "'x' is undefined")]
    [InlineData("{{ x < 1 }}", "'x' is undefined")]
    [InlineData("{{ -x }}", "'x' is undefined")]
    [InlineData("{{ x() }}", "'x' is undefined")]
    [InlineData("{{ x.upper() }}", "'x' is undefined")]
    [InlineData("{{ x|int }}", "'x' is undefined")]
    [InlineData("{{ x|tojson }}", "not JSON serializable")]
    [InlineData("{{ d.missing.deeper }}", "'dict object' has no attribute 'missing'")]
    [InlineData("{{ d.content.strip() }}", "'dict object' has no attribute 'content'")]
    [InlineData("{{ l[0]['role'] }}", "list object has no element 0")]
    public void FailingUses(string template, string message)
    {
        var ex = J.Fails(template, """{"d": {"a": 1}, "l": []}""");
        Assert.Equal(TemplateErrorKind.Runtime, ex.Kind);
        Assert.Contains(message, ex.Message);
    }
}
