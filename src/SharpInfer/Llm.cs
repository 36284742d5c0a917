using System.Runtime.CompilerServices;
using SharpInfer.Engine;
using SharpInfer.Engine.Tools;
using SharpInfer.Facade;
using SharpInfer.Models;
using SharpInfer.Sampling;
using SharpInfer.Sampling.Grammar;

namespace SharpInfer;

/// <summary>
/// A model loaded for in-process use: text generation and chat, whole or streamed, over one
/// <see cref="LlmEngine"/>. Thread-safe: concurrent calls are batched by the engine (up to
/// <see cref="LlmOptions.ParallelSequences"/> at once, the rest queued). Cancelling a call, or leaving a streamed
/// enumeration early, ends its generation and frees its place in the KV cache.
/// <code>
/// await using var llm = await Llm.LoadAsync("model.gguf");
/// string text = await llm.GenerateAsync("Once upon a time", new GenerationOptions { MaxTokens = 32 });
/// var reply = await llm.ChatAsync([LlmChatMessage.User("Hello!")]);
/// </code>
/// </summary>
public sealed partial class Llm : IAsyncDisposable, IDisposable
{
    private const int GrammarCacheSize = 16;
    private readonly Model _model;
    private readonly bool _ownsModel;
    private readonly ChatFormatter _formatter;
    private readonly Dictionary<string, GrammarConstraint> _grammars = [];
    private int _disposed;

    private Llm(Model model, bool ownsModel, LlmOptions options)
    {
        _model = model;
        _ownsModel = ownsModel;
        _formatter = ChatFormatter.ForModel(model, options.ChatTemplate);
        ModelId = options.ModelId ?? Path.GetFileNameWithoutExtension(model.Path);
        Engine = new LlmEngine(model, options.ToEngineOptions() with { ModelName = ModelId });
    }

    /// <summary>The name responses report: <see cref="LlmOptions.ModelId"/>, else the model file's name.</summary>
    public string ModelId { get; }
    /// <summary>The engine underneath, for what the facade does not cover (token ids, log-probs, metrics).</summary>
    internal LlmEngine Engine { get; }
    internal Model Model => _model;
    /// <summary>Longest prompt + reply of one call, in tokens.</summary>
    public int ContextLength => Engine.MaxModelLen;

    /// <summary>Loads a GGUF model and starts its engine (on a thread-pool thread: loading reads and packs the weights).</summary>
    public static Task<Llm> LoadAsync(string modelPath, LlmOptions? options = null, CancellationToken cancellation = default) =>
        Task.Run(() => Load(modelPath, options), cancellation);

