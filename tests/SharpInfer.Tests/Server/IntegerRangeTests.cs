using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace SharpInfer.Tests.Server;

/// <summary>Integers beyond a field's range are a 400 naming the field; none is saturated silently (2^63 used to be
/// read as long.MaxValue because it is exactly representable as the double (double)long.MaxValue).</summary>
public class IntegerRangeTests
{
    public static TheoryData<string, string, string> Fields() => new()
    {
        { "v1/completions", "{\"prompt\": \"a\", \"max_tokens\": 2, \"seed\": 9223372036854775808}", "seed" },
        { "v1/completions", "{\"prompt\": \"a\", \"max_tokens\": 2, \"seed\": -9223372036854775809.0e3}", "seed" },
        { "v1/completions", "{\"prompt\": [9223372036854775808], \"max_tokens\": 2}", "prompt" },
        { "v1/completions", "{\"prompt\": \"a\", \"max_tokens\": 1e30}", "max_tokens" },
        { "v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"seed\": 1e19}", "seed" },
        { "detokenize", "{\"tokens\": [9223372036854775808]}", "tokens" },
    };

    [Theory]
    [MemberData(nameof(Fields))]
    public async Task OutOfRangeIntegersAre400NamingTheField(string path, string body, string param)
    {
        await using var s = await ServerHarness.StartAsync();
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var res = await s.Http.PostAsync(path, content, TestContext.Current.CancellationToken);
        var text = await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(res.StatusCode == HttpStatusCode.BadRequest, $"{body}: expected 400, got {(int)res.StatusCode}: {text}");
        var error = JsonNode.Parse(text)?["error"] as JsonObject;
        Assert.NotNull(error);
        Assert.Equal(param, error["param"]?.GetValue<string>());
        Assert.DoesNotContain("9223372036854775807", error["message"]?.GetValue<string>() ?? "", StringComparison.Ordinal);
    }
}
