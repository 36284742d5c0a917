using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Tokenization.Jinja;

/// <summary>Errors: one exception type; syntax errors carry line and column; raise_exception carries the
/// template's message; runtime errors carry the position of the failing statement or call.</summary>
public class JinjaErrorTests
{
    [Theory]
    [InlineData("{% for %}", 1, 8, "Expected an expression")]
    [InlineData("{{ 1 +* 2 }}", 1, 7, "unexpected '*'")]
    [InlineData("line1\n{% if x %}\n{{ y }\n{% endif %}", 3, 6, "unexpected '}'")]
    [InlineData("ab\n{% if x %}unclosed", 2, 19, "Jinja was looking for the following tags: 'elif' or 'else' or 'endif'")]
    [InlineData("{% endfor %}", 1, 4, "Encountered unknown tag 'endfor'")]
    [InlineData("x\n  {% foo %}", 2, 6, "Encountered unknown tag 'foo'")]
    [InlineData("{% include 'x.html' %}", 1, 4, "not supported")]
    [InlineData("\n\n{{ x|nosuchfilter }}", 3, 6, "No filter named 'nosuchfilter'")]
    [InlineData("{{ x is nosuchtest }}", 1, 9, "No test named 'nosuchtest'")]
    [InlineData("{{ 'unterminated }}", 1, 4, "unterminated string")]
    [InlineData("{# never closed", 1, 1, "Missing end of comment tag")]
    [InlineData("{% raw %}never closed", 1, 1, "Missing end of raw directive")]
    [InlineData("{% break %}", 1, 4, "outside of a loop")]
    [InlineData("{% set 1 = 2 %}", 1, 8, "can't assign")]
    [InlineData("{% macro m(caller) %}{% endmacro %}", 1, 12, "caller")]
    [InlineData("{{ a b }}", 1, 6, "expected end of print statement")]
    public void SyntaxErrorsHaveLineAndColumn(string template, int line, int column, string message)
    {
        var ex = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(template));
        Assert.Equal(TemplateErrorKind.Syntax, ex.Kind);
        Assert.Equal(line, ex.Line);
        Assert.Equal(column, ex.Column);
        Assert.Contains(message, ex.Message);
        Assert.Contains($"line {line}, column {column}", ex.Message);
        Assert.IsAssignableFrom<SharpInferException>(ex);
    }

    [Fact]
    public void RaiseExceptionCarriesTheTemplateMessage()
    {
        var ex = J.Fails("ok\n{% if true %}{{ raise_exception('Conversation roles must alternate!') }}{% endif %}");
        Assert.Equal(TemplateErrorKind.Raised, ex.Kind);
        Assert.Equal("Conversation roles must alternate!", ex.Message);
        Assert.Equal(2, ex.Line);
    }

    [Theory]
    [InlineData("a\n  {{ 'x' + 1 }}", 2, "can only concatenate str (not \"int\") to str")]
    [InlineData("{{ 1 + 'x' }}", 1, "unsupported operand type(s) for +: 'int' and 'str'")]
    [InlineData("{{ 1 ~ 2 + 3 }}", 1, "can only concatenate str")]
    [InlineData("{{ 1 / 0 }}", 1, "division by zero")]
    [InlineData("{{ 1 < 'a' }}", 1, "'<' not supported between instances of 'int' and 'str'")]
    [InlineData("\n\n{{ ','.join([1, 2]) }}", 3, "sequence item 0: expected str instance, int found")]
    [InlineData("{{ 'x'() }}", 1, "'str' object is not callable")]
    [InlineData("{{ '%d' % 'x' }}", 1, "%d format: a real number is required, not str")]
    [InlineData("{{ [1][1:'a'] }}", 1, "slice indices must be integers")]
    [InlineData("{% set x = 1 %}{% set x.y = 2 %}", 1, "cannot assign attribute on non-namespace object")]
    [InlineData("{% set a, b = [1, 2, 3] %}", 1, "too many values to unpack")]
    [InlineData("{{ [1] in {1: 2} }}", 1, "unhashable type: 'list'")]
    public void RuntimeErrorsMatchJinja2AndHaveALine(string template, int line, string message)
    {
        var ex = J.Fails(template);
        Assert.Equal(TemplateErrorKind.Runtime, ex.Kind);
        Assert.Contains(message, ex.Message);
        Assert.Equal(line, ex.Line);
    }
}
