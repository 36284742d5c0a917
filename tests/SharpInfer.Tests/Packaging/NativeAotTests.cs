using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using SharpInfer.Tests.Server;

namespace SharpInfer.Tests.Packaging;

/// <summary>
/// The native AOT executable: <c>dotnet publish src/SharpInfer.Cli -r linux-x64 -p:PublishAot=true</c> (about 2–3.5
/// minutes on 2 cores, so the output is cached under <c>.cache/aot/</c> keyed by a hash of the sources and build
/// files: a rerun on unchanged sources costs nothing), then <c>sharpinfer serve</c> from that one file answers a
/// streamed chat request with the JIT server's greedy text for the same request.
/// </summary>
// one at a time: both run dotnet pack/publish over the same src/*/obj folders (a RID-specific restore rewrites them)
[Collection("dotnet pack and publish")]
public class NativeAotTests
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(10);

    [Fact]
    [Trait("Category", "Large")]
    public async Task TheAotExecutableServesAStreamedChatLikeTheJitServer()
    {
        var ct = TestContext.Current.CancellationToken;
        string exe = await PublishOnceAsync(ct);
        var request = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Tell me a story about a dog." }),
            ["stream"] = true,
            ["max_tokens"] = 24,
            ["temperature"] = 0,
        };

        // the JIT server, in process, with the harness's engine settings (F32 KV cache, one thread) …
        string jitText;
        await using (var jit = await ServerHarness.StartAsync(ServerModels.Stories))
        {
            using var response = await jit.PostStreamAsync("/v1/chat/completions", request, ct);
            jitText = await StreamedTextAsync(response, ct);
        }
        Assert.True(jitText.Length > 10, jitText);

        // … and the AOT executable with the same settings
        using var server = Process.Start(ChildProcess.StartInfo(exe, TestPaths.RepoRoot,
            ["serve", "-m", TestPaths.Stories260K, "--port", "0", "-t", "1", "--cache-type", "f32", "--max-num-batched-tokens", "256", "--max-num-seqs", "8"]))!;
        try
        {
            var stderr = server.StandardError.ReadToEndAsync(ct);
            string? address = null;
            using (var guard = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                guard.CancelAfter(TimeSpan.FromMinutes(1));
                // serve prints "ready: http://127.0.0.1:PORT/v1" once the model is loaded
                while (await server.StandardOutput.ReadLineAsync(guard.Token) is { } line)
                    if (line.StartsWith("ready: ", StringComparison.Ordinal))
                    {
                        address = line["ready: ".Length..].Trim();
                        break;
                    }
            }
            Assert.True(address != null, "the AOT server exited before it was ready: " + (server.HasExited ? await stderr : ""));
            _ = server.StandardOutput.ReadToEndAsync(ct);   // keep draining its log
            using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
            using var message = new HttpRequestMessage(HttpMethod.Post, address + "/chat/completions")
            {
                Content = new StringContent(request.ToJsonString(), Encoding.UTF8, "application/json"),
            };
            using var aot = await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, ct);
            Assert.Equal(new MediaTypeHeaderValue("text/event-stream").MediaType, aot.Content.Headers.ContentType?.MediaType);
            Assert.Equal(jitText, await StreamedTextAsync(aot, ct));
        }
        finally
        {
            if (!server.HasExited) server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync(CancellationToken.None);
        }
    }

    /// <summary>The content deltas of a chat completion stream, joined; the stream must end with <c>[DONE]</c>.</summary>
    private static async Task<string> StreamedTextAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var (chunks, done) = await ServerHarness.ReadAllSseAsync(response, ct);
        Assert.True(done, "the stream did not end with [DONE]");
        Assert.True(chunks.Count > 3, $"{chunks.Count} chunks");
        var text = new StringBuilder();
        foreach (var c in chunks)
            if (c["choices"] is JsonArray { Count: > 0 } choices && choices[0]!["delta"]?["content"] is JsonValue v)
                text.Append(v.GetValue<string>());
        Assert.Equal("length", (string?)chunks[^1]["choices"]![0]!["finish_reason"]);
        return text.ToString();
    }

    /// <summary>The published executable for the current sources: reused when <c>.cache/aot/KEY/</c> has it, else
    /// published into a scratch folder and moved there whole (a half-written output is never taken for a cached one).</summary>
    private static async Task<string> PublishOnceAsync(CancellationToken ct)
    {
        string dir = Path.Combine(TestPaths.Cache, "aot", SourceHash());
        string exe = Path.Combine(dir, "SharpInfer.Cli");
        if (File.Exists(exe)) return exe;
        string scratch = Path.Combine(TestPaths.RunScratch, "aot-" + Guid.NewGuid().ToString("N"));
        string log = await ChildProcess.RunAsync("dotnet", TestPaths.RepoRoot, HangGuard, ct,
            "publish", Path.Combine("src", "SharpInfer.Cli"), "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true", "-p:UseSharedCompilation=false", "-o", scratch);
        Assert.True(File.Exists(Path.Combine(scratch, "SharpInfer.Cli")), log);
        Directory.CreateDirectory(Path.GetDirectoryName(dir)!);
        try
        {
            Directory.Move(scratch, dir);
        }
        catch (IOException) when (File.Exists(exe))
        {
            // another run published the same sources meanwhile: theirs is as good
        }
        return exe;
    }

    /// <summary>SHA-256 over the path and bytes of every source and build file that goes into the executable.</summary>
    private static string SourceHash()
    {
        string root = TestPaths.RepoRoot;
        var files = Directory.EnumerateFiles(Path.Combine(root, "src"), "*", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"))
            .Concat(new[] { "Directory.Build.props", "Directory.Packages.props", "global.json" }.Select(f => Path.Combine(root, f)).Where(File.Exists))
            .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var f in files)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(f + "\n"));
            sha.AppendData(File.ReadAllBytes(Path.Combine(root, f)));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..16];
    }
}
