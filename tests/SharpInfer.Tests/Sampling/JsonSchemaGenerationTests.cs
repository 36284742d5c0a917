using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using SharpInfer.Engine;
using SharpInfer.Sampling;
using SharpInfer.Sampling.Grammar;

namespace SharpInfer.Tests.Sampling;

/// <summary>JSON Schema constraints end to end: a random-weight model's output for every schema is JSON that an
/// independent validator (JsonSchema.Net) accepts, finished by end-of-generation within 512 tokens.</summary>
public class JsonSchemaGenerationTests
{
    public static readonly string[] Schemas =
    [
        """{"type":"boolean"}""",
        """{"type":"null"}""",
        """{"type":"integer"}""",
        """{"type":"number"}""",
        """{"type":"string","maxLength":8}""",
        """{"type":"string","minLength":3,"maxLength":5}""",
        """{"type":"integer","minimum":-20,"maximum":300}""",
        """{"type":"integer","minimum":7,"maximum":7}""",
        """{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":1000}""",
        """{"type":"integer","minimum":-99999,"maximum":-100}""",
        """{"type":"integer","minimum":1234}""",
        """{"type":"integer","maximum":-5}""",
        """{"enum":["red","green","blue"]}""",
        """{"enum":[1,"two",null,true,{"a":[1]}]}""",
        """{"const":"fixed"}""",
        """{"const":{"k":[1,2,{"z":null}]}}""",
        """{"type":"string","format":"date"}""",
        """{"type":"string","format":"time"}""",
        """{"type":"string","format":"date-time"}""",
        """{"type":"string","format":"uuid"}""",
        """{"type":"string","pattern":"^[a-z]{2,5}-[0-9]{3}$"}""",
        """{"type":"string","pattern":"^(cat|dog|bird)s?$"}""",
        """{"type":"string","pattern":"^\\d{3}-\\d{4}$"}""",
        """{"type":"string","pattern":"^[A-Z][a-z]{0,6}( [A-Z][a-z]{0,6})?$"}""",
        """{"type":"string","pattern":"^(?:0x)?[0-9a-f]{1,8}$"}""",
        """{"type":"string","pattern":"^[^a-z]{1,4}\\.?$"}""",
        """{"type":"array","items":{"type":"integer"},"maxItems":5}""",
        """{"type":"array","items":{"type":"boolean"},"minItems":2,"maxItems":3}""",
        """{"type":"array","items":{"enum":["a","b"]},"minItems":4,"maxItems":4}""",
        """{"type":"array","prefixItems":[{"type":"string","maxLength":4},{"type":"integer","minimum":0,"maximum":9}],"items":false}""",
        """{"type":"array","prefixItems":[{"type":"boolean"},{"type":"null"}],"minItems":1,"maxItems":4,"items":{"type":"integer","minimum":0,"maximum":5}}""",
        """{"type":"array","prefixItems":[{"const":1},{"const":2},{"const":3}],"maxItems":2}""",
        """{"type":"object","properties":{"name":{"type":"string","maxLength":10},"age":{"type":"integer","minimum":0,"maximum":150}},"required":["name","age"],"additionalProperties":false}""",
        """{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"},"c":{"enum":[1,2]}},"additionalProperties":false}""",
        """{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"tags":{"type":"array","items":{"type":"string","maxLength":5},"maxItems":3}},"required":["tags"]}""",
        """{"type":"object","additionalProperties":{"type":"integer","minimum":0,"maximum":99}}""",
        """{"type":"object","additionalProperties":false}""",
        """{"type":"object","properties":{},"additionalProperties":true}""",
        """{"anyOf":[{"type":"integer","minimum":0,"maximum":9},{"type":"string","maxLength":3},{"type":"null"}]}""",
        """{"oneOf":[{"type":"boolean"},{"type":"object","properties":{"x":{"type":"integer","minimum":0,"maximum":3}},"required":["x"],"additionalProperties":false}]}""",
        """{"type":["string","null"],"maxLength":4}""",
        """{"$defs":{"point":{"type":"object","properties":{"x":{"type":"integer","minimum":-9,"maximum":9},"y":{"type":"integer","minimum":-9,"maximum":9}},"required":["x","y"],"additionalProperties":false}},"type":"array","items":{"$ref":"#/$defs/point"},"maxItems":3}""",
        """{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"leaf":{"enum":["x","y"]}},"type":"object","properties":{"l":{"$ref":"#/definitions/leaf"}},"required":["l"]}""",
        """{"$defs":{"tree":{"type":"object","properties":{"v":{"type":"integer","minimum":0,"maximum":9},"kids":{"type":"array","items":{"$ref":"#/$defs/tree"},"maxItems":2}},"required":["v"],"additionalProperties":false}},"$ref":"#/$defs/tree"}""",
        """{"type":"object","properties":{"user":{"type":"object","properties":{"email":{"type":"string","pattern":"^[a-z]{1,8}@[a-z]{1,8}\\.(com|org)$"},"born":{"type":"string","format":"date"},"role":{"enum":["admin","user"]}},"required":["email","role"],"additionalProperties":false},"scores":{"type":"array","items":{"type":"number"},"maxItems":3},"active":{"type":"boolean"}},"required":["user","active"],"additionalProperties":false}""",
        """{"type":"object","properties":{"when":{"type":"string","format":"date-time"},"at":{"type":"string","format":"time"}},"required":["when","at"],"additionalProperties":false}""",
    ];