    /// <summary>Loads a GGUF model and starts its engine.</summary>
    public static Llm Load(string modelPath, LlmOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"model file not found: {modelPath}", modelPath);
        var model = Model.Load(modelPath);
        try
        {
            return new Llm(model, ownsModel: true, options ?? new LlmOptions());
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>An engine over an already loaded model, which stays the caller's to dispose (several <see cref="Llm"/>s
    /// may share one model).</summary>
    internal static Llm FromModel(Model model, LlmOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new Llm(model, ownsModel: false, options ?? new LlmOptions());
    }

    /// <summary>Continues <paramref name="prompt"/> (raw text, no chat template; BOS and special tokens as llama.cpp).</summary>
    public async Task<string> GenerateAsync(string prompt, GenerationOptions? options = null, CancellationToken cancellation = default)
    {
        var text = new System.Text.StringBuilder();
        await foreach (var chunk in GenerateStreamingAsync(prompt, options, cancellation).ConfigureAwait(false)) text.Append(chunk);
        return text.ToString();
    }

    /// <summary><see cref="GenerateAsync"/> as the text arrives (chunks of whole characters; a possible stop string is held back).</summary>
    public async IAsyncEnumerable<string> GenerateStreamingAsync(string prompt, GenerationOptions? options = null,
                                                                 [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        options ??= new GenerationOptions();
        var sampling = options.ToSampling();
        if (options.ConstraintGrammar() is { } gbnf) sampling = sampling with { LogitsProcessor = Grammar(gbnf, null) };
        var tokens = _model.Tokenizer.Encode(prompt, addSpecial: true, parseSpecial: true);
        await foreach (var o in RunAsync(tokens, sampling, EngineTelemetry.TextCompletion, null, cancellation).ConfigureAwait(false))
            if (o.Text.Length > 0) yield return o.Text;
    }

    /// <summary>A chat reply: the messages rendered with the model's chat template, tools in the template's own format,
    /// the reply parsed into text, reasoning and tool calls.</summary>
    public async Task<LlmChatResponse> ChatAsync(IEnumerable<LlmChatMessage> messages, LlmChatOptions? options = null,
                                                 CancellationToken cancellation = default)
    {
        var text = new System.Text.StringBuilder();
        System.Text.StringBuilder? reasoning = null;
        var calls = new List<LlmToolCall>();
        await foreach (var u in ChatStreamingAsync(messages, options, cancellation).ConfigureAwait(false))
        {
            switch (u.Kind)
            {
                case LlmChatUpdateKind.Text: text.Append(u.Text); break;
                case LlmChatUpdateKind.Reasoning: (reasoning ??= new()).Append(u.Text); break;
                case LlmChatUpdateKind.ToolCall: calls.Add(u.ToolCall!); break;
                case LlmChatUpdateKind.Finished:
                    return new LlmChatResponse(text.ToString(), reasoning?.ToString(), calls, u.FinishReason!.Value, u.Usage!) { Id = u.Id };
            }
        }
        throw new SharpInferException("the reply ended without a finish reason");
    }

    /// <summary><see cref="ChatAsync"/> as the reply arrives: text and reasoning pieces, each tool call once complete,
    /// and last an update with the finish reason and usage.</summary>
    public async IAsyncEnumerable<LlmChatUpdate> ChatStreamingAsync(IEnumerable<LlmChatMessage> messages, LlmChatOptions? options = null,
                                                                    [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var chat = ChatRequestBuilder.Prepare(_formatter, Grammar, messages, options ?? new LlmChatOptions());
        string id = "chat-" + Guid.NewGuid().ToString("N");
        var parser = chat.NewParser?.Invoke();
        var events = new List<ChatOutputEvent>();
        int toolCalls = 0;
        await foreach (var o in RunAsync(chat.Tokens, chat.Sampling, EngineTelemetry.Chat, id, cancellation, chat.PreservedTokens).ConfigureAwait(false))
        {
            if (parser == null)
            {
                if (o.Text.Length > 0) yield return new LlmChatUpdate(LlmChatUpdateKind.Text, o.Text) { Id = id };
            }
            else
            {
                events.Clear();
                parser.Push(o.Text, events);
                if (o.IsFinal) parser.Finish(events);
                foreach (var e in events)
                {
                    if (e.Kind == ChatOutputKind.ToolCall) toolCalls++;
                    yield return e.Kind switch
                    {
                        ChatOutputKind.Content => new LlmChatUpdate(LlmChatUpdateKind.Text, e.Text) { Id = id },
                        ChatOutputKind.Reasoning => new LlmChatUpdate(LlmChatUpdateKind.Reasoning, e.Text) { Id = id },
                        _ => new LlmChatUpdate(LlmChatUpdateKind.ToolCall, ToolCall: new LlmToolCall(e.Call!.Id, e.Call.Name, e.Call.Arguments)) { Id = id },
                    };
                }
            }
            if (o.IsFinal)
            {
                var finish = toolCalls > 0 ? LlmFinishReason.ToolCalls : o.Finish == FinishReason.Length ? LlmFinishReason.Length : LlmFinishReason.Stop;
                yield return new LlmChatUpdate(LlmChatUpdateKind.Finished)
                {
                    Id = id,
                    FinishReason = finish,
                    Usage = new LlmUsage(chat.Tokens.Length, o.CompletionTokens, o.CachedPromptTokens),
                };
            }
        }
    }

    /// <summary>One engine request's outputs up to the final one. A cancelled call ends in <see cref="OperationCanceledException"/>
    /// (the engine has aborted it and frees its blocks); an engine-side abort ends in <see cref="SharpInferException"/>.</summary>
    private async IAsyncEnumerable<RequestOutput> RunAsync(int[] tokens, SamplingParams sampling, string operation, string? responseId,
                                                           [EnumeratorCancellation] CancellationToken cancellation, int[]? preserved = null)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        cancellation.ThrowIfCancellationRequested();
        var request = new EngineRequest { PromptTokens = tokens, Sampling = sampling, Operation = operation, ResponseId = responseId, PreservedTokens = preserved };
        await foreach (var o in Engine.AddRequest(request, cancellation).ConfigureAwait(false))
        {
            if (o.Finish == FinishReason.Abort)
            {
                cancellation.ThrowIfCancellationRequested();
                throw new SharpInferException("the engine aborted the request" + (o.Error is { } why ? ": " + why : ""));
            }
            yield return o;
        }
    }

    /// <summary>A grammar constraint, compiled once per grammar text and preserved tokens (its token masks are reused
    /// across calls).</summary>
    private GrammarConstraint Grammar(string gbnf, int[]? preserved)
    {
        string key = preserved is { Length: > 0 } ? string.Join(',', preserved) + "\n" + gbnf : gbnf;
        lock (_grammars)
        {
            if (_grammars.TryGetValue(key, out var cached)) return cached;
            var c = GrammarConstraint.FromGbnf(gbnf, _model.Tokenizer, _model.Config.VocabSize, preserved: preserved);
            if (_grammars.Count >= GrammarCacheSize) _grammars.Clear();
            _grammars[key] = c;
            return c;
        }
    }

    /// <summary>Stops the engine: calls still running end as aborted (their callers get an exception).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await Engine.StopAsync(TimeSpan.Zero).ConfigureAwait(false);
        Release();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Release();   // the engine's Dispose stops its loop, aborting what still runs
    }

    private void Release()
    {
        Engine.Dispose();
        if (_ownsModel) _model.Dispose();
    }
}
