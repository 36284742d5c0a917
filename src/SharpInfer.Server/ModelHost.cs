using Microsoft.Extensions.Logging;
using SharpInfer.Engine;
using SharpInfer.Models;
using SharpInfer.Server.Api;
using SharpInfer.Server.Metrics;

namespace SharpInfer.Server;

internal enum ServerState { Loading, Ready, Failed, Stopping, Stopped, Sleeping }

/// <summary>
/// The served model and its engine, and the server's lifecycle: <see cref="ServerState.Loading"/> (the model loads
/// in the background after Kestrel starts; requests get 503), <see cref="ServerState.Ready"/>,
/// <see cref="ServerState.Stopping"/> (graceful shutdown: new requests get 503 while in-flight ones finish, up to
/// the shutdown timeout, after which the engine aborts them) and <see cref="ServerState.Stopped"/>. With
/// <see cref="ServerOptions.SleepIdleSeconds"/>, a server idle that long goes <see cref="ServerState.Sleeping"/>
/// (llama-server's <c>--sleep-idle-seconds</c>): the engine, its KV cache and compute threads are released (the model's
/// weights stay loaded), and the next request that needs the engine wakes it.
/// </summary>
internal sealed class ModelHost : IAsyncDisposable
{
    private readonly ServerOptions _options;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _loadCancel = new();
    private volatile ServerState _state = ServerState.Loading;
    private Task? _stopTask;
    private bool _loadStarted;
    private int _inFlight;
    private long _lastActivity = Environment.TickCount64;
    private Timer? _sleepTimer;
    private byte[]? _sleepingProps;

    public ModelHost(ServerOptions options, ILogger<ModelHost> log)
    {
        _options = options;
        _log = log;
        ModelId = options.ModelId;
    }

