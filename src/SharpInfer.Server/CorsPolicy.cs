using Microsoft.AspNetCore.Http;

namespace SharpInfer.Server;

/// <summary>CORS for browser clients (--cors-origin). Preflights are answered 200 before authentication (browsers
/// send them without credentials), as llama-server answers them; only an allowed origin gets the Access-Control-*
/// headers. Every other response to an allowed origin, errors and streams included, carries
/// Access-Control-Allow-Origin. Headers are added when the response starts because the error handler clears headers
/// before writing an error body. "*" reflects the request's origin with Allow-Credentials (llama-server's answer: a
/// literal "*" would make browsers refuse credentialed requests); "localhost" allows every loopback origin
/// (localhost, 127.0.0.1, [::1], any scheme and port).</summary>
internal sealed class CorsPolicy
{
    private const string AllowedMethods = "GET, POST, DELETE, OPTIONS";
    // x-api-key and the anthropic-* headers: Anthropic's browser clients send them (/v1/messages)
    private const string AllowedHeaders = "Authorization, Content-Type, x-api-key, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access";
    private const string MaxAgeSeconds = "600";

    private readonly HashSet<string> _origins;
    private readonly bool _any;
    private readonly bool _loopback;

    private CorsPolicy(HashSet<string> origins, bool any, bool loopback)
    {
        _origins = origins;
        _any = any;
        _loopback = loopback;
    }

    /// <summary>The policy for the configured origins (each may be a comma-separated list), or null when none: CORS off.</summary>
    public static CorsPolicy? Create(IEnumerable<string> configured)
    {
        var origins = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in configured)
            foreach (var part in entry.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                origins.Add(part.TrimEnd('/'));
        if (origins.Count == 0) return null;
        return new CorsPolicy(origins, origins.Contains("*"), origins.Contains("localhost"));
    }

    public bool Allows(string origin) =>
        _any || _origins.Contains(origin)
        || (_loopback && Uri.TryCreate(origin, UriKind.Absolute, out var uri) && uri.IsLoopback);

    public async Task HandleAsync(HttpContext ctx, Func<Task> next)
    {
        string? origin = ctx.Request.Headers.Origin;
        var response = ctx.Response;
        bool preflight = HttpMethods.IsOptions(ctx.Request.Method) && ctx.Request.Headers.ContainsKey("Access-Control-Request-Method");
        if (string.IsNullOrEmpty(origin) || !Allows(origin))
        {
            // a refused origin's preflight is still a 200, without the headers that would let the browser go on
            if (preflight) response.StatusCode = StatusCodes.Status200OK;
            else await next().ConfigureAwait(false);
            return;
        }
        string allowOrigin = origin;
        if (preflight)
        {
            response.StatusCode = StatusCodes.Status200OK;
            SetOriginHeaders(response, allowOrigin);
            response.Headers["Access-Control-Allow-Methods"] = AllowedMethods;
            response.Headers["Access-Control-Allow-Headers"] = AllowedHeaders;
            response.Headers["Access-Control-Max-Age"] = MaxAgeSeconds;
            return;
        }
        response.OnStarting(() =>
        {
            SetOriginHeaders(response, allowOrigin);
            return Task.CompletedTask;
        });
        await next().ConfigureAwait(false);
    }

    private void SetOriginHeaders(HttpResponse response, string allowOrigin)
    {
        response.Headers.AccessControlAllowOrigin = allowOrigin;
        response.Headers.AccessControlAllowCredentials = "true";
        // a reflected origin makes the response depend on the request's Origin: caches must key on it
        response.Headers.Vary = "Origin";
    }
}
