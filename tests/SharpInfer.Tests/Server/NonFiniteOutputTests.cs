using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Models;
using SharpInfer.Tests.Gguf;

namespace SharpInfer.Tests.Server;

/// <summary>
/// A model whose output weights hold NaN and infinities (stories260K with a few output rows poisoned) makes the
/// log-probs and logits non-finite. Every output format still answers normally with valid JSON: the CLI writes the
/// non-finite numbers as null (as llama.cpp does), the server as -9999 (as OpenAI does). <c>run --json --logprobs</c>
/// used to die with exit 134 from the JSON writer.
/// </summary>
public class NonFiniteOutputTests
{
    private static readonly Lazy<string> PoisonedPath = new(() =>
    {
        var patch = GgufPatch.From(TestPaths.Stories260K);
        string output = patch.Tensors.Any(t => t.Name == "output.weight") ? "output.weight" : "token_embd.weight";
        const int width = 64;
        // rows of frequent tokens: one all +Inf (its logit is NaN or ±Inf), one all NaN, one with a single -Inf
        for (int i = 0; i < width; i++)
        {
            patch.SetFloat(output, 13 * width + i, float.PositiveInfinity);
            patch.SetFloat(output, 29 * width + i, float.NaN);
        }
        patch.SetFloat(output, 30 * width, float.NegativeInfinity);
        return patch.Write(Path.Combine(TestPaths.RunScratch, "stories260K-nonfinite.gguf"));
    });

    private static readonly Lazy<Model> Poisoned = new(() => Model.Load(PoisonedPath.Value));

    private static JsonDocument ParseJson(string text, string what)
    {
        try { return JsonDocument.Parse(text); }
        catch (JsonException e) { throw new Xunit.Sdk.XunitException($"{what} is not valid JSON ({e.Message}): {text[..Math.Min(400, text.Length)]}"); }
    }

    /// <summary>True when the CLI's <c>top_logprobs</c> (lists of [id, log-prob] pairs) hold a null, i.e. a non-finite
    /// number reached its writer.</summary>
    private static bool HasNullLogprob(JsonNode? root) =>
        root?["top_logprobs"] is JsonArray tokens && tokens.Any(t => t is JsonArray pairs && pairs.Any(p => p is JsonArray pair && pair.Count == 2 && pair[1] is null));

    /// <summary>Every number of the tree (the server writes log-probs only as numbers), collected.</summary>
    private static IEnumerable<double> Numbers(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(p => Numbers(p.Value)),
        JsonArray a => a.SelectMany(Numbers),
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => [v.GetValue<double>()],
        _ => [],
    };

    /// <summary>The CLI as its own process: <c>run</c> and <c>bench</c> write to the console, and a crash of the JSON
    /// writer shows as the exit code (134) it had.</summary>
    private static async Task<(int Code, string Stdout, string Stderr)> CliAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "SharpInfer.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        limit.CancelAfter(TimeSpan.FromMinutes(5));   // hang guard only
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync(limit.Token);
        var stderr = p.StandardError.ReadToEndAsync(limit.Token);
        await p.WaitForExitAsync(limit.Token);
        return (p.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task RunJsonWithLogprobsWritesNullsAndSucceeds()
    {
        var (code, stdout, stderr) = await CliAsync("run", "-m", PoisonedPath.Value, "-t", "1", "-n", "6", "--temp", "0", "--json", "--logprobs", "3",
                                                    "-p", "Once upon a time");
        Assert.True(code == 0, $"exit {code}: {stderr}");
        Assert.DoesNotContain("Exception", stderr);
        using var doc = ParseJson(stdout, "run --json");
        Assert.True(HasNullLogprob(JsonNode.Parse(stdout)), "the poisoned rows should make some log-prob non-finite: " + stdout[..Math.Min(400, stdout.Length)]);
    }

    [Fact]
    public async Task RunPlainSucceeds()
    {
        var (code, stdout, stderr) = await CliAsync("run", "-m", PoisonedPath.Value, "-t", "1", "-n", "6", "-p", "Once upon a time");
        Assert.True(code == 0, $"exit {code}: {stderr}");
        Assert.DoesNotContain("Exception", stderr);
        Assert.StartsWith("Once upon a time", stdout);
        Assert.Contains("generation: 6 tokens", stderr);
    }

    [Fact]
    public async Task BenchJsonWritesValidJson()
    {
        var (code, stdout, stderr) = await CliAsync("bench", "-m", PoisonedPath.Value, "-t", "1", "-p", "8", "-n", "4", "-r", "1", "--json");
        Assert.True(code == 0, $"exit {code}: {stderr}");
        Assert.DoesNotContain("Exception", stderr);
        using var doc = ParseJson(stdout, "bench --json");
        Assert.Equal(JsonValueKind.Array, doc.RootElement.ValueKind);
        Assert.NotEqual(0, doc.RootElement.GetArrayLength());
    }

    public static TheoryData<string, bool> Endpoints => new()
    {
        { "v1/completions", false }, { "v1/completions", true }, { "v1/chat/completions", false }, { "v1/chat/completions", true },
    };

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task TheServerAnswersWithNullLogprobs(string path, bool stream)
    {
        await using var server = await ServerHarness.StartAsync(Poisoned.Value);
        var body = new JsonObject { ["max_tokens"] = 6, ["temperature"] = 0, ["stream"] = stream };
        if (path == "v1/completions")
        {
            body["prompt"] = "Once upon a time";
            body["logprobs"] = 3;
        }
        else
        {
            body["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Once upon a time" });
            body["logprobs"] = true;
            body["top_logprobs"] = 3;
        }
        JsonNode all;
        if (!stream)
        {
            var (status, json, _) = await server.PostAsync(path, body);
            Assert.True(status == HttpStatusCode.OK, $"{(int)status}: {json.ToJsonString()}");
            Assert.NotEqual("abort", json["choices"]?[0]?["finish_reason"]?.GetValue<string>());
            all = json;
        }
        else
        {
            using var response = await server.PostStreamAsync(path, body, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var (chunks, done) = await ServerHarness.ReadAllSseAsync(response, TestContext.Current.CancellationToken);
            Assert.True(done, "the stream ended without [DONE]");
            Assert.DoesNotContain(chunks, c => c["error"] is not null);
            all = new JsonArray([.. chunks.Select(c => (JsonNode?)c.DeepClone())]);
        }
        // the server follows OpenAI: a log-prob that is not finite is written as -9999 (JSON has no infinities)
        var numbers = Numbers(all).ToList();
        Assert.All(numbers, n => Assert.True(double.IsFinite(n)));
        Assert.True(numbers.Contains(-9999), "the poisoned rows should make some log-prob non-finite: " + all.ToJsonString()[..Math.Min(600, all.ToJsonString().Length)]);
    }
}
