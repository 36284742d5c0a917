using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenAI;
using OpenAI.Chat;
using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Server;

namespace SharpInfer.Tests.Server;

/// <summary>Shared, read-only models for the server tests (loaded once per test process).</summary>
internal static class ServerModels
{
    private static readonly Lazy<Model> StoriesModel = new(() => Model.Load(TestPaths.Stories260K));
    private static readonly Lazy<Model> QwenModel = new(() => Model.Load(TestModels.Get("qwen3-tiny", "f32")));

    /// <summary>stories260K: llama, SentencePiece, no chat template (the Llama 2 fallback renders chats).</summary>
    public static Model Stories => StoriesModel.Value;
    /// <summary>Synthetic qwen3-tiny: byte-level BPE with Qwen3's chat template.</summary>
    public static Model Qwen => QwenModel.Value;
}

/// <summary>
/// The real server (<see cref="ServerApp.Build"/>) in-process: on TestServer (no sockets) or on Kestrel at
/// 127.0.0.1:0 (real TCP, real disconnects). Uses a shared loaded model; the engine is the server's own.
/// </summary>
internal sealed class ServerHarness : IAsyncDisposable
{
    public WebApplication App { get; }
    public HttpClient Http { get; }
    public Uri BaseAddress { get; }
    public ModelHost Host { get; }
    public ServerOptions Options { get; }
    public LlmEngine Engine => Host.Engine ?? throw new InvalidOperationException("the model is not loaded");
    public string ModelId => Host.ModelId;

    private ServerHarness(WebApplication app, HttpClient http, Uri baseAddress, ServerOptions options)
    {
        App = app;
        Http = http;
        BaseAddress = baseAddress;
        Host = app.Services.GetRequiredService<ModelHost>();
        Options = options;
    }

    public static ServerOptions DefaultOptions(Model model) => new()
    {
        ModelPath = model.Path,
        Host = "127.0.0.1",
        Port = 0,
        ShutdownTimeout = TimeSpan.FromSeconds(20),
        ModelLoader = _ => Task.FromResult(model),
        DisposeModel = false,
        Engine = new EngineOptions
        {
            Threads = 1,
            MaxNumSeqs = 8,
            MaxNumBatchedTokens = 256,
            MaxModelLen = 1024,
            MaxQueuedRequests = 256,
            KvCacheMemoryBytes = 32L << 20,
            KvType = KvDataType.F32,
        },
    };

