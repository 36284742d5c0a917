using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Tokenization.Jinja;

/// <summary>Whitespace control: '-' and '+' modifiers, trim_blocks and lstrip_blocks (on by default, as in
/// Hugging Face), comments, raw blocks, trailing newline handling.</summary>
public class JinjaWhitespaceTests
{
    [Theory]
    // trim_blocks removes the newline after a block tag; lstrip_blocks removes indentation before it
    [InlineData("  {% if true %}\n  yes\n  {% endif %}\n  done", "  yes\n  done")]
    [InlineData("{% for i in range(3) %}\n{{ i }}\n{% endfor %}", "0\n1\n2\n")]
    // '+' at the end disables trim_blocks for that tag; at the start disables lstrip_blocks
    [InlineData("{% for i in range(2) +%}\n{{ i }}\n{% endfor %}", "\n0\n\n1\n")]
    [InlineData("    {%+ if true %}x{% endif %}", "    x")]
    // '-' strips all whitespace (newlines included) on its side
    [InlineData("a\n  {%- if true -%}\n  b  \n  {%- endif -%}  \nc", "abc")]
    [InlineData("x {{- 1 -}} y", "x1y")]
    // variable tags are not affected by trim/lstrip
    [InlineData("{{ 'a' }}   \n  {{ 'b' }}", "a   \n  b")]
    [InlineData("  {{ x }}  {% if true %}  y{% endif %}", "      y")]
    // lstrip only applies when the tag is the first thing on its line
    [InlineData("a {% if true %}\n{% endif %}b", "a b")]
    [InlineData("a\n\t {% if true %}\nb\n\t{% endif %}\nc\n", "a\nb\nc")]
    // comments get trim and lstrip too
    [InlineData("  {# comment #}\nafter", "after")]
    [InlineData("a\n  {#- c -#}  \nb", "ab")]
    [InlineData("a\n  {# c #}\n  {# d #}\nb", "a\nb")]
    // one trailing newline of the template is dropped (keep_trailing_newline=False), then trim_blocks eats the other
    [InlineData("{% if true %}a{% endif %}\n\n", "a")]
    [InlineData("a\n\n", "a\n")]
    // \r\n is normalized to \n
    [InlineData("{% if true %}a{% endif %}\r\nb\r\n", "ab")]
    public void WhitespaceControlMatchesJinja2(string template, string expected) =>
        Assert.Equal(expected, J.R(template));

    [Fact]
    public void TrimAndLstripCanBeTurnedOff()
    {
        var plain = new JinjaOptions { TrimBlocks = false, LstripBlocks = false };
        Assert.Equal("  \n  yes\n  \n  done", J.R("  {% if true %}\n  yes\n  {% endif %}\n  done", options: plain));
        Assert.Equal("a\n", J.R("a\n\n", options: new JinjaOptions { KeepTrailingNewline = false }));
        Assert.Equal("a\n\n", J.R("a\n\n", options: new JinjaOptions { KeepTrailingNewline = true }));
    }

    [Theory]
    [InlineData("{% raw %}{{ not parsed }}{% endraw %}", "{{ not parsed }}")]
    [InlineData("  {% raw %}\n  {{ x }}\n  {% endraw %}\nafter", "\n  {{ x }}\nafter")]
    [InlineData("  {%- raw -%}  {{ x }}  {%- endraw -%}  after", "{{ x }}after")]
    public void RawBlocksAreLiteral(string template, string expected) =>
        Assert.Equal(expected, J.R(template));

    [Fact]
    public void IndentedTemplateLikeHuggingFaceRendersCompactly()
    {
        const string t = "{%- for m in messages -%}\n  {{ m.role }}: {{ m.content }}\n{% endfor -%}";
        Assert.Equal("u: hi\na: yo\n", J.R(t, """{"messages": [{"role": "u", "content": "hi"}, {"role": "a", "content": "yo"}]}"""));
    }
}
