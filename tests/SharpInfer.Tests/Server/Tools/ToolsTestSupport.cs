using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace SharpInfer.Tests.Server.Tools;

/// <summary>A temporary directory, deleted at dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("sharpinfer-tools-").FullName;

    public string Write(string relative, string content)
    {
        var full = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        return full;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class ToolsHttp
{
    /// <summary>POST /tools {tool, params} and the status and body.</summary>
    public static async Task<(HttpStatusCode Status, JsonObject Body)> CallAsync(ServerHarness s, string tool, JsonObject parameters,
                                                                                 string? cwd = null, string? apiKey = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, "tools")
        { Content = ServerHarness.JsonContent(new JsonObject { ["tool"] = tool, ["params"] = parameters }) };
        if (cwd != null) req.Headers.Add("x-tool-cwd", cwd);
        if (apiKey != null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        using var res = await s.Http.SendAsync(req, TestContext.Current.CancellationToken);
        var text = await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return (res.StatusCode, (JsonObject)JsonNode.Parse(text)!);
    }

    /// <summary>A call that must succeed at the tool level: status 200 and no error field.</summary>
    public static async Task<JsonObject> OkAsync(ServerHarness s, string tool, JsonObject parameters, string? cwd = null)
    {
        var (status, body) = await CallAsync(s, tool, parameters, cwd);
        Assert.True(status == HttpStatusCode.OK && body["error"] is null, $"{tool}: {(int)status} {body.ToJsonString()}");
        return body;
    }

    /// <summary>A call that fails at the tool level: status 200 with an error string.</summary>
    public static async Task<string> ToolErrorAsync(ServerHarness s, string tool, JsonObject parameters)
    {
        var (status, body) = await CallAsync(s, tool, parameters);
        Assert.Equal(HttpStatusCode.OK, status);
        return body["error"]?.GetValue<string>() ?? throw new Xunit.Sdk.XunitException("no error in " + body.ToJsonString());
    }

    public static async Task<JsonArray> ListAsync(ServerHarness s)
    {
        using var res = await s.Http.GetAsync("tools", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        return (JsonArray)JsonNode.Parse(await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
    }

    public static string Text(JsonObject body) => body["plain_text_response"]!.GetValue<string>();

    public static JsonObject Params(string json) => (JsonObject)JsonNode.Parse(json)!;
}
