using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SharpInfer.Server.Api;

namespace SharpInfer.Server.Tools;

/// <summary>
/// llama-server's <c>/cors-proxy?url=...</c> (behind <c>--ui-mcp-proxy</c>, else 403): a browser UI reaches MCP
/// servers over HTTP that send no CORS headers through it. GET and POST are forwarded with the request body; of the
/// request's headers only <c>x-llama-server-proxy-header-NAME</c> ones go, as <c>NAME</c> (so the caller's
/// Authorization, cookies and API key never leak to the target). The target's status, content type and body come
/// back as they are (streamed, so a long event stream passes through); a 204 has no body. No redirects are followed.
/// </summary>
internal static class CorsProxy
{
    private const string ProxyHeaderPrefix = "x-llama-server-proxy-header-";
    // one client for the process: connections are pooled; llama-server gives a proxied call 10 minutes
    private static readonly HttpClient Client = new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        UseProxy = false,
        UseCookies = false,
        AutomaticDecompression = System.Net.DecompressionMethods.None,
    })
    { Timeout = TimeSpan.FromMinutes(10) };

    public static void Map(RouteGroupBuilder app, bool enabled)
    {
        app.MapGet("/cors-proxy", ctx => enabled ? ForwardAsync(ctx, HttpMethod.Get) : throw LlamaServerErrors.FeatureDisabled());
        app.MapPost("/cors-proxy", ctx => enabled ? ForwardAsync(ctx, HttpMethod.Post) : throw LlamaServerErrors.FeatureDisabled());
    }

    /// <summary>The target URL, checked: absolute http(s) with a host and no credentials.</summary>
    public static Uri Target(string? url)
    {
        if (string.IsNullOrEmpty(url)) throw ApiException.BadRequest("the \"url\" query parameter is required", "url");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
            throw ApiException.BadRequest("invalid target URL: missing host", "url");
        if (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            throw ApiException.BadRequest("unsupported URL scheme in target URL: " + uri.Scheme, "url");
        if (uri.UserInfo.Length > 0) throw ApiException.BadRequest("authentication in target URL is not supported", "url");
        return uri;
    }

    private static async Task ForwardAsync(HttpContext ctx, HttpMethod method)
    {
        var target = Target(ctx.Request.Query["url"].ToString());
        var host = ctx.RequestServices.GetService(typeof(ModelHost)) as ModelHost;
        long maxBytes = host?.Options.MaxRequestBodyBytes ?? 16L << 20;
        using var request = new HttpRequestMessage(method, target);
        if (method == HttpMethod.Post)
        {
            if (ctx.Request.ContentLength > maxBytes) throw new ApiException(StatusCodes.Status413PayloadTooLarge, "The request body is too large.", ApiErrorTypes.InvalidRequest, null, "request_too_large");
            using var body = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(body, ctx.RequestAborted).ConfigureAwait(false);
            request.Content = new ByteArrayContent(body.ToArray());
            if (ctx.Request.ContentType is { Length: > 0 } ct) request.Content.Headers.TryAddWithoutValidation("Content-Type", ct);
        }
        foreach (var (key, values) in ctx.Request.Headers)
        {
            if (!key.StartsWith(ProxyHeaderPrefix, StringComparison.OrdinalIgnoreCase) || key.Length == ProxyHeaderPrefix.Length) continue;
            string name = key[ProxyHeaderPrefix.Length..];
            string value = values.ToString();
            if (!request.Headers.TryAddWithoutValidation(name, value)) request.Content?.Headers.TryAddWithoutValidation(name, value);
        }
        HttpResponseMessage response;
        try
        {
            response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ctx.RequestAborted.IsCancellationRequested)
        {
            throw new ApiException(StatusCodes.Status502BadGateway, $"the proxied request to {target.Host} failed: {e.Message}", ApiErrorTypes.Server, "url");
        }
        using (response)
        {
            ctx.Response.StatusCode = (int)response.StatusCode;
            if (response.StatusCode == System.Net.HttpStatusCode.NoContent || response.StatusCode == System.Net.HttpStatusCode.NotModified) return;
            if (response.Content.Headers.ContentType is { } type) ctx.Response.ContentType = type.ToString();
            await using var stream = await response.Content.ReadAsStreamAsync(ctx.RequestAborted).ConfigureAwait(false);
            await stream.CopyToAsync(ctx.Response.Body, ctx.RequestAborted).ConfigureAwait(false);
        }
    }
}
