namespace SharpInfer.Tests.Tokenization.Jinja;

/// <summary>Literals, operators, printing (Python str/repr), attribute/subscript access, slicing, methods.</summary>
public class JinjaExpressionTests
{
    [Theory]
    // Python float repr: shortest round-trip, exponent below 1e-4 and from 1e16
    [InlineData("{{ 1.0 }}|{{ 0.1 }}|{{ 1e-05 }}|{{ 1e16 }}|{{ 1e15 }}|{{ 0.0001 }}|{{ -0.0 }}|{{ 1.5e-7 }}", "1.0|0.1|1e-05|1e+16|1000000000000000.0|0.0001|-0.0|1.5e-07")]
    [InlineData("{{ 0.1 + 0.2 }}|{{ 1 / 3 }}|{{ 10 / 5 }}|{{ 2 ** 0.5 }}", "0.30000000000000004|0.3333333333333333|2.0|1.4142135623730951")]
    [InlineData("{{ [1, 'a', none, true, 1.5] }}|{{ {'a': 1, 'b': [2]} }}|{{ (1,) }}|{{ (1, 2) }}|{{ () }}", "[1, 'a', None, True, 1.5]|{'a': 1, 'b': [2]}|(1,)|(1, 2)|()")]
    [InlineData("{{ [\"it's\", 'say \"hi\"', 'both \\' \"', '\\n\\t\\x01'] }}", "[\"it's\", 'say \"hi\"', 'both \\' \"', '\\n\\t\\x01']")]
    [InlineData("{{ True }} {{ false }} {{ None }} {{ None is none }}", "True False None True")]
    [InlineData("{{ 0x10 }} {{ 0b101 }} {{ 0o17 }} {{ 1_000 }} {{ 1.5e3 }} {{ 'a' 'b' }} {{ \"\\x41\\u00e9\\101\" }}", "16 5 15 1000 1500.0 ab AéA")]
    [InlineData("{{ 2 ** 64 }} {{ -(2 ** 63) - 1 }} {{ 12345678901234567890 + 1 }}", "18446744073709551616 -9223372036854775809 12345678901234567891")]
    public void LiteralsPrintLikePython(string template, string expected) => Assert.Equal(expected, J.R(template));

    [Theory]
    [InlineData("{{ 'a' ~ 1 ~ none ~ true }} {{ 'a' + 'b' }} {{ [1] + [2] }} {{ 'ab' * 3 }} {{ [0] * 3 }} {{ 3 * 'x' }}", "a1NoneTrue ab [1, 2] ababab [0, 0, 0] xxx")]
    [InlineData("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}", "3 -4 1 2 3.5 1024 0.5 3.0 0.5")]
    [InlineData("{{ 1 == 1.0 }} {{ 1 != 2 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }} {{ 1 == true }} {{ '1' == 1 }}", "True True True False True True True False")]
    [InlineData("{{ 'b' in 'abc' }} {{ 2 in [1,2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ 1.0 in {1: 2} }}", "True True True True True")]
    [InlineData("{{ not true }} {{ true and false }} {{ 0 or 'x' }} {{ '' or [] }} {{ 1 and 2 }}", "False False x [] 2")]
    [InlineData("{{ -3 }} {{ -2 ** 2 }} {{ 2 + 3 * 4 }} {{ (2 + 3) * 4 }} {{ 10 - 2 - 3 }} {{ 1 ~ (2 + 3) }} {{ 2 * 3 ~ 4 }}", "-3 4 14 20 5 15 64")]
    [InlineData("{{ 1 if true else 2 }} {{ 1 if false else 2 }} [{{ 1 if false }}] {{ 'x' if none else 'y' if 0 else 'z' }}", "1 2 [] z")]
    [InlineData("{{ -3|abs }} {{ [1,2]|length - 1 }} {{ 'a' + 'b'|upper }}", "3 1 aB")]
    [InlineData("{{ {'a': 1} == {'a': 1.0} }} {{ (1, 2) == [1, 2] }} {{ true + 1 }}", "True False 2")]
    public void Operators(string template, string expected) => Assert.Equal(expected, J.R(template));

