using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SharpInfer.Tests.Server;

namespace SharpInfer.Tests.Sampling;

/// <summary>The server's structured-output fields, on the random-weight qwen3-tiny.</summary>
public class StructuredOutputApiTests
{
    private const string Schema = """{"type":"object","properties":{"n":{"type":"integer","minimum":0,"maximum":99},"s":{"enum":["a","b"]}},"required":["n","s"],"additionalProperties":false}""";

    public static TheoryData<string, string, string> Forms() => new()
    {
        { "v1/chat/completions", "response_format", """{"type":"json_schema","json_schema":{"name":"x","strict":true,"schema":""" + Schema + "}}" },
        { "v1/completions", "response_format", """{"type":"json_schema","json_schema":{"name":"x","schema":""" + Schema + "}}" },
        { "v1/chat/completions", "json_schema", Schema },
        { "v1/completions", "structured_outputs", """{"json":""" + Schema + "}" },
        { "v1/chat/completions", "grammar", JsonSerializer.Serialize("root ::= \"{\\\"n\\\": \" [1-9] \", \\\"s\\\": \\\"a\\\"}\"") },
    };

    private static JsonObject Body(string path) => path.Contains("chat")
        ? new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" }), ["max_tokens"] = 256, ["seed"] = 3 }
        : new JsonObject { ["prompt"] = "Hi", ["max_tokens"] = 256, ["seed"] = 3 };

    private static string Text(string path, JsonObject json) =>
        path.Contains("chat") ? json["choices"]![0]!["message"]!["content"]!.GetValue<string>() : json["choices"]![0]!["text"]!.GetValue<string>();

    [Theory]
    [MemberData(nameof(Forms))]
    public async Task JsonFormsGiveSchemaConformingObjects(string path, string field, string value)
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var body = Body(path);
        body[field] = JsonNode.Parse(value);
        var (status, json, _) = await s.PostAsync(path, body);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("stop", json["choices"]![0]!["finish_reason"]!.GetValue<string>());
        var obj = JsonNode.Parse(Text(path, json))!.AsObject();
        int n = obj["n"]!.GetValue<int>();
        Assert.InRange(n, 0, 99);
        Assert.Contains(obj["s"]!.GetValue<string>(), new[] { "a", "b" });
        Assert.Equal(2, obj.Count);
    }

    [Fact]
    public async Task JsonObjectRegexAndChoice()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var b1 = Body("v1/chat/completions");
        b1["response_format"] = new JsonObject { ["type"] = "json_object" };
        var (st1, j1, _) = await s.PostAsync("v1/chat/completions", b1);
        Assert.Equal(HttpStatusCode.OK, st1);
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(Text("v1/chat/completions", j1)).RootElement.ValueKind);

        var b2 = Body("v1/completions");
        b2["structured_outputs"] = new JsonObject { ["regex"] = "[A-Z]{2}-\\d{2,3}( ok)?" };
        var (st2, j2, _) = await s.PostAsync("v1/completions", b2);
        Assert.Equal(HttpStatusCode.OK, st2);
        Assert.Matches(new Regex("^[A-Z]{2}-\\d{2,3}( ok)?$"), Text("v1/completions", j2));

        var b3 = Body("v1/completions");
        b3["structured_outputs"] = new JsonObject { ["choice"] = new JsonArray("yes", "no", "say \"maybe\"") };
        var (st3, j3, _) = await s.PostAsync("v1/completions", b3);
        Assert.Equal(HttpStatusCode.OK, st3);
        Assert.Contains(Text("v1/completions", j3), new[] { "yes", "no", "say \"maybe\"" });
    }

    [Theory]
    [InlineData("grammar", "\"root ::= root \\\"a\\\" | \\\"b\\\"\"", "left-recursive")]
    [InlineData("grammar", "\"x ::= \\\"a\\\"\"", "root")]
    [InlineData("json_schema", "{\"type\":\"string\",\"format\":\"email\"}", "email")]
    [InlineData("response_format", "{\"type\":\"json_schema\"}", "json_schema")]
    [InlineData("response_format", "{\"type\":\"yaml\"}", "yaml")]
    [InlineData("structured_outputs", "{\"regex\":\"(?=x)\"}", "lookarounds")]
    public async Task InvalidConstraintsAre400(string field, string value, string message)
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var body = Body("v1/completions");
        body[field] = JsonNode.Parse(value);
        var (status, json, _) = await s.PostAsync("v1/completions", body);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(field, json["error"]!["param"]!.GetValue<string>());
        Assert.Contains(message, json["error"]!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task TwoConstraintsAtOnceAre400()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var body = Body("v1/completions");
        body["grammar"] = "root ::= \"a\"";
        body["json_schema"] = new JsonObject { ["type"] = "integer" };
        var (status, json, _) = await s.PostAsync("v1/completions", body);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("only one", json["error"]!["message"]!.GetValue<string>());
    }
}
