using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SharpInfer.Server;

namespace SharpInfer.Tests.Server;

/// <summary><c>AddSharpInferServer</c> + <c>app.MapSharpInfer()</c> in an application of its own: the OpenAI API
/// answers (errors as OpenAI error bodies, the API key checked) beside the host's own endpoints, which it leaves alone.</summary>
public class HostedServerTests
{
    [Fact]
    public async Task MapSharpInferServesTheApiInsideAnotherApplication()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = ServerHarness.DefaultOptions(ServerModels.Stories) with { ApiKey = "secret" };
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseTestServer();
        builder.Services.AddSharpInferServer(options);
        await using var app = builder.Build();
        app.MapGet("/hello", () => "host endpoint");
        app.MapGet("/v1/boom", (HttpContext _) => throw new InvalidOperationException("the host's own failure"));
        app.MapSharpInfer();
        await app.StartAsync(ct);
        await app.Services.GetRequiredService<ModelHost>().Loaded.WaitAsync(TimeSpan.FromMinutes(2), ct);
        using var http = app.GetTestClient();

        Assert.Equal("host endpoint", await http.GetStringAsync("/hello", ct));
        var body = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hello" }),
            ["max_tokens"] = 4,
            ["temperature"] = 0,
        };
        using (var unauthorized = await http.PostAsync("/v1/chat/completions", Json(body), ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.StatusCode);
            Assert.Equal("invalid_api_key", JsonNode.Parse(await unauthorized.Content.ReadAsStringAsync(ct))!["error"]!["code"]!.GetValue<string>());
        }
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "secret");
        using (var ok = await http.PostAsync("/v1/chat/completions", Json(body), ct))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            var reply = JsonNode.Parse(await ok.Content.ReadAsStringAsync(ct))!;
            Assert.Equal(4, reply["usage"]!["completion_tokens"]!.GetValue<int>());
            Assert.False(string.IsNullOrEmpty(reply["choices"]![0]!["message"]!["content"]!.GetValue<string>()));
        }
        using (var bad = await http.PostAsync("/v1/chat/completions", Json(new JsonObject { ["max_tokens"] = 4 }), ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Equal("messages", JsonNode.Parse(await bad.Content.ReadAsStringAsync(ct))!["error"]!["param"]!.GetValue<string>());
        }
        // the host's own endpoints keep the host's error handling (no OpenAI error body from SharpInfer)
        await Assert.ThrowsAsync<InvalidOperationException>(() => http.GetAsync("/v1/boom", ct));
        await app.StopAsync(ct);
    }

    private static StringContent Json(JsonNode body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");
}
