using System.Net;
using System.Text;
using SharpInfer.Server;

namespace SharpInfer.Tests.Server;

/// <summary>--cors-origin: preflights answered 200 (as llama-server) with the allowed methods and headers for allowed
/// origins only, Access-Control-Allow-Origin on normal and error responses for allowed origins only; off by
/// default; "*" reflects the origin with credentials; "localhost" allows loopback origins.</summary>
public class CorsTests
{
    private const string Allowed = "https://app.example";
    private const string Other = "https://evil.example";

    private static Task<ServerHarness> Start(params string[] origins) =>
        ServerHarness.StartAsync(configure: o => o with { CorsOrigins = origins, ApiKey = "k" });

    private static async Task<HttpResponseMessage> Preflight(ServerHarness s, string origin)
    {
        using var req = new HttpRequestMessage(HttpMethod.Options, "v1/chat/completions");
        req.Headers.Add("Origin", origin);
        req.Headers.Add("Access-Control-Request-Method", "POST");
        req.Headers.Add("Access-Control-Request-Headers", "authorization, content-type");
        return await s.Http.SendAsync(req, TestContext.Current.CancellationToken);
    }

    private static string? Header(HttpResponseMessage res, string name) =>
        res.Headers.TryGetValues(name, out var v) ? string.Join(",", v)
        : res.Content.Headers.TryGetValues(name, out var c) ? string.Join(",", c) : null;

    private static async Task<HttpResponseMessage> Tokenize(ServerHarness s, string origin, string? key)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, "tokenize")
        { Content = new StringContent("{\"content\": \"hi\"}", Encoding.UTF8, "application/json") };
        req.Headers.Add("Origin", origin);
        if (key != null) req.Headers.Add("Authorization", "Bearer " + key);
        return await s.Http.SendAsync(req, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task PreflightFromAllowedOriginIs200WithMethodsAndHeaders()
    {
        await using var s = await Start("https://other.example," + Allowed);
        using var res = await Preflight(s, Allowed);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal(Allowed, Header(res, "Access-Control-Allow-Origin"));
        Assert.Equal("true", Header(res, "Access-Control-Allow-Credentials"));
        Assert.Equal("GET, POST, DELETE, OPTIONS", Header(res, "Access-Control-Allow-Methods"));
        var headers = Header(res, "Access-Control-Allow-Headers") ?? "";
        Assert.Contains("Authorization", headers, StringComparison.Ordinal);
        Assert.Contains("Content-Type", headers, StringComparison.Ordinal);
        Assert.NotNull(Header(res, "Access-Control-Max-Age"));
    }

    [Fact]
    public async Task DisallowedOriginGetsNoCorsHeaders()
    {
        await using var s = await Start(Allowed);
        using var pre = await Preflight(s, Other);
        Assert.Equal(HttpStatusCode.OK, pre.StatusCode);
        Assert.Null(Header(pre, "Access-Control-Allow-Origin"));
        Assert.Null(Header(pre, "Access-Control-Allow-Methods"));
        using var res = await Tokenize(s, Other, "k");
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Null(Header(res, "Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task AllowedOriginSeesHeadersOnSuccessAndErrors()
    {
        await using var s = await Start(Allowed);
        using var ok = await Tokenize(s, Allowed, "k");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal(Allowed, Header(ok, "Access-Control-Allow-Origin"));
        using var unauthorized = await Tokenize(s, Allowed, null);
        Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.StatusCode);
        Assert.Equal(Allowed, Header(unauthorized, "Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task StarAllowsAnyOriginByReflectingIt()
    {
        await using var s = await Start("*");
        using var pre = await Preflight(s, Other);
        Assert.Equal(HttpStatusCode.OK, pre.StatusCode);
        Assert.Equal(Other, Header(pre, "Access-Control-Allow-Origin"));
        Assert.Equal("Origin", Header(pre, "Vary"));
        using var ok = await Tokenize(s, Other, "k");
        Assert.Equal(Other, Header(ok, "Access-Control-Allow-Origin"));
    }

    [Theory]
    [InlineData("http://localhost", true)]
    [InlineData("http://localhost:8080", true)]
    [InlineData("http://127.0.0.1:3000", true)]
    [InlineData("http://[::1]:3000", true)]
    [InlineData("http://localhost.evil.com", false)]
    [InlineData("http://notlocalhost", false)]
    [InlineData("http://web.mydomain.fr", false)]
    public async Task LocalhostAllowsLoopbackOriginsOnly(string origin, bool allowed)
    {
        await using var s = await Start("localhost");
        using var pre = await Preflight(s, origin);
        Assert.Equal(HttpStatusCode.OK, pre.StatusCode);
        Assert.Equal(allowed ? origin : null, Header(pre, "Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task OffByDefault()
    {
        await using var s = await Start();
        using var pre = await Preflight(s, Allowed);
        Assert.NotEqual(HttpStatusCode.OK, pre.StatusCode);
        Assert.Null(Header(pre, "Access-Control-Allow-Origin"));
        using var ok = await Tokenize(s, Allowed, "k");
        Assert.Null(Header(ok, "Access-Control-Allow-Origin"));
    }
}
