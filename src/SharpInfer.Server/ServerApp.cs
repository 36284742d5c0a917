using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharpInfer.Server.Api;
using SharpInfer.Server.Tools;

namespace SharpInfer.Server;

/// <summary>
/// Builds the OpenAI-compatible HTTP server: Kestrel on <see cref="ServerOptions.ListenUrl"/>, minimal-API endpoints,
/// OpenAI-shaped errors for everything (including unknown routes and wrong methods; Anthropic-shaped under /v1/messages),
/// bearer-key auth (or x-api-key), background
/// model loading once the server listens, and graceful shutdown on SIGTERM/Ctrl-C.
/// </summary>
public static class ServerApp
{
    /// <summary>Creates the application (not started). <paramref name="configure"/> can adjust the builder before it
    /// is built (tests swap in TestServer or change logging).</summary>
    internal static WebApplication Build(ServerOptions options, Action<WebApplicationBuilder>? configure = null)
    {
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ContentRootPath = AppContext.BaseDirectory,
            ApplicationName = typeof(ServerApp).Assembly.GetName().Name,
        });
        // no appsettings.json or environment overrides (and no file watchers): the options are the configuration
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection();
        builder.WebHost.UseKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
        });
        builder.WebHost.UseUrls(options.ListenUrls);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        // start-up failures (port in use) are reported by the caller in one line, not as a logged stack trace
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.Critical);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        // Kestrel's own drain must outlast the engine's grace period, which ends in-flight requests itself.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownTimeout + TimeSpan.FromSeconds(5));
        builder.Services.AddSharpInferServer(options);
        configure?.Invoke(builder);

        var app = builder.Build();
        var log = app.Services.GetRequiredService<ILogger<ModelHost>>();

        var cors = CorsPolicy.Create(options.EffectiveCorsOrigins);
        if (cors is not null) app.Use((ctx, next) => cors.HandleAsync(ctx, next));
        app.Use((ctx, next) => HandleErrors(ctx, next, log));
        app.UseStatusCodePages(ctx => StatusCodePage(ctx.HttpContext));
        app.Use((ctx, next) => Authorize(ctx, next, options.ApiKey));
        app.MapSharpInfer();
        return app;
    }

    /// <summary>Registers the server's model host (loaded in the background once the application starts, stopped
    /// gracefully with it) for <see cref="MapSharpInfer"/>, so any ASP.NET Core application can host the API.</summary>
    public static IServiceCollection AddSharpInferServer(this IServiceCollection services, ServerOptions options)
    {
        options.Validate();
        services.AddSingleton(options);
        services.AddSingleton<ModelHost>();
        services.AddSingleton<ResponseStore>();
        services.AddHostedService<ModelHostService>();
        services.AddSingleton(sp =>
        {
            var log = sp.GetRequiredService<ILogger<ToolRegistry>>();
            var mcp = McpManager.LoadConfigs(options.McpServersConfig, options.McpServersJson, m => log.LogWarning("{Message}", m));
            return ToolRegistry.Create(options.Tools, mcp, log);
        });
        return services;
    }

    /// <summary>Maps the OpenAI-compatible endpoints (/v1/chat/completions, /v1/completions, /v1/responses,
    /// /v1/messages, /v1/embeddings, /v1/rerank, /v1/models, /health, /metrics, /tokenize, /detokenize, Ollama's /api/*, and llama-server's /tools and /cors-proxy) into an application that called <see cref="AddSharpInferServer"/>. Each
    /// answers errors with OpenAI error bodies and checks <see cref="ServerOptions.ApiKey"/> itself, without middleware
    /// that would reach the host application's other endpoints. Returns the group, for the host's own conventions.</summary>
    public static RouteGroupBuilder MapSharpInfer(this IEndpointRouteBuilder endpoints)
    {
        var services = endpoints.ServiceProvider;
        var host = services.GetRequiredService<ModelHost>();
        var log = services.GetRequiredService<ILogger<ModelHost>>();
        var lifetime = services.GetRequiredService<IHostApplicationLifetime>();
        lifetime.ApplicationStarted.Register(host.StartLoading);
        lifetime.ApplicationStopping.Register(host.BeginShutdown);
        var app = endpoints.MapGroup("");
        ((IEndpointConventionBuilder)app).Add(b =>
        {
            if (b.RequestDelegate is not { } inner) return;
            b.RequestDelegate = async ctx =>
            {
                // counted for --sleep-idle-seconds: the server sleeps only while no request is in flight
                host.EnterRequest();
                try
                {
                    await HandleErrors(ctx, () => Authorize(ctx, () => inner(ctx), host.Options.ApiKey), log).ConfigureAwait(false);
                }
                finally
                {
                    host.ExitRequest();
                }
            };
        });

        app.MapGet("/health", ctx => InfoEndpoints.HealthAsync(ctx, host));
        app.MapGet("/metrics", ctx => InfoEndpoints.MetricsAsync(ctx, host));
        app.MapGet("/v1/models", ctx => InfoEndpoints.ModelsAsync(ctx, host));
        app.MapPost("/v1/chat/completions", ctx => GenerationEndpoints.ChatAsync(ctx, host, log));
        app.MapPost("/v1/completions", ctx => GenerationEndpoints.CompletionsAsync(ctx, host, log));
        var responses = services.GetRequiredService<ResponseStore>();
        app.MapPost("/v1/responses", ctx => ResponsesEndpoints.CreateAsync(ctx, host, responses, log));
        // plain RequestDelegates reading the route value: a lambda with parameters would need the reflection-based
        // request delegate factory, which native AOT cannot use
        app.MapGet("/v1/responses/{id}", ctx => ResponsesEndpoints.GetAsync(ctx, responses, RouteId(ctx)));
        app.MapDelete("/v1/responses/{id}", ctx => ResponsesEndpoints.DeleteAsync(ctx, responses, RouteId(ctx)));
        app.MapPost("/v1/messages", ctx => AnthropicEndpoints.MessagesAsync(ctx, host, log));
        app.MapPost("/v1/messages/count_tokens", ctx => AnthropicEndpoints.CountTokensAsync(ctx, host));
        app.MapPost("/tokenize", ctx => InfoEndpoints.TokenizeAsync(ctx, host));
        app.MapPost("/detokenize", ctx => InfoEndpoints.DetokenizeAsync(ctx, host));
        EmbeddingEndpoints.Map(app, host);
        OllamaEndpoints.Map(app, host, log);
        app.MapPost("/responses", ctx => ResponsesEndpoints.CreateAsync(ctx, host, responses, log));
        LlamaServerEndpoints.Map(app, host, log);
        WebUiEndpoints.Map(app, host);
        // resolved here, while the application is built: a bad --tools name or MCP configuration stops the start
        var tools = services.GetRequiredService<ToolRegistry>();
        lifetime.ApplicationStopping.Register(() => tools.Mcp?.Shutdown());
        ToolEndpoints.Map(app, tools, lifetime);
        CorsProxy.Map(app, host.Options.UiMcpProxy);
        return app;
    }

    private static async Task HandleErrors(HttpContext ctx, Func<Task> next, ILogger log)
    {
        try
        {
            await next().ConfigureAwait(false);
        }
        catch (Exception e) when (ctx.RequestAborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // the client went away
        }
        catch (Exception e)
        {
            var error = ApiErrors.Map(e);
            if (error.Status >= 500 && e is not ApiException) log.LogError(e, "{Method} {Path} failed", ctx.Request.Method, ctx.Request.Path);
            if (ctx.Response.HasStarted)
            {
                ctx.Abort();
                return;
            }
            ctx.Response.Clear();
            await ApiErrors.WriteAsync(ctx, error).ConfigureAwait(false);
        }
    }

    /// <summary>Unknown routes (404) and wrong methods (405) answer with OpenAI error bodies too.</summary>
    private static Task StatusCodePage(HttpContext ctx)
    {
        int status = ctx.Response.StatusCode;
        var error = status switch
        {
            404 => new ApiException(404, $"Not found: {ctx.Request.Method} {ctx.Request.Path}", ApiErrorTypes.NotFound, null, "not_found"),
            405 => new ApiException(405, $"Method {ctx.Request.Method} is not allowed on {ctx.Request.Path}", ApiErrorTypes.InvalidRequest, null, "method_not_allowed"),
            _ => new ApiException(status, ReasonPhrases.GetReasonPhrase(status), status >= 500 ? ApiErrorTypes.Server : ApiErrorTypes.InvalidRequest),
        };
        return ApiErrors.WriteAsync(ctx, error);
    }

    private static string RouteId(HttpContext ctx) => (string)ctx.Request.RouteValues["id"]!;

    private static bool NeedsKey(PathString path) =>
        path.StartsWithSegments("/v1") || path.StartsWithSegments("/tokenize") || path.StartsWithSegments("/detokenize")
        || path.StartsWithSegments("/embedding") || path.StartsWithSegments("/embeddings") || path.StartsWithSegments("/rerank")
        || path.StartsWithSegments("/api")
        || LlamaServerErrors.Applies(path) || path.StartsWithSegments("/chat") || path.StartsWithSegments("/responses");

    private static Task Authorize(HttpContext ctx, Func<Task> next, string? apiKey)
    {
        if (apiKey is null || !NeedsKey(ctx.Request.Path)) return next();
        string header = ctx.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        bool ok = header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)
                  && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()), Encoding.UTF8.GetBytes(apiKey));
        // Anthropic's clients send the key as x-api-key
        string xApiKey = ctx.Request.Headers["x-api-key"].ToString();
        ok |= xApiKey.Length > 0 && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(xApiKey.Trim()), Encoding.UTF8.GetBytes(apiKey));
        if (ok) return next();
        if (header.Length == 0) header = xApiKey;
        ctx.Response.Headers.WWWAuthenticate = "Bearer";
        return ApiErrors.WriteAsync(ctx, new ApiException(401,
            header.Length == 0 ? "You didn't provide an API key. Provide it in the Authorization header (Authorization: Bearer YOUR_KEY) or in x-api-key."
                               : "Incorrect API key provided.",
            ApiErrorTypes.Authentication, null, "invalid_api_key"));
    }
}

/// <summary>Waits, at host shutdown, for the engine to finish or abort in-flight requests, then releases it.</summary>
internal sealed class ModelHostService(ModelHost host) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => host.StopAsync();
}