    /// <summary>Starts a server for <paramref name="model"/> (default stories260K). <paramref name="loopback"/>: Kestrel
    /// on a free loopback port instead of TestServer. <paramref name="waitReady"/>: wait until the model is loaded.</summary>
    public static async Task<ServerHarness> StartAsync(Model? model = null, bool loopback = false,
                                                        Func<ServerOptions, ServerOptions>? configure = null, bool waitReady = true)
    {
        model ??= ServerModels.Stories;
        var options = DefaultOptions(model);
        if (configure != null) options = configure(options);
        var app = ServerApp.Build(options, b =>
        {
            b.Logging.ClearProviders();
            if (!loopback) b.WebHost.UseTestServer();
        });
        await app.StartAsync(TestContext.Current.CancellationToken);
        HttpClient http;
        Uri baseAddress;
        if (loopback)
        {
            baseAddress = new Uri(app.Urls.First() + "/");
            // MaxResponseDrainSize 0: disposing an unfinished response closes its connection (the default would read up
            // to 1 MB of the rest to reuse the connection, and the server would never see the client go)
            http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = int.MaxValue, MaxResponseDrainSize = 0 })
            { BaseAddress = baseAddress, Timeout = TimeSpan.FromMinutes(5) };
        }
        else
        {
            http = app.GetTestClient();
            http.Timeout = TimeSpan.FromMinutes(5);
            baseAddress = http.BaseAddress!;
        }
        var harness = new ServerHarness(app, http, baseAddress, options);
        if (waitReady) await harness.Host.Loaded.WaitAsync(TimeSpan.FromMinutes(2), TestContext.Current.CancellationToken);
        return harness;
    }

    /// <summary>The official OpenAI client pointed at this server (no retries, so errors surface as they are).</summary>
    public ChatClient Chat(string apiKey = "unused")
    {
        var options = new OpenAIClientOptions
        {
            Endpoint = new Uri(BaseAddress, "v1"),
            Transport = new HttpClientPipelineTransport(Http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = TimeSpan.FromMinutes(5),
        };
        return new OpenAIClient(new ApiKeyCredential(apiKey), options).GetChatClient(ModelId);
    }

    public static StringContent JsonContent(JsonNode body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");

    /// <summary>POSTs JSON and returns the status and parsed body.</summary>
    public async Task<(HttpStatusCode Status, JsonObject Body, HttpResponseMessage Response)> PostAsync(string path, JsonNode body, string? apiKey = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent(body) };
        if (apiKey != null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        var res = await Http.SendAsync(req, TestContext.Current.CancellationToken);
        var text = await res.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        var node = text.Length == 0 ? new JsonObject() : JsonNode.Parse(text) as JsonObject ?? throw new InvalidOperationException("not a JSON object: " + text);
        return (res.StatusCode, node, res);
    }

    public async Task<JsonObject> PostOkAsync(string path, JsonNode body)
    {
        var (status, json, _) = await PostAsync(path, body);
        Assert.True(status == HttpStatusCode.OK, $"{path} answered {(int)status}: {json.ToJsonString()}");
        return json;
    }

    /// <summary>Starts a streamed POST and returns the response once its headers arrived.</summary>
    public async Task<HttpResponseMessage> PostStreamAsync(string path, JsonNode body, CancellationToken ct = default)
    {
        var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent(body) };
        return await Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct);
    }

    /// <summary>The <c>data:</c> payloads of an SSE response, up to and including <c>[DONE]</c> (returned as null).</summary>
    public static async IAsyncEnumerable<JsonObject?> ReadSseAsync(HttpResponseMessage response, [EnumeratorCancellation] CancellationToken ct = default)
    {
        using var stream = await response.Content.ReadAsStreamAsync(ct);
        using var reader = new StreamReader(stream);
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.Length == 0) continue;
            Assert.StartsWith("data: ", line);
            var data = line["data: ".Length..];
            if (data == "[DONE]")
            {
                yield return null;
                yield break;
            }
            yield return (JsonObject)JsonNode.Parse(data)!;
        }
    }

    /// <summary>Reads a whole SSE response: every chunk, whether [DONE] came.</summary>
    public static async Task<(List<JsonObject> Chunks, bool Done)> ReadAllSseAsync(HttpResponseMessage response, CancellationToken ct = default)
    {
        var chunks = new List<JsonObject>();
        await foreach (var c in ReadSseAsync(response, ct))
        {
            if (c == null) return (chunks, true);
            chunks.Add(c);
        }
        return (chunks, false);
    }

    /// <summary>POSTs a chat completion (streamed when the body says <c>"stream": true</c>, and then it must end with
    /// [DONE]) and returns its first choice as the client ends up with it.</summary>
    public async Task<ChatReply> ChatReplyAsync(JsonObject body)
    {
        if (body["stream"]?.GetValue<bool>() != true)
            return ChatReply.FromChoice((await PostOkAsync("v1/chat/completions", body))["choices"]![0]!);
        using var res = await PostStreamAsync("v1/chat/completions", body, TestContext.Current.CancellationToken);
        var (chunks, done) = await ReadAllSseAsync(res, TestContext.Current.CancellationToken);
        Assert.True(done, "the stream ended without [DONE]");
        return ChatReply.FromChunks(chunks);
    }

    /// <summary>Waits (polling) until the engine holds no request and no KV block; false if that does not happen in time
    /// (the default limit is a hang guard, long enough for a loaded machine: an idle engine returns at once).</summary>
    public async Task<bool> WaitIdleAsync(TimeSpan? limit = null)
    {
        var deadline = DateTime.UtcNow + (limit ?? TimeSpan.FromMinutes(5));
        while (DateTime.UtcNow < deadline)
        {
            var s = Engine.Stats;
            if (Engine.ActiveRequests == 0 && s.Running == 0 && s.Waiting == 0 && s.KvBlocksUsed == 0) return true;
            await Task.Delay(10);
        }
        return false;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await App.StopAsync(CancellationToken.None);
        }
        finally
        {
            Http.Dispose();
            await App.DisposeAsync();
        }
    }
}
