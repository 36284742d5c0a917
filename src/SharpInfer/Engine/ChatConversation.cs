using System.Text;
using System.Text.Json.Nodes;
using SharpInfer.Sampling;

namespace SharpInfer.Engine;

/// <summary>
/// A multi-turn chat on one <see cref="InferenceSession"/>: keeps the message history, and for each user message
/// re-renders the whole conversation with the generation prompt, tokenizes it and generates. The session reuses the
/// cached KV of the longest common token prefix with what it holds (the previous prompt and reply), so only the rest
/// is processed; templates that rewrite earlier turns (Qwen3 drops the thinking of old assistant turns) make that
/// prefix shorter than the whole history, and the result is still exactly what a fresh prompt would give.
/// Not thread-safe (neither is the session).
/// </summary>
internal sealed class ChatConversation
{
    private readonly InferenceSession _session;
    private readonly JsonArray _messages = [];
    private readonly string? _systemPrompt;

    /// <param name="session">The session to generate with (its cache is this conversation's).</param>
    /// <param name="formatter">Formats prompts for the session's model.</param>
    /// <param name="systemPrompt">A system message that starts the conversation (kept by <see cref="Reset"/>).</param>
    /// <param name="variables">Extra template variables for every turn (e.g. <c>enable_thinking</c>); checked with
    /// <see cref="ChatFormatter.ValidateVariables"/>.</param>
    public ChatConversation(InferenceSession session, ChatFormatter formatter, string? systemPrompt = null,
                            IReadOnlyDictionary<string, JsonNode?>? variables = null)
    {
        _session = session ?? throw new ArgumentNullException(nameof(session));
        Formatter = formatter ?? throw new ArgumentNullException(nameof(formatter));
        ChatFormatter.ValidateVariables(variables);
        _systemPrompt = string.IsNullOrEmpty(systemPrompt) ? null : systemPrompt;
        Variables = variables;
        Reset();
    }

    public ChatFormatter Formatter { get; }
    public IReadOnlyDictionary<string, JsonNode?>? Variables { get; }
    public InferenceSession Session => _session;
    /// <summary>The history (system prompt, then user and assistant messages in order). A copy.</summary>
    public JsonArray Messages => (JsonArray)_messages.DeepClone();
    /// <summary>The prompt of the latest turn.</summary>
    public ChatPrompt? LastPrompt { get; private set; }
    /// <summary>The latest assistant reply as it was appended to the history.</summary>
    public string? LastReply { get; private set; }
    /// <summary>Why the latest reply ended.</summary>
    public FinishReason? LastFinish { get; private set; }
    /// <summary>Counts and times of the latest turn (prompt tokens processed and cached, generation speed).</summary>
    public GenerationTimings LastTimings => _session.LastTimings;

    /// <summary>Forgets the history (the system prompt stays) and the session's cache.</summary>
    public void Reset()
    {
        _messages.Clear();
        if (_systemPrompt != null) _messages.Add((JsonNode)new JsonObject { ["role"] = "system", ["content"] = _systemPrompt });
        _session.Reset();
        LastPrompt = null;
        LastReply = null;
        LastFinish = null;
    }

    /// <summary>
    /// Adds a user message and returns the reply's events (as <see cref="InferenceSession.Generate"/>). The prompt is
    /// formatted and checked now: on an invalid request, a template error or a prompt that does not fit the context
    /// the message is not added and the exception is thrown here. Enumerate the result to the end: the reply (the
    /// generated text, without the end-of-turn token) joins the history when the enumeration finishes, is disposed
    /// or is cancelled.
    /// </summary>
    public IEnumerable<GenerationEvent> Send(string userMessage, SamplingParams sampling, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(userMessage);
        ArgumentNullException.ThrowIfNull(sampling);
        sampling.Validate(_session.Model.Config.VocabSize);
        _messages.Add((JsonNode)new JsonObject { ["role"] = "user", ["content"] = userMessage });
        ChatPrompt prompt;
        try
        {
            prompt = Formatter.Format(new ChatFormatRequest { Messages = _messages, AddGenerationPrompt = true, Variables = Variables });
            if (prompt.TokenIds.Length == 0) throw new InvalidRequestException("the chat template rendered an empty prompt", "messages");
            if (prompt.TokenIds.Length >= _session.ContextLength)
                throw new ContextLengthExceededException(prompt.TokenIds.Length, _session.ContextLength);
        }
        catch
        {
            _messages.RemoveAt(_messages.Count - 1);
            throw;
        }
        LastPrompt = prompt;
        LastReply = null;
        LastFinish = null;
        return Stream(prompt, sampling, cancellation);
    }

    private IEnumerable<GenerationEvent> Stream(ChatPrompt prompt, SamplingParams sampling, CancellationToken cancellation)
    {
        var reply = new StringBuilder();
        try
        {
            foreach (var ev in _session.Generate(prompt.TokenIds, sampling, cancellation))
            {
                reply.Append(ev.Text);
                if (ev.Finish is { } f) LastFinish = f;
                yield return ev;
            }
        }
        finally
        {
            LastReply = reply.ToString();
            _messages.Add((JsonNode)new JsonObject { ["role"] = "assistant", ["content"] = LastReply });
        }
    }
}
