using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using SharpInfer.Engine;

namespace SharpInfer.Cli;

/// <summary>Where <c>serve</c> sends its telemetry over OTLP: a base URL (as <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>: for
/// http/protobuf the SDK appends <c>/v1/traces</c>, <c>/v1/metrics</c>, <c>/v1/logs</c>) and the protocol.</summary>
internal sealed record OtlpSettings(Uri Endpoint, OtlpExportProtocol Protocol)
{
    public const string EndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";
    public const string ProtocolVariable = "OTEL_EXPORTER_OTLP_PROTOCOL";

    /// <summary>The protocol's name as the OpenTelemetry specification writes it.</summary>
    public string ProtocolName => Protocol == OtlpExportProtocol.Grpc ? "grpc" : "http/protobuf";

    /// <summary>The settings from <c>--otlp-endpoint</c> / <c>--otlp-protocol</c>, each falling back to its OpenTelemetry
    /// environment variable; null when no endpoint is given either way (export off). The protocol defaults to the
    /// OpenTelemetry .NET SDK's (grpc).</summary>
    public static OtlpSettings? Resolve(string? endpoint, string? protocol, Func<string, string?> environment)
    {
        bool fromFlag = !string.IsNullOrEmpty(endpoint);
        endpoint = fromFlag ? endpoint : environment(EndpointVariable);
        if (string.IsNullOrWhiteSpace(endpoint)) return null;
        string source = fromFlag ? "--otlp-endpoint" : EndpointVariable;
        if (!Uri.TryCreate(endpoint.Trim(), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new InvalidRequestException($"{source} must be an absolute http:// or https:// URL, got '{endpoint}'", "otlp_endpoint");
        bool protocolFlag = !string.IsNullOrEmpty(protocol);
        protocol = protocolFlag ? protocol : environment(ProtocolVariable);
        var parsed = (protocol ?? "grpc").Trim().ToLowerInvariant() switch
        {
            "grpc" => OtlpExportProtocol.Grpc,
            "http/protobuf" => OtlpExportProtocol.HttpProtobuf,
            _ => throw new InvalidRequestException(
                $"{(protocolFlag ? "--otlp-protocol" : ProtocolVariable)} must be grpc or http/protobuf, got '{protocol}'", "otlp_protocol"),
        };
        return new OtlpSettings(uri, parsed);
    }
}

/// <summary>
/// OpenTelemetry for <c>serve</c>: the engine's request spans (<see cref="EngineTelemetry.SourceName"/>) under ASP.NET
/// Core's request spans, the engine's metrics (<see cref="EngineMetrics.MeterName"/>) and ASP.NET Core's, and the
/// server's logs, exported with the OpenTelemetry .NET SDK's OTLP exporter. The server's configuration ignores the
/// environment, so the <c>OTEL_*</c> variables (service name, resource attributes, headers, batch and export
/// intervals) are copied into it for the SDK to read.
/// </summary>
internal static class OtlpTelemetry
{
    public const string DefaultServiceName = "sharpinfer";

    public static void AddTo(WebApplicationBuilder builder, OtlpSettings settings)
    {
        var otel = new Dictionary<string, string?>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
            if (e.Key is string k && k.StartsWith("OTEL_", StringComparison.Ordinal)) otel[k] = e.Value as string;
        builder.Configuration.AddInMemoryCollection(otel);
        bool named = otel.ContainsKey("OTEL_SERVICE_NAME");
        string? version = typeof(OtlpTelemetry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r =>
            {
                if (!named) r.AddService(DefaultServiceName, serviceVersion: version);
            })
            .WithTracing(t => t.AddSource(EngineTelemetry.SourceName)
                               .AddAspNetCoreInstrumentation(o => o.Filter = ctx => !IsProbe(ctx.Request.Path)))
            .WithMetrics(m => m.AddMeter(EngineMetrics.MeterName).AddAspNetCoreInstrumentation())
            .UseOtlpExporter(settings.Protocol, settings.Endpoint);
    }

    /// <summary>Health checks and metric scrapes arrive every few seconds and would drown the request spans.</summary>
    private static bool IsProbe(PathString path) => path.StartsWithSegments("/health") || path.StartsWithSegments("/metrics");
}
