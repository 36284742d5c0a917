using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using SharpInfer.Server.Api;

namespace SharpInfer.Tests.Server;

/// <summary>The scans that let the server check a body without decoding it: <see cref="JsonRawString"/> measures a
/// string exactly as decoding would, <see cref="JsonArrayLimit"/> finds an over-long array and names where it is.</summary>
public class RawJsonScanTests
{
    public static TheoryData<string> Strings => new()
    {
        "", "plain ascii", "line\nbreak\ttab \"quoted\" back\\slash /slash \b\f\r", "é 中 😀 \u0001 \u007f \u0080 \u07ff \u0800 \uffff",
        "<|im_start|>user\nHi<|im_end|>", new string('x', 5000) + "😀",
    };

    [Theory]
    [MemberData(nameof(Strings))]
    public void TheRawLengthIsTheDecodedLength(string text)
    {
        // every way a JSON writer may escape the same text decodes to the same length
        foreach (var encoder in new[] { JavaScriptEncoder.Default, JavaScriptEncoder.UnsafeRelaxedJsonEscaping })
        {
            var json = JsonSerializer.Serialize(text, new JsonSerializerOptions { Encoder = encoder });
            using var doc = JsonDocument.Parse(json);
            Assert.Equal(Encoding.UTF8.GetByteCount(text), JsonRawString.Utf8Length(doc.RootElement));
        }
    }

    [Theory]
    [InlineData("\"\\ud800\"")]           // lone high surrogate
    [InlineData("\"\\udc00x\"")]          // lone low surrogate
    [InlineData("\"\\ud800\\u0041\"")]    // high surrogate followed by a non-surrogate
    public void LoneSurrogateEscapesAreInvalid(string json)
    {
        using var doc = JsonDocument.Parse(json);
        Assert.Null(JsonRawString.Utf8Length(doc.RootElement));
    }

    [Fact]
    public void InvalidUtf8BytesAreInvalid()
    {
        byte[] json = [(byte)'"', (byte)'a', 0xFF, (byte)'"'];
        using var doc = JsonDocument.Parse(json);
        Assert.Null(JsonRawString.Utf8Length(doc.RootElement));
    }

    [Fact]
    public void AnArrayOverTheLimitIsRefusedNamingItsProperty()
    {
        string ids = string.Join(",", Enumerable.Repeat("7", 101));
        var e = Assert.Throws<ApiException>(() => JsonArrayLimit.Check(Encoding.UTF8.GetBytes($"{{\"model\": \"m\", \"prompt\": [[1], [{ids}]]}}"), 100));
        Assert.Equal("prompt", e.Param);
        Assert.Equal("context_length_exceeded", e.Code);
        var objects = string.Join(",", Enumerable.Repeat("{\"role\": \"user\", \"content\": [\"a\"]}", 101));
        e = Assert.Throws<ApiException>(() => JsonArrayLimit.Check(Encoding.UTF8.GetBytes($"{{\"messages\": [{objects}]}}"), 100));
        Assert.Equal("messages", e.Param);
    }

    [Fact]
    public void ArraysAtTheLimitAndLargeObjectsPass()
    {
        string ids = string.Join(",", Enumerable.Repeat("7", 100));
        JsonArrayLimit.Check(Encoding.UTF8.GetBytes($"{{\"prompt\": [[{ids}], [{ids}]], \"stop\": [\"a\"]}}"), 100);
        // objects are not arrays: a logit_bias with many entries is fine
        string bias = string.Join(",", Enumerable.Range(0, 500).Select(i => $"\"{i}\": 1"));
        JsonArrayLimit.Check(Encoding.UTF8.GetBytes($"{{\"logit_bias\": {{{bias}}}}}"), 100);
        // malformed JSON is left to the parser's own message
        JsonArrayLimit.Check("{\"prompt\": [1, 2,, 3, 4, 5, 6]}"u8, 3);
    }
}
