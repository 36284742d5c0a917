using Microsoft.AspNetCore.Http;

namespace SharpInfer.Server;

/// <summary>CORS for browser clients (--cors-origin). Preflights from an allowed origin are answered 204 before
/// authentication (browsers send them without credentials); every other response to an allowed origin, errors and
/// streams included, carries Access-Control-Allow-Origin. Headers are added when the response starts because the
/// error handler clears headers before writing an error body.</summary>
public sealed class CorsPolicy
{
    private const string AllowedMethods = "GET, POST, DELETE, OPTIONS";
    // x-api-key and the anthropic-* headers: Anthropic's browser clients send them (/v1/messages)
    private const string AllowedHeaders = "Authorization, Content-Type, x-api-key, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access";
    private const string MaxAgeSeconds = "600";

    private readonly HashSet<string> _origins;
    private readonly bool _any;

    private CorsPolicy(HashSet<string> origins, bool any)
    {
        _origins = origins;
        _any = any;
    }

    /// <summary>The policy for the configured origins (each may be a comma-separated list), or null when none: CORS off.</summary>
    public static CorsPolicy? Create(IEnumerable<string> configured)
    {
        var origins = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in configured)
            foreach (var part in entry.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                origins.Add(part.TrimEnd('/'));
        if (origins.Count == 0) return null;
        return new CorsPolicy(origins, origins.Contains("*"));
    }

    public bool Allows(string origin) => _any || _origins.Contains(origin);

    public async Task HandleAsync(HttpContext ctx, Func<Task> next)
    {
        string? origin = ctx.Request.Headers.Origin;
        if (string.IsNullOrEmpty(origin) || !Allows(origin))
        {
            await next().ConfigureAwait(false);
            return;
        }
        string allowOrigin = _any ? "*" : origin;
        var response = ctx.Response;
        if (HttpMethods.IsOptions(ctx.Request.Method) && ctx.Request.Headers.ContainsKey("Access-Control-Request-Method"))
        {
            response.StatusCode = StatusCodes.Status204NoContent;
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
        // a reflected origin makes the response depend on the request's Origin: caches must key on it
        if (!_any) response.Headers.Vary = "Origin";
    }
}
