using System.Text;
using System.Text.Json;
using SharpInfer.Sampling.Grammar;

namespace SharpInfer.Tests.Sampling;

/// <summary>GBNF parsing, the byte automaton and the rejection of grammars that could hang generation.</summary>
public class GbnfGrammarTests
{
    // llama.cpp grammars/arithmetic.gbnf
    public const string Arithmetic = """
        root  ::= (expr "=" ws term "\n")+
        expr  ::= term ([-+*/] term)*
        term  ::= ident | num | "(" ws expr ")" ws
        ident ::= [a-z] [a-z0-9_]* ws
        num   ::= [0-9]+ ws
        ws    ::= [ \t\n]*
        """;

    // llama.cpp grammars/list.gbnf
    public const string List = """
        root ::= item+
        # Excludes various line break characters
        item ::= "- " [^\r\n\x0b\x0c\x85\u2028\u2029]+ "\n"
        """;

    // llama.cpp grammars/json.gbnf, with whitespace runs bounded as the JSON-schema converter does
    public const string Json = """
        root   ::= object
        value  ::= object | array | string | number | ("true" | "false" | "null") ws
        object ::=
          "{" ws (
                    string ":" ws value
            ("," ws string ":" ws value)*
          )? "}" ws
        array  ::=
          "[" ws (
                    value
            ("," ws value)*
          )? "]" ws
        string ::=
          "\"" (
            [^"\\\x7F\x00-\x1F] |
            "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
          )* "\"" ws
        number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
        ws ::= | " " | "\n" [ \t]{0,20}
        """;

    private static bool Accepts(string grammar, string text) =>
        new GrammarAutomaton(CompiledGrammar.FromGbnf(grammar)).Accepts(Encoding.UTF8.GetBytes(text));

    [Theory]
    [InlineData("a=1\n", true)]
    [InlineData("(a+b)*3 = x1\nz=y\n", true)]
    [InlineData("a=1", false)]
    [InlineData("=1\n", false)]
    [InlineData("a=(1\n", false)]
    [InlineData("A=1\n", false)]
    public void ArithmeticExamples(string text, bool ok) => Assert.Equal(ok, Accepts(Arithmetic, text));

    [Theory]
    [InlineData("- milk\n- eggs\n", true)]
    [InlineData("- caf\u00e9 \u2603\n", true)]
    [InlineData("- a\u2028b\n", false)]
    [InlineData("- \n", false)]
    [InlineData("", false)]
    [InlineData("* a\n", false)]
    public void ListExamples(string text, bool ok) => Assert.Equal(ok, Accepts(List, text));

    [Fact]
    public void RandomStringsMatchAnIndependentArithmeticRecogniser()
    {
        var a = new GrammarAutomaton(CompiledGrammar.FromGbnf(Arithmetic));
        var rng = new Random(12);
        const string alphabet = "ab1 2=+*-/()\n_";
        int accepted = 0;
        for (int n = 0; n < 20_000; n++)
        {
            var sb = new StringBuilder();
            int len = rng.Next(1, 12);
            for (int i = 0; i < len; i++) sb.Append(alphabet[rng.Next(alphabet.Length)]);
            // bias toward the language: often end lines with "=x\n"
            if (rng.Next(2) == 0) sb.Append("=b\n");
            string s = sb.ToString();
            bool expected = ArithmeticRecogniser.Accepts(s);
            Assert.True(expected == a.Accepts(Encoding.UTF8.GetBytes(s)), $"disagree on {JsonSerializer.Serialize(s)}: recogniser says {expected}");
            if (expected) accepted++;
        }
        Assert.True(accepted > 100, $"too few positive samples ({accepted}) to be meaningful");
    }

    [Fact]
    public void JsonGrammarAcceptsOnlyJson()
    {
        var a = new GrammarAutomaton(CompiledGrammar.FromGbnf(Json));
        var rng = new Random(5);
        int accepted = 0;
        for (int n = 0; n < 3000; n++)
        {
            string valid = RandomJson(rng, 0);
            Assert.True(a.Accepts(Encoding.UTF8.GetBytes(valid)), valid);
            // mutate one character: whatever the grammar then accepts must still be JSON
            var chars = valid.ToCharArray();
            chars[rng.Next(chars.Length)] = "{}[]\":,0-e. a\\"[rng.Next(14)];
            string mutated = new(chars);
            if (a.Accepts(Encoding.UTF8.GetBytes(mutated)))
            {
                accepted++;
                using var _ = JsonDocument.Parse(mutated);
            }
        }
        Assert.True(accepted > 0);
    }