    public ServerOptions Options => _options;
    public ServerState State => _state;
    public string ModelId { get; }
    public Model? Model { get; private set; }
    public LlmEngine? Engine { get; private set; }
    public PromptBuilder? Prompts { get; private set; }
    public PrometheusExporter? Exporter { get; private set; }
    /// <summary>llama-server's metric names on /metrics.</summary>
    public LlamaCppMetrics? LlamaMetrics { get; private set; }
    /// <summary>When the model finished loading (Unix seconds), for /v1/models.</summary>
    public long Created { get; private set; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    public Exception? LoadError { get; private set; }
    /// <summary>Completes when the model is ready; faults with the load error.</summary>
    public Task Loaded => _loaded.Task;

    /// <summary>Starts loading the model on a background thread (once).</summary>
    public void StartLoading()
    {
        lock (_gate)
        {
            if (_state != ServerState.Loading || _loadStarted) return;
            _loadStarted = true;
        }
        _ = Task.Run(LoadAsync);
    }

    private async Task LoadAsync()
    {
        Model? model = null;
        LlmEngine? engine = null;
        try
        {
            model = _options.ModelLoader != null
                ? await _options.ModelLoader(_loadCancel.Token).ConfigureAwait(false)
                : Models.Model.Load(_options.ModelPath);
            _loadCancel.Token.ThrowIfCancellationRequested();
            var prompts = new PromptBuilder(model, _options.ChatTemplate, _options.ChatTemplateKwargs);
            engine = NewEngine(model);
            var exporter = new PrometheusExporter(engine.Metrics.Meter, ModelId);
            var llamaMetrics = new LlamaCppMetrics(engine.Metrics.Meter, ModelId);
            lock (_gate)
            {
                if (_state != ServerState.Loading) throw new OperationCanceledException("the server stopped while the model was loading");
                Model = model;
                Engine = engine;
                Prompts = prompts;
                Exporter = exporter;
                LlamaMetrics = llamaMetrics;
                Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                _lastActivity = Environment.TickCount64;
                _state = ServerState.Ready;
            }
            if (_options.SleepIdleSeconds is > 0) _sleepTimer = new Timer(_ => SleepIfIdle(), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
            _loaded.TrySetResult();
        }
        catch (Exception e)
        {
            engine?.Dispose();
            if (_options.DisposeModel) model?.Dispose();
            LoadError = e;
            lock (_gate)
                if (_state == ServerState.Loading) _state = ServerState.Failed;
            if (e is not OperationCanceledException) _log.LogError("loading {Path} failed: {Message}", _options.ModelPath, e.Message);
            _loaded.TrySetException(e);
        }
    }

    // traces name the model as the API does
    private LlmEngine NewEngine(Model model) => new(model, _options.Engine with { ModelName = _options.Engine.ModelName ?? ModelId });

    /// <summary>An HTTP request begins (every route counts: the server sleeps only when none is in flight).</summary>
    public void EnterRequest()
    {
        lock (_gate)
        {
            _inFlight++;
            _lastActivity = Environment.TickCount64;
        }
    }

    public void ExitRequest()
    {
        lock (_gate)
        {
            _inFlight--;
            _lastActivity = Environment.TickCount64;
        }
    }

    /// <summary>Whether the server is asleep (llama-server's <c>is_sleeping</c>).</summary>
    public bool IsSleeping => _state == ServerState.Sleeping;

    /// <summary>/props while asleep: the answer rendered when the server went to sleep (it needs the engine's facts).</summary>
    public byte[]? SleepingProps => _sleepingProps;

    /// <summary>Called for /props before sleeping: renders what /props answers while asleep.</summary>
    public Func<byte[]>? RenderSleepingProps { get; set; }

    /// <summary>Releases the engine once nothing has happened for <see cref="ServerOptions.SleepIdleSeconds"/>.</summary>
    private void SleepIfIdle()
    {
        LlmEngine? engine;
        PrometheusExporter? exporter;
        LlamaCppMetrics? metrics;
        lock (_gate)
        {
            if (_state != ServerState.Ready || _inFlight > 0 || Engine!.ActiveRequests > 0) return;
            if (Environment.TickCount64 - _lastActivity < _options.SleepIdleSeconds!.Value * 1000L) return;
            _sleepingProps = RenderSleepingProps?.Invoke();
            (engine, exporter, metrics) = (Engine, Exporter, LlamaMetrics);
            Engine = null;
            Exporter = null;
            LlamaMetrics = null;
            _state = ServerState.Sleeping;
        }
        exporter?.Dispose();
        metrics?.Dispose();
        engine?.Dispose();
        _log.LogInformation("idle for {Seconds} s: sleeping (the engine and its KV cache are released until the next request)", _options.SleepIdleSeconds);
    }

    /// <summary>A new engine on the loaded model (its metrics start from zero, as after a restart).</summary>
    private LlmEngine Wake()
    {
        lock (_gate)
        {
            if (_state == ServerState.Sleeping)
            {
                var engine = NewEngine(Model!);
                Exporter = new PrometheusExporter(engine.Metrics.Meter, ModelId);
                LlamaMetrics = new LlamaCppMetrics(engine.Metrics.Meter, ModelId);
                Engine = engine;
                _lastActivity = Environment.TickCount64;
                _state = ServerState.Ready;
                _log.LogInformation("waking up: a request needs the engine");
            }
            return RequireEngine();
        }
    }

    /// <summary>Like <see cref="RequireEngine"/> but without waking a sleeping server: true when the server is ready or
    /// asleep (/health answers 200 then, as llama-server's).</summary>
    public bool IsAvailable()
    {
        if (_state == ServerState.Sleeping) return true;
        RequireEngine();
        return true;
    }

    /// <summary>The engine (waking a sleeping server), or a 503 (loading, failed, stopping) for the caller to answer with.</summary>
    public LlmEngine RequireEngine() => _state switch
    {
        ServerState.Ready => Engine!,
        ServerState.Sleeping => Wake(),
        ServerState.Loading => throw ApiErrors.Loading(),
        ServerState.Failed => throw new ApiException(503, "The model failed to load: " + LoadError?.Message, ApiErrorTypes.Unavailable, null, "model_load_failed"),
        _ => throw ApiErrors.ShuttingDown(),
    };

    /// <summary>Graceful shutdown begins: refuse new requests, let the engine finish in-flight ones for up to the
    /// shutdown timeout, then abort the rest. Returns at once; <see cref="StopAsync"/> waits for the end.</summary>
    public void BeginShutdown()
    {
        bool wasReady;
        lock (_gate)
        {
            if (_stopTask != null) return;
            wasReady = _state == ServerState.Ready;
            _state = ServerState.Stopping;
            _sleepTimer?.Dispose();
            _loadCancel.Cancel();
            _stopTask = wasReady ? Engine!.StopAsync(_options.ShutdownTimeout) : Task.CompletedTask;
        }
        if (wasReady)
            _log.LogInformation("shutting down: new requests are refused, in-flight requests have {Seconds} s to finish", _options.ShutdownTimeout.TotalSeconds);
    }

    /// <summary>Completes the shutdown (starting it if needed) and releases the engine.</summary>
    public async Task StopAsync()
    {
        BeginShutdown();
        await _stopTask!.ConfigureAwait(false);
        lock (_gate) _state = ServerState.Stopped;
    }

    public async ValueTask DisposeAsync()
    {
        if (_state != ServerState.Stopped) await StopAsync().ConfigureAwait(false);
        Exporter?.Dispose();
        LlamaMetrics?.Dispose();
        Engine?.Dispose();
        if (_options.DisposeModel) Model?.Dispose();
        _loadCancel.Dispose();
    }
}
