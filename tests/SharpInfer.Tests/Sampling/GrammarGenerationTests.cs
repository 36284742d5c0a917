using System.Text;
using System.Text.Json;
using SharpInfer.Engine;
using SharpInfer.Sampling;
using SharpInfer.Sampling.Grammar;

namespace SharpInfer.Tests.Sampling;

/// <summary>GBNF constraints in the engine: every output of a random-weight model is in the language and ends
/// by end-of-generation (never by running out of tokens).</summary>
public class GrammarGenerationTests
{
    private static GrammarConstraint Constraint(string gbnf)
    {
        var model = ConstrainedGeneration.Qwen.Value;
        return GrammarConstraint.FromGbnf(gbnf, model.Tokenizer, model.Config.VocabSize);
    }

    [Fact]
    public async Task JsonGrammarOutputsParse()
    {
        // bounded so a random model finishes: at most 3 members of depth 2, short strings
        const string gbnf = """
            root   ::= "{" ws (member ("," ws member){0,2})? "}"
            member ::= key ":" ws value
            key    ::= "\"" [a-z]{1,6} "\""
            value  ::= key | num | "true" | "false" | "null" | "[" (num ("," ws num){0,3})? "]"
            num    ::= "-"? [0-9]{1,4}
            ws     ::= " "?
            """;
        var c = Constraint(gbnf);
        var outputs = await ConstrainedGeneration.RunAsync(Enumerable.Repeat<ILogitsProcessorFactory>(c, 6).ToArray());
        foreach (var o in outputs)
        {
            Assert.Equal(FinishReason.Stop, o.Finish);
            Assert.True(c.Automaton.Accepts(Encoding.UTF8.GetBytes(o.Text)), o.Text);
            using var doc = JsonDocument.Parse(o.Text);
            Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        }
        Assert.True(outputs.Select(o => o.Text).Distinct().Count() > 1, "different seeds should give different outputs");
    }

    [Fact]
    public async Task ArithmeticAndListOutputsAreInTheLanguage()
    {
        var arith = Constraint("root ::= term ([-+*/] term){0,4} \"\\n\"\nterm ::= [a-z]{1,3} | [0-9]{1,3} | \"(\" term [-+*/] term \")\"");
        var list = Constraint("root ::= item{1,3}\nitem ::= \"- \" [^\\r\\n\\x0b\\x0c\\x85\\u2028\\u2029]{1,12} \"\\n\"");
        var outputs = await ConstrainedGeneration.RunAsync([arith, list, arith, list]);
        for (int i = 0; i < outputs.Length; i++)
        {
            var c = i % 2 == 0 ? arith : list;
            Assert.Equal(FinishReason.Stop, outputs[i].Finish);
            Assert.True(c.Automaton.Accepts(Encoding.UTF8.GetBytes(outputs[i].Text)), outputs[i].Text);
        }
    }
}
