using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Tokenization.Jinja;

/// <summary>Statements: if/elif/else, for (loop variables, else, filter, unpacking, break/continue, recursive),
/// set (tuple, block, namespace), macros, call blocks, filter blocks, with, scoping.</summary>
public class JinjaStatementTests
{
    [Theory]
    [InlineData("""{"x": 1}""", "a")]
    [InlineData("""{"y": 1}""", "b")]
    [InlineData("""{}""", "c")]
    public void IfElifElse(string vars, string expected) =>
        Assert.Equal(expected, J.R("{% if x %}a{% elif y %}b{% else %}c{% endif %}", vars));

    [Fact]
    public void LoopIndexesFirstLastLength() =>
        Assert.Equal("1,0,3,2,True,False,3;2,1,2,1,False,False,3;3,2,1,0,False,True,3;",
            J.R("{% for x in 'abc' %}{{ [loop.index, loop.index0, loop.revindex, loop.revindex0, loop.first, loop.last, loop.length]|join(',') }};{% endfor %}"));

    [Fact]
    public void LoopPrevNextCycleChanged()
    {
        Assert.Equal("-2-a;1-3-b;2--a;", J.R("{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.cycle('a','b') }};{% endfor %}"));
        Assert.Equal("TrueFalseTrue", J.R("{% for i in range(3) %}{{ loop.changed(i // 2) }}{% endfor %}"));
        Assert.Equal("11", J.R("{% for x in [1] %}{{ loop.depth }}{{ loop.depth0 + 1 }}{% endfor %}"));
    }

    [Theory]
    [InlineData("{% for x in [] %}x{% else %}empty{% endfor %}", "empty")]
    [InlineData("{% for i in range(3) if i > 5 %}{{ i }}{% else %}none{% endfor %}", "none")]
    [InlineData("{% for x in [1,2,3,4] if x is even %}{{ x }}/{{ loop.length }} {% endfor %}", "2/2 4/2 ")]
    [InlineData("{% for a, b in [(1,2),(3,4)] %}{{ a }}{{ b }}{% endfor %}", "1234")]
    [InlineData("{% for a, (b, c) in [(1, (2, 3))] %}{{ a }}{{ b }}{{ c }}{% endfor %}", "123")]
    [InlineData("{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}={{ v }},{% endfor %}", "x=1,y=2,")]
    [InlineData("{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}", "ba")]
    [InlineData("{% for c in 'héé' %}[{{ c }}]{% endfor %}", "[h][é][é]")]
    [InlineData("{% for x in range(10) %}{% if x == 5 %}{% break %}{% endif %}{% if x is odd %}{% continue %}{% endif %}{{ x }}{% endfor %}", "024")]
    [InlineData("{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}{{ a }}{{ b }},{% endfor %}{{ loop.index }};{% endfor %}", "113,214,1;123,224,2;")]
    [InlineData("{% for x in l recursive %}[{{ x.n }}{% if x.c %}{{ loop(x.c) }}{% endif %}]{% endfor %}", "[1[2]][3]")]
    public void ForLoops(string template, string expected) =>
        Assert.Equal(expected, J.R(template, """{"l": [{"n": 1, "c": [{"n": 2, "c": []}]}, {"n": 3}]}"""));

    [Fact]
    public void ForOverUndefinedIsEmptyButNoneFails()
    {
        Assert.Equal("done", J.R("{% for x in nothing %}x{% endfor %}done"));
        var ex = J.Fails("{% for x in none %}{% endfor %}");
        Assert.Contains("'NoneType' object is not iterable", ex.Message);
    }

    [Theory]
    [InlineData("{% set a, b = 1, 2 %}{{ a }}{{ b }}", "12")]
    [InlineData("{% set t = 1, 2 %}{{ t }}", "(1, 2)")]
    [InlineData("{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]", "[inner 2]")]
    [InlineData("{% set x | upper %}inner{% endset %}[{{ x }}]", "[INNER]")]
    [InlineData("{% set ns = namespace(c=0) %}{% for i in range(5) %}{% set ns.c = ns.c + i %}{% endfor %}{{ ns.c }}", "10")]
    [InlineData("{% set ns = namespace() %}{% set ns.x = 1 %}{{ ns.x }}", "1")]
    [InlineData("{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}", "12")]
    public void SetStatements(string template, string expected) => Assert.Equal(expected, J.R(template));