    private static string RandomJson(Random rng, int depth)
    {
        int kind = depth >= 3 ? rng.Next(4) : rng.Next(6);
        return kind switch
        {
            0 => JsonSerializer.Serialize(new string(Enumerable.Range(0, rng.Next(6)).Select(_ => "ab\"\\\u00e9\n x"[rng.Next(8)]).ToArray())),
            1 => (rng.Next(2000) - 1000).ToString(),
            2 => (rng.NextDouble() * 100).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture),
            3 => new[] { "true", "false", "null" }[rng.Next(3)],
            4 => "[" + string.Join(",", Enumerable.Range(0, rng.Next(4)).Select(_ => RandomJson(rng, depth + 1))) + "]",
            _ => "{" + string.Join(", ", Enumerable.Range(0, rng.Next(4)).Select(i => $"\"k{i}\": " + RandomJson(rng, depth + 1))) + "}",
        } is var s && depth == 0 && !s.StartsWith('{') ? "{\"v\":" + s + "}" : s;
    }

    [Theory]
    [InlineData("root ::= \"a\" | \"b\"", "b", true)]
    [InlineData("root ::= [a-c]{2,3}", "abc", true)]
    [InlineData("root ::= [a-c]{2,3}", "abca", false)]
    [InlineData("root ::= [a-c]{2,3}", "a", false)]
    [InlineData("root ::= \"ab\"{2}", "abab", true)]
    [InlineData("root ::= \"ab\"{2}", "aba", false)]
    [InlineData("root ::= (\"x\" | \"y\")? \"z\"", "z", true)]
    [InlineData("root ::= [^a] .", "b\u00e9", true)]
    [InlineData("root ::= [^a] .", "ab", false)]
    [InlineData("root ::= \"\\x41\\u00e9\\t\"", "A\u00e9\t", true)]
    [InlineData("root ::= [\\]\\[-]+ # comment", "[]-", true)]
    [InlineData("root ::= x\nx ::= \"1\"\n   | \"2\"", "2", true)]
    [InlineData("root ::= [\U0001F600-\U0001F64F]", "\U0001F601", true)]
    [InlineData("root ::= [\U0001F600-\U0001F64F]", "\U0001F650", false)]
    public void Constructs(string grammar, string text, bool ok) => Assert.Equal(ok, Accepts(grammar, text));

    [Theory]
    [InlineData("root ::= foo", "never defined")]
    [InlineData("a ::= \"x\"", "no 'root'")]
    [InlineData("root ::= root \"a\" | \"b\"", "left-recursive")]
    [InlineData("root ::= x\nx ::= y \"a\"\ny ::= \"\" | x", "left-recursive")]
    [InlineData("root ::= (\"a\"?)*", "left-recursive")]
    [InlineData("root ::= \"a\" root", "no finite derivation")]
    [InlineData("root ::= \"a", "unterminated")]
    [InlineData("root ::= [a-", "unterminated")]
    [InlineData("root ::= \"a\"{3,1}", "max below min")]
    [InlineData("root ::= \"a\"{99999}", "not supported")]
    [InlineData("root ::= *", "nothing to repeat")]
    [InlineData("root ::= \"a\"\nroot ::= \"b\"", "defined twice")]
    [InlineData("root ::= \"\\q\"", "unknown escape")]
    public void BadGrammarsAreInvalidRequests(string grammar, string message)
    {
        var e = Assert.Throws<InvalidRequestException>(() => CompiledGrammar.FromGbnf(grammar));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void UnfinishableAlternativesArePrunedSoEveryPrefixCanEnd()
    {
        // "b" loops forever; only "a" can finish, so after the grammar's start "b" must be dead
        var a = new GrammarAutomaton(CompiledGrammar.FromGbnf("root ::= \"a\" | loop\nloop ::= \"b\" loop"));
        Assert.Equal(GrammarAutomaton.Dead, a.Step(a.Start, (byte)'b'));
        Assert.True(a.Accepts("a"u8));
    }

    /// <summary>Hand-written recursive descent for arithmetic.gbnf, independent of the automaton.</summary>
    private sealed class ArithmeticRecogniser
    {
        private readonly string _s;
        private int _i, _wsStart;
        private ArithmeticRecogniser(string s) => _s = s;

        public static bool Accepts(string s)
        {
            // the grammar is ambiguous only in whitespace: ws is consumed greedily, and since no term starts with
            // whitespace, the line's final "\n" must be the last character of the last term's whitespace run
            var r = new ArithmeticRecogniser(s);
            int lines = 0;
            while (r._i < s.Length)
            {
                if (!r.Expr() || !r.Eat('=')) return false;
                r.Ws();
                if (!r.Term() || r._i == r._wsStart || s[r._i - 1] != '\n') return false;
                lines++;
            }
            return lines > 0;
        }

        private bool Eat(char c)
        {
            if (_i < _s.Length && _s[_i] == c) { _i++; return true; }
            return false;
        }

        private void Ws() { _wsStart = _i; while (_i < _s.Length && _s[_i] is ' ' or '\t' or '\n') _i++; }

        private bool Expr()
        {
            if (!Term()) return false;
            while (_i < _s.Length && _s[_i] is '-' or '+' or '*' or '/')
            {
                _i++;
                if (!Term()) return false;
            }
            return true;
        }

        private bool Term()
        {
            if (_i >= _s.Length) return false;
            char c = _s[_i];
            if (c is >= 'a' and <= 'z')
            {
                _i++;
                while (_i < _s.Length && (char.IsAsciiLetterLower(_s[_i]) || char.IsAsciiDigit(_s[_i]) || _s[_i] == '_')) _i++;
                Ws();
                return true;
            }
            if (char.IsAsciiDigit(c))
            {
                while (_i < _s.Length && char.IsAsciiDigit(_s[_i])) _i++;
                Ws();
                return true;
            }
            if (c == '(')
            {
                _i++;
                Ws();
                if (!Expr() || !Eat(')')) return false;
                Ws();
                return true;
            }
            return false;
        }
    }
}
