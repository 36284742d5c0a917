using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace SharpInfer.Tests.Server;

/// <summary>
/// The npm <c>ollama</c> client (0.6.4, pinned by tests/clients/ollama-js/package-lock.json), unchanged, against the
/// server on a real socket: chat, a stream, <c>format</c> with a JSON schema, and tools. The script prints what the
/// client returned; each answer is checked here against the OpenAI routes and the schemas. Its packages are installed
/// with <c>npm ci</c> on first use (the npm registry is reachable wherever the tests run); without node on the PATH the
/// test is skipped, saying so.
/// </summary>
public class OllamaJsClientTests
{
    private static readonly string ClientDir = Path.Combine(TestPaths.RepoRoot, "tests", "clients", "ollama-js");
    private static readonly SemaphoreSlim InstallGate = new(1, 1);

    private static Task<(int Code, string Out, string Err)> RunAsync(string file, string[] args, TimeSpan limit) =>
        ChildProcess.RunToExitAsync(file, ClientDir, limit, TestContext.Current.CancellationToken, args);

    private static bool OnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Any(d => File.Exists(Path.Combine(d, name)));

    private static async Task EnsureInstalledAsync()
    {
        await InstallGate.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            if (File.Exists(Path.Combine(ClientDir, "node_modules", "ollama", "package.json"))) return;
            var (code, output, err) = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], TimeSpan.FromMinutes(5));
            Assert.True(code == 0, $"npm ci failed ({code}): {output}\n{err}");
        }
        finally
        {
            InstallGate.Release();
        }
    }

    private const string TripSchema = """{"type":"object","properties":{"city":{"type":"string","maxLength":12},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","days"],"additionalProperties":false}""";

    [Fact]
    public async Task NpmOllamaClientChatsStreamsFormatsAndCallsTools()
    {
        if (!OnPath("node") || !OnPath("npm")) Assert.Skip("node and npm are not on the PATH: the npm ollama client cannot run here");
        await EnsureInstalledAsync();
        await using var s = await ServerHarness.StartAsync(loopback: true);
        var request = new JsonObject
        {
            ["greedy"] = OllamaApiTests.Greedy(12),
            ["schema"] = JsonNode.Parse(TripSchema),
            ["toolFormat"] = OllamaApiTests.ToolCallFormat(),
            ["tools"] = OllamaApiTests.WeatherTool(),
        };
        var (code, stdout, stderr) = await RunAsync("node", ["client.mjs", s.BaseAddress.ToString().TrimEnd('/'), s.ModelId, request.ToJsonString()], TimeSpan.FromMinutes(5));
        Assert.True(code == 0, $"node client.mjs failed ({code}): {stderr}");
        var result = JsonNode.Parse(stdout)!;

        // chat: the greedy reply and counts of chat completions for the same conversation
        var expected = await s.PostOkAsync("v1/chat/completions", new JsonObject
        {
            ["messages"] = OllamaApiTests.Conversation("Once upon a time", null),
            ["max_tokens"] = 12,
            ["temperature"] = 0,
        });
        string expectedText = expected["choices"]![0]!["message"]!["content"]!.GetValue<string>();
        Assert.Equal(expectedText, result["chat"]!["content"]!.GetValue<string>());
        Assert.Equal(expected["usage"]!["prompt_tokens"]!.GetValue<int>(), result["chat"]!["prompt_eval_count"]!.GetValue<int>());
        Assert.Equal(expected["usage"]!["completion_tokens"]!.GetValue<int>(), result["chat"]!["eval_count"]!.GetValue<int>());
        Assert.Equal("length", result["chat"]!["done_reason"]!.GetValue<string>());

        // the stream: pieces that reassemble to the same reply, and a final part with the counts
        Assert.Equal(expectedText, result["stream"]!["content"]!.GetValue<string>());
        Assert.True(result["stream"]!["parts"]!.GetValue<int>() > 2);
        Assert.True(result["stream"]!["done"]!.GetValue<bool>());
        Assert.Equal(12, result["stream"]!["eval_count"]!.GetValue<int>());

        // format: the reply parses and validates against the schema
        string json = result["format"]!["content"]!.GetValue<string>();
        Assert.True(JsonSchema.FromText(TripSchema).Evaluate(JsonDocument.Parse(json).RootElement).IsValid, json);
        Assert.Equal("stop", result["format"]!["done_reason"]!.GetValue<string>());

        // tools: one call, its arguments an object valid against the tool's parameters
        var call = Assert.Single(result["tools"]!["tool_calls"]!.AsArray())!;
        Assert.Equal("get_weather", call["function"]!["name"]!.GetValue<string>());
        var args = Assert.IsType<JsonObject>(call["function"]!["arguments"]);
        Assert.True(JsonSchema.FromText(OllamaApiTests.WeatherParameters).Evaluate(JsonDocument.Parse(args.ToJsonString()).RootElement).IsValid, args.ToJsonString());

        // an unknown model: the client's ResponseError with Ollama's status and message
        Assert.Equal(404, result["error"]!["status_code"]!.GetValue<int>());
        Assert.Equal("model 'no-such-model' not found", result["error"]!["error"]!.GetValue<string>());
    }
}