    [Theory]
    // a for-loop body is a new scope per iteration: sets do not survive the iteration or the loop
    [InlineData("{% set c = 0 %}{% for i in range(3) %}{% set c = c + i %}{{ c }}{% endfor %}|{{ c }}", "012|0")]
    [InlineData("{% for i in range(2) %}{% set inner = i %}{% endfor %}[{{ inner }}]", "[]")]
    [InlineData("{% set x = 'outer' %}{% for i in [1] %}{{ x }}{% set x = 'inner' %}{{ x }}{% endfor %}{{ x }}", "outerinnerouter")]
    // if-blocks do not create a scope
    [InlineData("{% if true %}{% set leak = 1 %}{% endif %}[{{ leak }}]", "[1]")]
    // macros see the current value of outer variables (closures) but their own sets stay local
    [InlineData("{% set x = 5 %}{% macro show() %}{{ x }}{% endmacro %}{% set x = 6 %}{{ show() }}", "6")]
    [InlineData("{% macro m() %}{% set y = 5 %}{{ y }}{% endmacro %}{{ m() }}[{{ y }}]", "5[]")]
    [InlineData("{% set x = 1 %}{% macro m(x) %}{{ x }}{% endmacro %}{{ m(2) }}{{ x }}", "21")]
    [InlineData("{% set x = 5 %}{% with %}{% set x = 6 %}{{ x }}{% endwith %}{{ x }}", "65")]
    [InlineData("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", "3[]")]
    public void Scoping(string template, string expected) => Assert.Equal(expected, J.R(template));

    [Theory]
    [InlineData("{% macro m(a, b=2) %}{{ a }}-{{ b }}{% endmacro %}{{ m(1) }} {{ m(1, 3) }} {{ m(b=5, a=4) }} [{{ m() }}]", "1-2 1-3 4-5 [-2]")]
    [InlineData("{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}", "1(2, 3){'x': 4}")]
    [InlineData("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}", "54321")]
    [InlineData("{% macro m(a, b) %}{{ a }}{{ b }}{% endmacro %}{{ m(*[1, 2]) }}{{ m(**{'a': 3, 'b': 4}) }}", "1234")]
    [InlineData("{% macro m() -%}\n  body\n{%- endmacro %}[{{ m() }}]", "[body]")]
    [InlineData("{% macro outer() %}{% macro inner() %}in{% endmacro %}{{ inner() }}{% endmacro %}{{ outer() }}", "in")]
    [InlineData("{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold{% endcall %}", "<b>bold</b>")]
    [InlineData("{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) each([1,2]) %}[{{ x }}]{% endcall %}", "[1][2]")]
    public void MacrosAndCallBlocks(string template, string expected) => Assert.Equal(expected, J.R(template));

    [Theory]
    [InlineData("{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}", "macro 'm' takes not more than 1 argument(s)")]
    [InlineData("{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, x=2) }}", "macro 'm' takes no keyword argument 'x'")]
    [InlineData("{% macro m() %}{{ caller() }}{% endmacro %}{{ m() }}", "No caller defined")]
    public void MacroArgumentErrors(string template, string message) =>
        Assert.Contains(message, J.Fails(template).Message);

    [Theory]
    [InlineData("{% filter upper %}hello {{ 'x' }}{% endfilter %}", "HELLO X")]
    [InlineData("{% filter replace('a', 'b') | upper %}aaa{% endfilter %}", "BBB")]
    [InlineData("{% generation %}kept{% endgeneration %}", "kept")]
    public void FilterAndGenerationBlocks(string template, string expected) => Assert.Equal(expected, J.R(template));

    [Fact]
    public void JoinerAndCycler()
    {
        Assert.Equal("1, 2, 3", J.R("{% set j = joiner(', ') %}{% for x in [1,2,3] %}{{ j() }}{{ x }}{% endfor %}"));
        Assert.Equal("abab", J.R("{% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }}"));
    }
}
