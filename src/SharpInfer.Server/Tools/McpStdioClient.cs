using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace SharpInfer.Server.Tools;

/// <summary>
/// One MCP server process spoken to over stdio: newline-delimited JSON-RPC 2.0 (MCP's stdio transport). The
/// <c>initialize</c> handshake runs once per process (then <c>notifications/initialized</c>); requests carry
/// increasing ids and each waits for the reply with its id, so concurrent calls share the process; messages without
/// an id (notifications) and replies nobody waits for (a timed-out request's) are skipped. stderr is drained into a
/// bounded tail for diagnostics. Closing kills the whole process tree and never waits for the pipes to reach EOF (a
/// grandchild may hold them open).
/// </summary>
internal sealed class McpStdioClient : IAsyncDisposable
{
    private const string ProtocolVersion = "2024-11-05";
    /// <summary>Longest line accepted from the server; a longer one is dropped (and the transport with it).</summary>
    public const int MaxLineChars = 8 << 20;
    private const int StderrTailChars = 4096;

    private readonly McpServerConfig _config;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<long, TaskCompletionSource<JsonObject>> _pending = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SemaphoreSlim _initLock = new(1, 1);
    private readonly StringBuilder _stderrTail = new();
    private Process? _process;
    private long _nextId;
    private volatile bool _running;
    private bool _initialized;
    private List<McpToolDef>? _tools;

    public McpStdioClient(McpServerConfig config, ILogger log)
    {
        _config = config;
        _log = log;
    }

    public string Name => _config.Name;
    public bool IsAlive => _running && _process is { HasExited: false };

    /// <summary>What went wrong, for logs: the spawn error or the tail of the server's stderr.</summary>
    public string Diagnostics
    {
        get
        {
            lock (_stderrTail) return _stderrTail.ToString().Trim();
        }
    }

