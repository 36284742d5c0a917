using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace SharpInfer.Tests.Server.Tools;

/// <summary>/cors-proxy behind --ui-mcp-proxy: 403 without it; with it GET and POST reach the target with the body and
/// only the x-llama-server-proxy-header-* headers, the target's status and body come back (204 without a body), and a
/// bad URL is a 400, an unreachable target a 502.</summary>
public class CorsProxyTests
{
    /// <summary>A small HTTP server on a free loopback port: /echo answers the method, body and headers it got;
    /// /empty answers 204; /teapot answers 418.</summary>
    private static async Task<WebApplication> StartTargetAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.Map("/echo", async ctx =>
        {
            using var reader = new StreamReader(ctx.Request.Body);
            var body = await reader.ReadToEndAsync();
            var headers = string.Join("\n", ctx.Request.Headers.Select(h => h.Key.ToLowerInvariant() + "=" + h.Value));
            ctx.Response.ContentType = "text/plain";
            await ctx.Response.WriteAsync($"{ctx.Request.Method}\n{body}\n{headers}");
        });
        app.MapPost("/empty", ctx =>
        {
            ctx.Response.StatusCode = StatusCodes.Status204NoContent;
            return Task.CompletedTask;
        });
        app.MapGet("/teapot", async ctx =>
        {
            ctx.Response.StatusCode = 418;
            await ctx.Response.WriteAsync("short and stout");
        });
        await app.StartAsync(TestContext.Current.CancellationToken);
        return app;
    }

    private static Task<ServerHarness> StartProxy() => ServerHarness.StartAsync(configure: o => o with { UiMcpProxy = true });

    private static string Url(WebApplication target, string path) => Uri.EscapeDataString(target.Urls.First() + path);

    [Fact]
    public async Task ForwardsGetAndPostWithOnlyTheExplicitProxyHeaders()
    {
        await using var target = await StartTargetAsync();
        await using var s = await StartProxy();
        using var req = new HttpRequestMessage(HttpMethod.Post, "cors-proxy?url=" + Url(target, "/echo"))
        { Content = new StringContent("{\"jsonrpc\": \"2.0\"}", Encoding.UTF8, "application/json") };
        req.Headers.Add("Authorization", "Bearer mine");
        req.Headers.Add("Cookie", "session=secret");
        req.Headers.Add("x-llama-server-proxy-header-authorization", "Bearer theirs");
        req.Headers.Add("x-llama-server-proxy-header-mcp-session-id", "abc");
        using var res = await s.Http.SendAsync(req, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var text = await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        var lines = text.Split('\n');
        Assert.Equal("POST", lines[0]);
        Assert.Equal("{\"jsonrpc\": \"2.0\"}", lines[1]);
        Assert.Contains("authorization=Bearer theirs", lines);
        Assert.Contains("mcp-session-id=abc", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("cookie=", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("mine", StringComparison.Ordinal));
        Assert.StartsWith("application/json", lines.Single(l => l.StartsWith("content-type=", StringComparison.Ordinal))["content-type=".Length..]);

        using var get = await s.Http.GetAsync("cors-proxy?url=" + Url(target, "/echo"), TestContext.Current.CancellationToken);
        Assert.StartsWith("GET\n", await get.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task TheTargetsStatusComesBackAndA204HasNoBody()
    {
        await using var target = await StartTargetAsync();
        await using var s = await StartProxy();
        using var empty = await s.Http.PostAsync("cors-proxy?url=" + Url(target, "/empty"), new StringContent("{}"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NoContent, empty.StatusCode);
        Assert.Empty(await empty.Content.ReadAsByteArrayAsync(TestContext.Current.CancellationToken));
        using var teapot = await s.Http.GetAsync("cors-proxy?url=" + Url(target, "/teapot"), TestContext.Current.CancellationToken);
        Assert.Equal((HttpStatusCode)418, teapot.StatusCode);
        Assert.Equal("short and stout", await teapot.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData("", HttpStatusCode.BadRequest)]
    [InlineData("not a url", HttpStatusCode.BadRequest)]
    [InlineData("ftp://127.0.0.1/x", HttpStatusCode.BadRequest)]
    [InlineData("http://user:pass@127.0.0.1/x", HttpStatusCode.BadRequest)]
    [InlineData("http://127.0.0.1:1/", HttpStatusCode.BadGateway)]
    public async Task BadOrUnreachableTargetsAreClearErrors(string url, HttpStatusCode expected)
    {
        await using var s = await StartProxy();
        using var res = await s.Http.GetAsync("cors-proxy?url=" + Uri.EscapeDataString(url), TestContext.Current.CancellationToken);
        Assert.Equal(expected, res.StatusCode);
        var body = await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Contains("\"error\"", body);
    }
}
