using System.Text;

namespace SharpInfer.Engine.Tools;

/// <summary>
/// A chat reply as the client sees it: reasoning (<see cref="ReasoningSplitter"/>), then answer text and tool calls
/// (<see cref="ToolCallParser"/>). Feed the generated text in pieces with <see cref="Push"/> and end with
/// <see cref="Finish"/>; the events are the same however the text was split, so a streamed reply reassembles to
/// exactly the non-streamed one.
/// </summary>
internal sealed class ChatOutputParser
{
    private readonly IReasoningSplitter? _reasoning;
    private readonly ToolCallParser? _tools;
    /// <summary>gpt-oss: reasoning, content and tool calls all come in harmony messages, parsed in one place.</summary>
    private readonly HarmonySplitter? _harmony;
    private List<ChatOutputEvent>? _sink;
    private readonly Action<string> _onReasoning, _onAnswer, _onContent;
    private readonly Action<ChatOutputEvent> _onEvent;
    private readonly Action<ToolCall> _onCall;

    /// <param name="tools">The tool-call format to parse, or null to parse none.</param>
    /// <param name="reasoning">Split off <c>&lt;think&gt;</c> reasoning.</param>
    /// <param name="reasoningStartsInside">The prompt ended inside an opened <c>&lt;think&gt;</c> block.</param>
    /// <param name="harmony">The reply is in gpt-oss's harmony messages (<see cref="HarmonySplitter"/>): reasoning is the
    /// <c>analysis</c> channel, not <c>&lt;think&gt;</c> blocks, and tool calls are messages to <c>functions.NAME</c>
    /// (whatever <paramref name="tools"/> says, when it is not null).</param>
    public ChatOutputParser(ToolCallFormat? tools, bool reasoning, bool reasoningStartsInside = false, bool harmony = false)
    {
        if (harmony)
        {
            if (reasoning || tools != null) _harmony = new HarmonySplitter(reasoning, parseTools: tools != null);
        }
        else
        {
            _reasoning = reasoning ? new ReasoningSplitter(reasoningStartsInside) : null;
            _tools = tools is { } f ? new ToolCallParser(f) : null;
        }
        _onEvent = e => _sink!.Add(e);
        _onCall = c => _sink!.Add(ChatOutputEvent.Tool(c));
        _onContent = s => _sink!.Add(ChatOutputEvent.Content(s));
        _onReasoning = s => _sink!.Add(ChatOutputEvent.Reasoning(s));
        _onAnswer = s =>
        {
            if (_tools != null) _tools.Push(s, _onEvent);
            else _sink!.Add(ChatOutputEvent.Content(s));
        };
    }

    /// <summary>Whether this parser changes anything (else the text is plain content).</summary>
    public bool IsActive => _reasoning != null || _tools != null || _harmony != null;

    /// <summary>Adds generated text; appends what can be released to <paramref name="events"/>.</summary>
    public void Push(string text, List<ChatOutputEvent> events)
    {
        if (text.Length == 0) return;
        _sink = events;
        if (_harmony != null) _harmony.Push(text, _onReasoning, _onContent, _onCall);
        else if (_reasoning != null) _reasoning.Push(text, _onReasoning, _onAnswer);
        else _onAnswer(text);
    }

    /// <summary>The reply ended: appends everything still held.</summary>
    public void Finish(List<ChatOutputEvent> events)
    {
        _sink = events;
        _harmony?.Finish(_onReasoning, _onContent, _onCall);
        _reasoning?.Finish(_onReasoning, _onAnswer);
        _tools?.Finish(_onEvent);
    }

    /// <summary>Parses a whole reply at once.</summary>
    public static ChatOutputParser.Reply Parse(string text, ToolCallFormat? tools, bool reasoning, bool reasoningStartsInside = false,
                                               bool harmony = false)
    {
        var p = new ChatOutputParser(tools, reasoning, reasoningStartsInside, harmony);
        var events = new List<ChatOutputEvent>();
        p.Push(text, events);
        p.Finish(events);
        return Reply.From(events);
    }

    /// <summary>A whole reply: content and reasoning (null when there is none) and the calls in order.</summary>
    public sealed record Reply(string? Content, string? Reasoning, IReadOnlyList<ToolCall> Calls)
    {
        public static Reply From(IEnumerable<ChatOutputEvent> events)
        {
            StringBuilder? content = null, reasoning = null;
            var calls = new List<ToolCall>();
            foreach (var e in events)
                switch (e.Kind)
                {
                    case ChatOutputKind.Content: (content ??= new()).Append(e.Text); break;
                    case ChatOutputKind.Reasoning: (reasoning ??= new()).Append(e.Text); break;
                    default: calls.Add(e.Call!); break;
                }
            return new Reply(content?.ToString(), reasoning?.ToString(), calls);
        }
    }
}