    [Theory]
    [InlineData("{{ s[1:3] }}|{{ s[::-1] }}|{{ s[-2:] }}|{{ s[:100] }}|{{ s[5:1] }}|{{ s[::2] }}|{{ s[1] }}|{{ s[-1] }}", "bc|fedcba|ef|abcdef||ace|b|f")]
    [InlineData("{{ l[1:] }}|{{ l[:-1] }}|{{ l[::-1] }}|{{ l[-10:10:3] }}|[{{ l[5] }}]|{{ l.1 }}", "[2, 3, 4]|[1, 2, 3]|[4, 3, 2, 1]|[1, 4]|[]|2")]
    [InlineData("{{ e|length }}|{{ e[-1] }}|{{ e[::-1] }}|{{ e[1:2] }}", "3|👋|👋éa|é")]
    public void SubscriptsAndSlicing(string template, string expected) =>
        Assert.Equal(expected, J.R(template, """{"s": "abcdef", "l": [1, 2, 3, 4], "e": "aé👋"}"""));

    [Theory]
    [InlineData("{{ '  x  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  x'.lstrip() }}|{{ 'x  '.rstrip() }}|{{ 'abcba'.rstrip('ab') }}", "x|a|x|x|abc")]
    [InlineData("{{ 'a,b,,c'.split(',') }} {{ '  a  b  '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ '  a  b  '.rsplit(None, 1) }}", "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a b', 'c'] ['  a', 'b']")]
    [InlineData("{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'abc'.startswith('b', 1) }}", "True True True")]
    [InlineData("{{ 'Hello World'.upper() }} {{ 'HeLLo'.lower() }} {{ \"they're bill's\".title() }} {{ 'hELLO wORLD'.capitalize() }} {{ 'Hello'.swapcase() }}", "HELLO WORLD hello They'Re Bill'S Hello world hELLO")]
    [InlineData("{{ 'aaa'.replace('a', 'b') }} {{ 'aaa'.replace('a', 'b', 2) }} {{ 'abc'.replace('', '-') }} {{ 'hello'.find('l') }} {{ 'hello'.find('z') }} {{ 'hello'.count('l') }} {{ '-'.join(['a', 'b']) }}", "bbb bba -a-b-c- 2 -1 2 a-b")]
    [InlineData("{{ '{} and {}'.format(1, 'x') }} {{ '{0}{1}{0}'.format('a', 'b') }} {{ '{name}!'.format(name='x') }} {{ '{:>5}|{:<5}|{:^5}'.format('a', 'b', 'c') }} {{ '{:.2f}'.format(3.14159) }} {{ '{:05d}'.format(42) }}", "1 and x aba x!     a|b    |  c   3.14 00042")]
    [InlineData("{{ 'a\\nb\\r\\nc'.splitlines() }} {{ '123'.isdigit() }} {{ 'abc'.isalpha() }} {{ '  '.isspace() }} {{ 'ABC'.isupper() }}", "['a', 'b', 'c'] True True True True")]
    [InlineData("{% set l = [1] %}{{ l.append(2) }}{{ l }}{{ l.pop() }}{{ l }}{% set _ = l.insert(0, 5) %}{{ l }}{% set _ = l.extend([7, 8]) %}{{ l }}", "None[1, 2]2[1][5, 1][5, 1, 7, 8]")]
    [InlineData("{% set d = {'a': 1} %}{% set _ = d.update({'b': 2}) %}{{ d }}{{ d.pop('a') }}{{ d }}{{ d.get('z', 9) }}{{ d.keys()|list }}", "{'a': 1, 'b': 2}1{'b': 2}9['b']")]
    [InlineData("{{ {'a': 1}.items() }} {{ {'a': 1}.keys() }}", "dict_items([('a', 1)]) dict_keys(['a'])")]
    public void StringListDictMethods(string template, string expected) => Assert.Equal(expected, J.R(template));

    [Fact]
    public void DictAttributeAccessPrefersMethodsButSubscriptPrefersKeys()
    {
        const string vars = """{"d": {"items": 5, "role": "user"}}""";
        Assert.Equal("user|user|5", J.R("{{ d.role }}|{{ d['role'] }}|{{ d['items'] }}", vars));
        Assert.Equal("True", J.R("{{ d.items is callable }}", vars));
    }

    [Fact]
    public void JsonInputsKeepKeyOrderAndNumberKinds()
    {
        Assert.Equal("{'z': 1, 'a': 2.0, 'm': [1.5, None, True]}", J.R("{{ x }}", """{"x": {"z": 1, "a": 2.0, "m": [1.5, null, true]}}"""));
        Assert.Equal("zam", J.R("{% for k in x %}{{ k }}{% endfor %}", """{"x": {"z": 1, "a": 2, "m": 3}}"""));
    }
}
