using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace SharpInfer.Tests.Server;

/// <summary>Invalid UTF-8 bytes or a lone surrogate escape in any string of a request is a 400 naming the field
/// (code invalid_unicode), never a 500 from the first handler that reads the string.</summary>
public class InvalidUnicodeTests
{
    private const string Bad = "@BAD@";

    public static TheoryData<string, string, string> Fields() => new()
    {
        { "v1/completions", "{\"prompt\": \"a@BAD@b\", \"max_tokens\": 2}", "prompt" },
        { "v1/completions", "{\"prompt\": [\"ok\", \"@BAD@\"], \"max_tokens\": 2}", "prompt[1]" },
        { "v1/completions", "{\"prompt\": \"a\", \"stop\": [\"@BAD@\"], \"max_tokens\": 2}", "stop[0]" },
        { "v1/completions", "{\"prompt\": \"a\", \"model\": \"m@BAD@\", \"max_tokens\": 2}", "model" },
        { "v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"@BAD@\"}]}", "messages[0].content" },
        { "v1/chat/completions", "{\"messages\": [{\"role\": \"us@BAD@er\", \"content\": \"hi\"}]}", "messages[0].role" },
        { "v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"@BAD@\"}]}]}", "messages[0].content[0].text" },
        { "v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stop\": \"@BAD@\"}", "stop" },
        { "v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f@BAD@\"}}]}", "tools[0].function.name" },
        { "tokenize", "{\"content\": \"@BAD@\"}", "content" },
        { "detokenize", "{\"tokens\": [1], \"model\": \"@BAD@\"}", "model" },
    };

    [Theory]
    [MemberData(nameof(Fields))]
    public async Task InvalidUtf8BytesAre400NamingTheField(string path, string template, string param) =>
        await AssertInvalidUnicode(path, Encode(template, [0xFF, 0xFE]), param);

    [Theory]
    [MemberData(nameof(Fields))]
    public async Task LoneSurrogateEscapesAre400NamingTheField(string path, string template, string param) =>
        await AssertInvalidUnicode(path, Encode(template, Encoding.ASCII.GetBytes("\\ud800")), param);

    [Fact]
    public async Task InvalidPropertyNameIs400()
    {
        var (status, error) = await SendAsync("v1/completions", Encode("{\"pr@BAD@\": \"a\", \"prompt\": \"a\"}", [0xC3, 0x28]));
        Assert.True(status == HttpStatusCode.BadRequest, $"got {(int)status}: {error.ToJsonString()}");
        Assert.Equal("invalid_unicode", error["code"]?.GetValue<string>());
    }

    private static byte[] Encode(string template, byte[] bad)
    {
        var parts = template.Split(Bad);
        var bytes = new List<byte>(Encoding.UTF8.GetBytes(parts[0]));
        for (int i = 1; i < parts.Length; i++)
        {
            bytes.AddRange(bad);
            bytes.AddRange(Encoding.UTF8.GetBytes(parts[i]));
        }
        return [.. bytes];
    }

    private static async Task AssertInvalidUnicode(string path, byte[] body, string param)
    {
        var (status, error) = await SendAsync(path, body);
        Assert.True(status == HttpStatusCode.BadRequest, $"{path}: expected 400, got {(int)status}: {error.ToJsonString()}");
        Assert.Equal("invalid_unicode", error["code"]?.GetValue<string>());
        Assert.Equal(param, error["param"]?.GetValue<string>());
        Assert.Equal("invalid_request_error", error["type"]?.GetValue<string>());
    }

    private static async Task<(HttpStatusCode Status, JsonObject Error)> SendAsync(string path, byte[] body)
    {
        await using var s = await ServerHarness.StartAsync();
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var res = await s.Http.PostAsync(path, content, TestContext.Current.CancellationToken);
        var text = await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        var error = JsonNode.Parse(text)?["error"] as JsonObject ?? new JsonObject { ["raw"] = text };
        return (res.StatusCode, error);
    }
}