    /// <summary>Spawns the process; false (with <see cref="Diagnostics"/>) when it cannot be started.</summary>
    public bool Start()
    {
        var psi = new ProcessStartInfo(_config.Command)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            CreateNoWindow = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            StandardInputEncoding = new UTF8Encoding(false),
        };
        foreach (var a in _config.Args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in _config.Env) psi.Environment[k] = v;
        if (_config.Cwd != null) psi.WorkingDirectory = _config.Cwd;
        try
        {
            _process = Process.Start(psi);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException or IOException)
        {
            lock (_stderrTail) _stderrTail.Append("failed to spawn '").Append(_config.Command).Append("': ").Append(e.Message);
            return false;
        }
        if (_process is null) return false;
        _running = true;
        var stdout = _process.StandardOutput;
        var stderr = _process.StandardError;
        _ = Task.Run(() => ReadLoopAsync(stdout));
        _ = Task.Run(() => DrainStderrAsync(stderr));
        return true;
    }

    private async Task ReadLoopAsync(StreamReader stdout)
    {
        try
        {
            var buffer = new char[4096];
            var line = new StringBuilder();
            bool skipping = false; // inside a line over MaxLineChars: dropped up to its '\n'
            while (_running)
            {
                int n = await stdout.ReadAsync(buffer.AsMemory()).ConfigureAwait(false);
                if (n == 0) break;
                int start = 0;
                for (int i = 0; i < n; i++)
                {
                    if (buffer[i] != '\n') continue;
                    if (!skipping) line.Append(buffer, start, i - start);
                    if (!skipping) Dispatch(line.ToString().TrimEnd('\r'));
                    line.Clear();
                    skipping = false;
                    start = i + 1;
                }
                if (!skipping) line.Append(buffer, start, n - start);
                if (line.Length > MaxLineChars)
                {
                    _log.LogWarning("MCP '{Name}': dropping a line over {Max} characters", Name, MaxLineChars);
                    line.Clear();
                    skipping = true;
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // the pipe broke: the process is gone
        }
        _running = false;
        FailPending("transport closed");
    }

    private void Dispatch(string line)
    {
        if (line.Length == 0) return;
        JsonObject? msg;
        try
        {
            msg = JsonNode.Parse(line) as JsonObject;
        }
        catch (JsonException)
        {
            return; // a malformed frame is skipped
        }
        // no id: a notification (progress, logging); an unknown id: a timed-out request's late reply
        if (msg?["id"] is JsonValue idValue && idValue.TryGetValue<long>(out long id) && _pending.TryRemove(id, out var waiter))
            waiter.TrySetResult(msg);
    }

    private async Task DrainStderrAsync(StreamReader stderr)
    {
        try
        {
            var buffer = new char[1024];
            int n;
            while ((n = await stderr.ReadAsync(buffer.AsMemory()).ConfigureAwait(false)) > 0)
            {
                lock (_stderrTail)
                {
                    _stderrTail.Append(buffer, 0, n);
                    if (_stderrTail.Length > StderrTailChars) _stderrTail.Remove(0, _stderrTail.Length - StderrTailChars);
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }

    private void FailPending(string message)
    {
        foreach (var id in _pending.Keys)
            if (_pending.TryRemove(id, out var w)) w.TrySetResult(RpcError(message));
    }

    private static JsonObject RpcError(string message) => new() { ["error"] = new JsonObject { ["code"] = -32603, ["message"] = message } };

    private async Task WriteAsync(JsonObject message, CancellationToken ct)
    {
        var text = message.ToJsonString() + "\n";
        await _writeLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var stdin = _process!.StandardInput;
            await stdin.WriteAsync(text.AsMemory(), ct).ConfigureAwait(false);
            await stdin.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Sends a request and waits (at most the server's timeout_ms) for its reply; an error object
    /// <c>{"error": {"message"}}</c> stands for a timeout, cancellation or a dead process.</summary>
    private async Task<JsonObject> RequestAsync(string method, JsonObject? parameters, CancellationToken ct)
    {
        // a process found dead before the request left: nothing ran, so the caller may retry on a fresh one
        if (!IsAlive) throw new McpNotSentException();
        long id = Interlocked.Increment(ref _nextId);
        var waiter = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = waiter;
        var request = new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method };
        if (parameters != null) request["params"] = parameters;
        try
        {
            try
            {
                await WriteAsync(request, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
                _running = false;
                throw new McpNotSentException();
            }
            return await waiter.Task.WaitAsync(TimeSpan.FromMilliseconds(_config.TimeoutMs), ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return RpcError("request timed out");
        }
        catch (OperationCanceledException)
        {
            return RpcError("cancelled");
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    private async Task<string?> EnsureInitializedAsync(CancellationToken ct)
    {
        if (_initialized) return null;
        await _initLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_initialized) return null;
            var reply = await RequestAsync("initialize", new JsonObject
            {
                ["protocolVersion"] = ProtocolVersion,
                ["capabilities"] = new JsonObject(),
                ["clientInfo"] = new JsonObject { ["name"] = "sharpinfer", ["version"] = "1.0" },
            }, ct).ConfigureAwait(false);
            if (reply["result"] is null) return "initialize failed: " + ErrorMessage(reply);
            try
            {
                await WriteAsync(new JsonObject { ["jsonrpc"] = "2.0", ["method"] = "notifications/initialized" }, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
                _running = false;
                throw new McpNotSentException();
            }
            _initialized = true;
            return null;
        }
        finally
        {
            _initLock.Release();
        }
    }

    /// <summary>The server's tools (asked once per process); empty when it fails to answer.</summary>
    public async Task<List<McpToolDef>> ListToolsAsync(CancellationToken ct)
    {
        try
        {
            return await ListToolsOnceAsync(ct).ConfigureAwait(false);
        }
        catch (McpNotSentException)
        {
            _log.LogWarning("MCP '{Name}': the process ended before tools/list: {Diagnostics}", Name, Diagnostics);
            return [];
        }
    }

    private async Task<List<McpToolDef>> ListToolsOnceAsync(CancellationToken ct)
    {
        if (_tools != null) return _tools;
        if (await EnsureInitializedAsync(ct).ConfigureAwait(false) is { } err)
        {
            _log.LogWarning("MCP '{Name}': {Error}", Name, err);
            return [];
        }
        var reply = await RequestAsync("tools/list", null, ct).ConfigureAwait(false);
        if (reply["result"] is not JsonObject result)
        {
            _log.LogWarning("MCP '{Name}': tools/list failed: {Error}", Name, ErrorMessage(reply));
            return [];
        }
        var tools = new List<McpToolDef>();
        if (result["tools"] is JsonArray list)
            foreach (var t in list)
                if (t is JsonObject o && o["name"] is JsonValue n && n.TryGetValue<string>(out var name) && name.Length > 0)
                    tools.Add(new McpToolDef(Name, name, o["description"] is JsonValue d && d.TryGetValue<string>(out var desc) ? desc : "",
                                             o["inputSchema"] as JsonObject));
        return _tools = tools;
    }

    /// <summary><c>tools/call</c>, answered in /tools' shape: the text parts of the result's content joined by
    /// newlines as <c>plain_text_response</c>, or <c>{"error"}</c> for an RPC error or an <c>isError</c> result.
    /// Throws <see cref="McpNotSentException"/> when the process was gone before the call was sent.</summary>
    public async Task<JsonObject> CallToolAsync(string tool, JsonObject arguments, CancellationToken ct)
    {
        if (await EnsureInitializedAsync(ct).ConfigureAwait(false) is { } err) return ServerTool.Error(err);
        var reply = await RequestAsync("tools/call", new JsonObject { ["name"] = tool, ["arguments"] = arguments.DeepClone() }, ct).ConfigureAwait(false);
        if (reply["error"] is not null) return ServerTool.Error(ErrorMessage(reply));
        if (reply["result"] is not JsonObject result) return ServerTool.Error("invalid response from MCP server");
        var text = new StringBuilder();
        if (result["content"] is JsonArray parts)
            foreach (var part in parts)
                if (part is JsonObject p && p["type"] is JsonValue type && type.TryGetValue<string>(out var ty) && ty == "text")
                {
                    if (text.Length > 0) text.Append('\n');
                    if (p["text"] is JsonValue tv && tv.TryGetValue<string>(out var s)) text.Append(s);
                }
        if (result["isError"] is JsonValue ie && ie.TryGetValue<bool>(out bool isError) && isError)
            return ServerTool.Error(text.Length == 0 ? "MCP tool returned an error" : text.ToString());
        return ServerTool.Text(text.ToString());
    }

    private static string ErrorMessage(JsonObject reply) => reply["error"] switch
    {
        JsonObject e when e["message"] is JsonValue m && m.TryGetValue<string>(out var s) => s,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => "unknown error",
    };

    public ValueTask DisposeAsync()
    {
        _running = false;
        FailPending("transport closed");
        if (_process is { } p)
        {
            ProcessRunner.Kill(p);
            p.Dispose();
        }
        return ValueTask.CompletedTask;
    }
}

/// <summary>The process had ended before a request could be written to it: the request never ran.</summary>
internal sealed class McpNotSentException() : Exception("transport closed");

/// <summary>A tool an MCP server advertises: its bare name (no <c>server_</c> prefix) and argument schema.</summary>
internal sealed record McpToolDef(string ServerName, string Name, string Description, JsonObject? InputSchema);
