using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Tests.Server;

namespace SharpInfer.Tests.Tracing;

/// <summary>
/// <c>sharpinfer serve --otlp-endpoint URL</c> (over http/protobuf, and over gRPC, the default) as its own process,
/// exporting to an in-process OTLP receiver: a chat completion's engine span arrives with the usage the response reported, under
/// ASP.NET Core's span of the HTTP request, with its queue / prefill / decode children, from the service
/// "sharpinfer"; the engine's metrics (its own and the GenAI conventions') arrive too. SIGTERM stops the server, which flushes what is buffered, so the
/// test waits on the exports arriving, never on a timer.
/// </summary>
public class OtlpExportTests
{
    [Theory]
    [InlineData("http/protobuf")]
    [InlineData(null)]   // the default: gRPC
    public async Task ServeExportsTheRequestSpanUnderTheHttpSpanAndTheMetrics(string? protocol)
    {
        // SIGTERM is how the server is told to stop (and flush) here
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        var cli = Path.Combine(AppContext.BaseDirectory, "SharpInfer.Cli.dll");
        Assert.True(File.Exists(cli), cli);
        await using var receiver = await OtlpReceiver.StartAsync(grpc: protocol == null);
        var psi = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { cli, "serve", "-m", TestPaths.Stories260K, "--port", "0", "-t", "1", "--max-model-len", "256",
                             "--kv-cache-memory", "16MiB", "--otlp-endpoint", receiver.BaseUrl },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (protocol != null) psi.ArgumentList.Add("--otlp-protocol=" + protocol);
        // the child must not pick up a collector configured around the test run
        foreach (var name in psi.Environment.Keys.Where(k => k.StartsWith("OTEL_", StringComparison.Ordinal)).ToArray()) psi.Environment.Remove(name);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        limit.CancelAfter(TimeSpan.FromMinutes(3));   // never hang on a server that does not stop
        var ct = limit.Token;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync(ct);
        var output = new StringBuilder();
        try
        {
            string? url = null;
            while (await p.StandardOutput.ReadLineAsync(ct) is { } line)
            {
                output.AppendLine(line);
                if (line.StartsWith("listening on ", StringComparison.Ordinal)) url = line["listening on ".Length..].Split(' ')[0];
                if (line.StartsWith("ready:", StringComparison.Ordinal)) break;
            }
            if (url == null) Assert.Fail(output + await stderr);
            Assert.Contains($"otlp                   {receiver.BaseUrl}/ ({protocol ?? "grpc"})", output.ToString());

            using var http = new HttpClient { BaseAddress = new Uri(url + "/") };
            var body = new JsonObject
            {
                ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Tell me a story." }),
                ["max_tokens"] = 5,
                ["temperature"] = 0,
            };
            using var res = await http.PostAsync("v1/chat/completions", ServerHarness.JsonContent(body), ct);
            var reply = JsonNode.Parse(await res.Content.ReadAsStringAsync(ct))!;
            Assert.True(res.IsSuccessStatusCode, reply.ToJsonString());
            string id = reply["id"]!.GetValue<string>();

            Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
            await p.WaitForExitAsync(ct);
            Assert.True(p.ExitCode == 0, output + await p.StandardOutput.ReadToEndAsync(ct) + await stderr);
            await receiver.WaitForAsync(r => r.Spans.Any(s => s.Attributes.GetValueOrDefault("gen_ai.response.id") as string == id)
                                             && r.HasMetric("sharpinfer.generation_tokens") && r.HasMetric("gen_ai.server.request.duration"),
                                       TimeSpan.FromSeconds(60), ct);

            var spans = receiver.Spans;
            var engine = Assert.Single(spans, s => s.Attributes.GetValueOrDefault("gen_ai.response.id") as string == id);
            Assert.Equal("chat stories260K", engine.Name);
            Assert.Equal(1, engine.Kind);   // SPAN_KIND_INTERNAL
            Assert.Equal("sharpinfer", engine.Resource["service.name"]);
            Assert.Equal("chat", engine.Attributes["gen_ai.operation.name"]);
            Assert.Equal(reply["usage"]!["prompt_tokens"]!.GetValue<long>(), engine.Attributes["gen_ai.usage.input_tokens"]);
            Assert.Equal(reply["usage"]!["completion_tokens"]!.GetValue<long>(), engine.Attributes["gen_ai.usage.output_tokens"]);
            Assert.Equal(5L, engine.Attributes["gen_ai.request.max_tokens"]);
            Assert.Equal(new object[] { reply["choices"]![0]!["finish_reason"]!.GetValue<string>() }, (object[])engine.Attributes["gen_ai.response.finish_reasons"]!);

            // its parent is ASP.NET Core's server span of the same HTTP request
            var server = Assert.Single(spans, s => s.SpanId == engine.ParentSpanId);
            Assert.Equal(engine.TraceId, server.TraceId);
            Assert.Equal(2, server.Kind);   // SPAN_KIND_SERVER
            Assert.Equal("/v1/chat/completions", server.Attributes["url.path"]);
            Assert.Equal(
                [EngineTelemetry.DecodeSpan, EngineTelemetry.PrefillSpan, EngineTelemetry.QueueSpan],
                spans.Where(s => s.ParentSpanId == engine.SpanId).Select(s => s.Name).Order());
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
    }
}
