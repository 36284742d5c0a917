namespace SharpInfer.Tests.Tokenization.Jinja;

/// <summary>Built-in filters with Jinja2's argument conventions.</summary>
public class JinjaFilterTests
{
    private const string Users = """{"users": [{"name": "a", "age": 3, "admin": true}, {"name": "b", "admin": false}, {"name": "c", "age": 1, "admin": true}]}""";

    [Theory]
    [InlineData("{{ '  x '|trim }}|{{ 'xax'|trim('x') }}|{{ [1,2]|length }}|{{ 'abc'|count }}|{{ [1,2]|join('-') }}|{{ users|join(', ', attribute='name') }}", "x|a|2|3|1-2|a, b, c")]
    [InlineData("{{ x|default('d') }}|{{ ''|default('d') }}|{{ ''|default('d', true) }}|{{ none|d('d') }}|{{ false|d('d', boolean=true) }}", "d||d|None|d")]
    [InlineData("{{ [3,1,2]|first }}|{{ [3,1,2]|last }}|[{{ []|first }}]|{{ 'abc'|first }}|{{ {'a':1}|first }}", "3|2|[]|a|a")]
    [InlineData("{{ users|map(attribute='name')|list }} {{ ['a','b']|map('upper')|list }} {{ users|map(attribute='age', default=0)|list }} {{ ['x']|map('replace', 'x', 'y')|list }}", "['a', 'b', 'c'] ['A', 'B'] [3, 0, 1] ['y']")]
    [InlineData("{{ [1,2,3,4]|select('odd')|list }} {{ [1,2,3,4]|reject('odd')|list }} {{ [0,1,'',2]|select|list }} {{ [1,2,3]|select('gt', 1)|list }} {{ [1,2,3]|select('divisibleby', 3)|list }}", "[1, 3] [2, 4] [1, 2] [2, 3] [3]")]
    [InlineData("{{ users|selectattr('admin')|map(attribute='name')|join }} {{ users|rejectattr('admin')|map(attribute='name')|join }} {{ users|selectattr('name', 'equalto', 'b')|map(attribute='name')|join }} {{ users|selectattr('name', '==', 'c')|list|length }}", "ac b b 1")]
    [InlineData("{{ 'abc'|list }} {{ 5|string }} {{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ '0x1A'|int(0, 16) }} {{ '3.5'|float }} {{ 'x'|float }} {{ 2|float }}", "['a', 'b', 'c'] 5 42 4 0 7 3 26 3.5 0.0 2.0")]
    [InlineData("{{ (-3)|abs }} {{ -2.5|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 2.1|round(0, 'ceil') }} {{ 2.9|round(0, 'floor') }} {{ 42|round }}", "3 2.5 2.0 4.0 2.67 3.0 2.0 42")]
    [InlineData("{{ '<a href=\"x\">&\\'</a>'|escape }} {{ '<b>'|e }} {{ '<b>'|safe }}", "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt; &lt;b&gt; <b>")]
    [InlineData("{{ 'hello world'|capitalize }} {{ 'hello'|upper }} {{ 'HELLO'|lower }} {{ 'hello wORLD-foo(bar'|title }} {{ 'aXa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 1) }}", "Hello world HELLO hello Hello World-Foo(Bar bXb baa")]
    [InlineData("{{ {'b': 2, 'a': 1}|items|list }} {{ {'b': 2, 'a': 1, 'C': 0}|dictsort }} {{ {'b': 2, 'a': 1}|dictsort(by='value') }} {{ {'b': 2, 'a': 1}|dictsort(reverse=true) }}", "[('b', 2), ('a', 1)] [('a', 1), ('b', 2), ('C', 0)] [('a', 1), ('b', 2)] [('b', 2), ('a', 1)]")]
    [InlineData("{{ [3,1,2]|sort }} {{ [3,1,2]|sort(reverse=true) }} {{ ['b','A','c']|sort }} {{ ['b','A','c']|sort(case_sensitive=true) }} {{ users|sort(attribute='name', reverse=true)|map(attribute='name')|join }}", "[1, 2, 3] [3, 2, 1] ['A', 'b', 'c'] ['A', 'b', 'c'] cba")]
    [InlineData("{{ [1,2,1,'a','A']|unique|list }} {{ [1,2,3]|reverse|list }} {{ 'abc'|reverse }} {{ [1,2,3]|sum }} {{ [1,5,3]|min }} {{ [1,5,3]|max }} {{ ['b','A']|min }} [{{ []|max }}]", "[1, 2, 'a'] [3, 2, 1] cba 6 1 5 A []")]
    [InlineData("{{ [1,2,3,4,5]|batch(2)|list }} {{ [1,2,3]|batch(2, 'x')|list }}", "[[1, 2], [3, 4], [5]] [[1, 2], [3, 'x']]")]
    [InlineData("{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}|{{ 'a\\nb'|indent('>>') }}", "a\n    b\n\n    c|  a\n  b|a\n  \n  b|a\n>>b")]
    [InlineData("{{ 'hello big world'|wordcount }} [{{ 'abc'|center(9) }}] [{{ 'abcd'|center(9) }}]", "3 [   abc   ] [   abcd  ]")]
    [InlineData("{{ 'foo bar baz qux'|truncate(9) }}|{{ 'foo bar baz qux'|truncate(9, true) }}|{{ 'foo bar baz qux'|truncate(11, false, '>>', 0) }}|{{ 'short'|truncate(9) }}", "foo...|foo ba...|foo bar>>|short")]
    [InlineData("{{ '%s-%d'|format('a', 3) }} {{ '%(x)s'|format(x='y') }} {{ '%5.2f|%-4d|%04d|%x|%r'|format(3.14159, 7, 7, 255, 'q') }} {{ '%.2f'|format(0.125) }}", "a-3 y  3.14|7   |0007|ff|'q' 0.12")]
    [InlineData("{{ users|map(attribute='age')|select('defined')|sum }} {{ [[1], [2]]|sum(start=[]) }} {{ users|selectattr('age', 'defined')|map(attribute='name')|join }}", "4 [1, 2] ac")]
    public void Filters(string template, string expected) => Assert.Equal(expected, J.R(template, Users));

    [Fact]
    public void MapWithUnknownFilterFailsAtRenderTime() =>
        Assert.Contains("No filter named 'nope'", J.Fails("{{ [1]|map('nope')|list }}").Message);
}