    public static TheoryData<int> Batches() => [.. Enumerable.Range(0, (Schemas.Length + 7) / 8)];

    [Theory]
    [MemberData(nameof(Batches))]
    public async Task OutputsValidateAgainstTheirSchemas(int batch)
    {
        var model = ConstrainedGeneration.Qwen.Value;
        var schemas = Schemas.Skip(batch * 8).Take(8).ToArray();
        var constraints = schemas.Select(s => new GrammarConstraint(
            new GrammarRulesCompiler(JsonSchemaToGbnf.Convert(s)).Compiled, TokenTrie.For(model.Tokenizer), model.Config.VocabSize)).ToArray();
        var outputs = await ConstrainedGeneration.RunAsync(constraints, maxTokens: 512, seed: (ulong)(100 + batch));
        var options = new EvaluationOptions { OutputFormat = OutputFormat.List, RequireFormatValidation = true };
        for (int i = 0; i < schemas.Length; i++)
        {
            var o = outputs[i];
            Assert.True(o.Finish == FinishReason.Stop, $"schema {schemas[i]} did not finish: {o.Text}");
            using var doc = JsonDocument.Parse(o.Text);
            var result = JsonSchema.FromText(schemas[i]).Evaluate(doc.RootElement, options);
            Assert.True(result.IsValid, $"schema {schemas[i]}\noutput {o.Text}\nerrors {JsonSerializer.Serialize(result)}");
        }
    }

    [Fact]
    public void CoversEveryKeywordOfTheIssue()
    {
        string all = string.Join("\n", Schemas);
        foreach (var k in new[] { "\"object\"", "\"array\"", "\"string\"", "\"number\"", "\"integer\"", "\"boolean\"", "\"null\"", "properties", "required",
            "additionalProperties", "enum", "const", "\"items\"", "prefixItems", "minItems", "maxItems", "minLength", "maxLength", "pattern",
            "minimum", "maximum", "anyOf", "oneOf", "$ref", "$defs", "\"date\"", "\"time\"", "\"date-time\"", "\"uuid\"" })
            Assert.Contains(k, all);
        Assert.True(Schemas.Length >= 40);
    }

    [Theory]
    [InlineData("""{"type":"string","format":"email"}""", "'format' 'email'")]
    [InlineData("""{"type":"object","patternProperties":{}}""", "'patternProperties'")]
    [InlineData("""{"type":"string","pattern":"(?=a)"}""", "lookarounds")]
    [InlineData("""{"type":"string","pattern":"\\p{L}"}""", "not supported")]
    [InlineData("""{"type":"string","pattern":"a\"b"}""", "JSON escape")]
    [InlineData("""{"$ref":"http://x/y"}""", "only #/$defs")]
    [InlineData("""{"$ref":"#/$defs/missing"}""", "points nowhere")]
    [InlineData("""{"type":"integer","minimum":5,"maximum":1}""", "is empty")]
    [InlineData("""{"type":"number","minimum":0}""", "integers only")]
    [InlineData("""{"type":"complex"}""", "'complex'")]
    [InlineData("""{"type":"object","properties":{"a":{}},"required":["b"]}""", "'b'")]
    [InlineData("""{"$defs":{"t":{"type":"array","items":{"$ref":"#/$defs/t"},"minItems":1}},"$ref":"#/$defs/t"}""", "no finite derivation")]
    [InlineData("""{"type":""", "not valid JSON")]
    public void UnsupportedOrInvalidSchemasAreInvalidRequests(string schema, string message)
    {
        var e = Assert.Throws<InvalidRequestException>(() => CompiledGrammar.FromGbnf(JsonSchemaToGbnf.Convert(schema), "json_schema"));
        Assert.Contains(message, e.Message);
    }

    private sealed class GrammarRulesCompiler(string gbnf)
    {
        public CompiledGrammar Compiled { get; } = CompiledGrammar.FromGbnf(gbnf, "json_schema");
    }
}
