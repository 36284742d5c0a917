using OpenTelemetry.Exporter;
using SharpInfer.Cli;

namespace SharpInfer.Tests.Cli;

/// <summary><c>serve --otlp-endpoint / --otlp-protocol</c>: the flags win over <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> /
/// <c>OTEL_EXPORTER_OTLP_PROTOCOL</c>, which are used without them; grpc by default (the SDK's); no endpoint = off;
/// anything else is a one-line error.</summary>
public class OtlpSettingsTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void FlagsWinOverTheEnvironmentWhichIsUsedWithoutThem()
    {
        Assert.Null(OtlpSettings.Resolve(null, null, Env()));
        Assert.Null(OtlpSettings.Resolve(null, "http/protobuf", Env()));

        var flag = OtlpSettings.Resolve("http://collector:4318", "http/protobuf",
                                        Env(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:4317"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")))!;
        Assert.Equal(new Uri("http://collector:4318"), flag.Endpoint);
        Assert.Equal(OtlpExportProtocol.HttpProtobuf, flag.Protocol);

        var env = OtlpSettings.Resolve(null, null, Env(("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel.example:4318"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")))!;
        Assert.Equal(new Uri("https://otel.example:4318"), env.Endpoint);
        Assert.Equal("http/protobuf", env.ProtocolName);

        var byDefault = OtlpSettings.Resolve("http://localhost:4317", null, Env())!;
        Assert.Equal(OtlpExportProtocol.Grpc, byDefault.Protocol);
        Assert.Equal("grpc", byDefault.ProtocolName);
    }

    [Theory]
    [InlineData("localhost:4317", null, "--otlp-endpoint")]
    [InlineData("ftp://collector", null, "--otlp-endpoint")]
    [InlineData("http://collector:4317", "http/json", "--otlp-protocol")]
    public void BadValuesAreErrorsNamingTheFlag(string endpoint, string? protocol, string flag)
    {
        var e = Assert.Throws<InvalidRequestException>(() => OtlpSettings.Resolve(endpoint, protocol, Env()));
        Assert.StartsWith(flag, e.Message);
    }

    [Fact]
    public void ABadEnvironmentValueNamesTheVariable()
    {
        var e = Assert.Throws<InvalidRequestException>(() => OtlpSettings.Resolve(null, null, Env(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"))));
        Assert.Contains("OTEL_EXPORTER_OTLP_PROTOCOL", e.Message);
    }

    [Fact]
    public void ServeRejectsABadEndpointBeforeListening()
    {
        var r = CliHarness.Run(["serve", "-m", TestPaths.Stories260K, "--port", "0", "--otlp-endpoint", "not a url"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: --otlp-endpoint must be an absolute http:// or https:// URL", r.Stderr);
        Assert.DoesNotContain("listening on", r.Stdout);
    }
}
