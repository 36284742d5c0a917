using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace SharpInfer.Server.Api;

/// <summary>
/// What a browser gets at <c>/</c>, as llama-server serves its web UI there: a small chat page of our own
/// (<c>WebUi/index.html</c>, streaming from <c>/v1/chat/completions</c>) with the files an installed web app
/// revalidates (<c>/sw.js</c>, <c>/manifest.webmanifest</c>, <c>/_app/version.json</c>). None needs the API key
/// (the page asks for nothing by itself). <c>--no-ui</c> turns them off (404). On the <c>--ollama-port</c> listener,
/// <c>/</c> is Ollama's liveness answer instead, <c>Ollama is running</c>, which Ollama's clients probe.
/// </summary>
internal static class WebUiEndpoints
{
    private static readonly (string Path, string Resource, string ContentType)[] Assets =
    [
        ("/sw.js", "sw.js", "text/javascript; charset=utf-8"),
        ("/manifest.webmanifest", "manifest.webmanifest", "application/manifest+json"),
    ];

    public static void Map(IEndpointRouteBuilder app, ModelHost host)
    {
        var server = app.ServiceProvider.GetService<IServer>();
        app.MapMethods("/", ["GET", "HEAD"], ctx =>
        {
            if (IsOllamaListener(ctx, host, server))
            {
                ctx.Response.ContentType = "text/plain; charset=utf-8";
                return HttpMethods.IsHead(ctx.Request.Method) ? Task.CompletedTask : ctx.Response.WriteAsync("Ollama is running", ctx.RequestAborted);
            }
            return ServeAsync(ctx, host, "index.html", "text/html; charset=utf-8");
        });
        app.MapGet("/index.html", ctx => ServeAsync(ctx, host, "index.html", "text/html; charset=utf-8"));
        foreach (var (path, resource, type) in Assets) app.MapGet(path, ctx => ServeAsync(ctx, host, resource, type));
        app.MapGet("/_app/version.json", ctx =>
        {
            if (!host.Options.WebUi) return NotFound(ctx);
            ctx.Response.Headers.CacheControl = "no-cache";
            return JsonResponse.WriteAsync(ctx, w =>
            {
                w.WriteStartObject();
                w.WriteString("version", Version);
                w.WriteEndObject();
            });
        });
    }

    private static string Version => typeof(WebUiEndpoints).Assembly.GetName().Version?.ToString() ?? "0";

    private static async Task ServeAsync(HttpContext ctx, ModelHost host, string resource, string contentType)
    {
        if (!host.Options.WebUi)
        {
            await NotFound(ctx).ConfigureAwait(false);
            return;
        }
        var bytes = Read(resource);
        ctx.Response.ContentType = contentType;
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.ContentLength = bytes.Length;
        if (!HttpMethods.IsHead(ctx.Request.Method)) await ctx.Response.Body.WriteAsync(bytes, ctx.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>With --no-ui the routes answer as unknown ones do (the status-code page writes the error body).</summary>
    private static Task NotFound(HttpContext ctx)
    {
        ctx.Response.StatusCode = StatusCodes.Status404NotFound;
        return Task.CompletedTask;
    }

    private static readonly Dictionary<string, byte[]> Cache = [];

    private static byte[] Read(string name)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(name, out var bytes)) return bytes;
            using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("webui/" + name)
                               ?? throw new InvalidOperationException($"the web UI file {name} is not embedded");
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            return Cache[name] = copy.ToArray();
        }
    }

    /// <summary>Whether the request came in on the <c>--ollama-port</c> listener (bound second, see
    /// <see cref="ServerOptions.ListenUrls"/>; a port of 0 is looked up among the server's bound addresses).</summary>
    private static bool IsOllamaListener(HttpContext ctx, ModelHost host, IServer? server)
    {
        if (host.Options.OllamaPort is not { } configured) return false;
        int port = configured;
        if (port == 0)
        {
            var addresses = server?.Features.Get<IServerAddressesFeature>()?.Addresses.ToArray() ?? [];
            if (addresses.Length < 2 || !Uri.TryCreate(addresses[1], UriKind.Absolute, out var uri)) return false;
            port = uri.Port;
        }
        return ctx.Connection.LocalPort == port;
    }
}
