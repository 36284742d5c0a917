using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpInfer.Engine.Tools;

/// <summary>
/// Parses a gpt-oss reply in OpenAI's harmony format, incrementally: each message is a header (<c>&lt;|start|&gt;assistant</c>,
/// which the generation prompt already wrote for the first one, a <c>&lt;|channel|&gt;NAME</c>, and optionally a recipient
/// <c>to=functions.NAME</c> and a content type such as <c>&lt;|constrain|&gt;json</c>) up to <c>&lt;|message|&gt;</c>, and a
/// body up to <c>&lt;|end|&gt;</c> (the last one is ended by <c>&lt;|return|&gt;</c> or <c>&lt;|call|&gt;</c>,
/// end-of-generation tokens that never reach the text). The markers reach the text because the engine renders them for
/// harmony chat requests (<see cref="ChatReplyPlan.PreservedTokenTexts"/>).
/// <list type="bullet">
/// <item><c>analysis</c> bodies are reasoning (with <c>splitReasoning</c> off, the whole message, markers included, is
/// content, as llama-server's <c>reasoning_format: none</c>).</item>
/// <item>A message to <c>functions.NAME</c> (the recipient in the channel part, <c>&lt;|channel|&gt;commentary
/// to=functions.NAME &lt;|constrain|&gt;json</c>, or in the role part, <c>&lt;|start|&gt;assistant to=functions.NAME&lt;|channel|&gt;commentary json</c>)
/// is a tool call when tools are parsed: its body, the arguments, must be one JSON object, else the message stays
/// content as written.</item>
/// <item><c>final</c> and <c>commentary</c> bodies are content.</item>
/// </list>
/// A reply that does not start with a header is all content, unchanged; so is a header longer than
/// <see cref="MaxHeader"/> characters, which bounds what is held. Only a tool call's arguments are held whole (bounded by
/// the request's max_tokens).
/// </summary>
internal sealed class HarmonySplitter : IReasoningSplitter
{
    public const string Start = "<|start|>", Channel = "<|channel|>", Message = "<|message|>", End = "<|end|>";
    public const string AnalysisChannel = "analysis";
    /// <summary>The namespace of the request's functions in a recipient (<c>to=functions.get_weather</c>).</summary>
    public const string FunctionsRecipient = "functions.";
    /// <summary>The first message's header may start with the recipient: the prompt ended with <c>&lt;|start|&gt;assistant</c>.</summary>
    private const string RoleRecipient = " to=";
    /// <summary>Headers are a role, a channel and an optional recipient and content type: a few dozen characters.</summary>
    public const int MaxHeader = 256;

    private static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private enum State { Header, Body, Plain }
    private enum Body { Reasoning, Content, RawAnalysis, Call }

    private readonly bool _splitReasoning, _parseTools;
    private State _state = State.Header;
    private Body _body;
    private string _header = "", _function = "";
    private readonly StringBuilder _buffer = new();

    /// <param name="splitReasoning">Send <c>analysis</c> bodies to reasoning (else the messages stay content, markers included).</param>
    /// <param name="parseTools">Turn messages to <c>functions.NAME</c> into tool calls.</param>
    public HarmonySplitter(bool splitReasoning = true, bool parseTools = false)
    {
        _splitReasoning = splitReasoning;
        _parseTools = parseTools;
    }

    public void Push(string text, Action<string> reasoning, Action<string> answer) => Push(text, reasoning, answer, null);

    /// <summary>Feeds text; tool calls go to <paramref name="call"/> (only when tools are parsed).</summary>
    public void Push(string text, Action<string> reasoning, Action<string> answer, Action<ToolCall>? call)
    {
        if (_state == State.Plain)
        {
            answer(text);
            return;
        }
        _buffer.Append(text);
        while (true)
        {
            var s = _buffer.ToString();
            if (_state == State.Header)
            {
                int at = s.IndexOf(Message, StringComparison.Ordinal);
                if (at < 0)
                {
                    if (MayBeHeader(s) && s.Length <= MaxHeader) return;   // hold: the header is not complete yet
                    _state = State.Plain;
                }
                else if (at <= MaxHeader && IsHeader(s[..at]))
                {
                    OpenBody(s[..at], answer);
                    _buffer.Clear().Append(s, at + Message.Length, s.Length - at - Message.Length);
                    _state = State.Body;
                    continue;
                }
                else _state = State.Plain;
                _buffer.Clear();
                answer(s);
                return;
            }
            if (_body == Body.Call)
            {
                // the arguments are held whole: a call is only sent once it parses
                int end = s.IndexOf(End, StringComparison.Ordinal);
                if (end < 0) return;
                CloseCall(s[..end], answer, call!);
                _buffer.Clear().Append(s, end + End.Length, s.Length - end - End.Length);
                _state = State.Header;
                continue;
            }
            bool ended = MarkerText.CutAt(s, _buffer, End, out var body);
            if (body.Length > 0) (_body == Body.Reasoning ? reasoning : answer)(body);
            if (!ended) return;
            if (_body == Body.RawAnalysis) answer(End);
            _state = State.Header;
        }
    }

    public void Finish(Action<string> reasoning, Action<string> answer) => Finish(reasoning, answer, null);

    /// <summary>The reply ended: what is held goes where it belongs (a call's arguments end with the reply, as
    /// <c>&lt;|call|&gt;</c> ends generation).</summary>
    public void Finish(Action<string> reasoning, Action<string> answer, Action<ToolCall>? call)
    {
        var s = _buffer.ToString();
        _buffer.Clear();
        if (_state == State.Body && _body == Body.Call) CloseCall(s, answer, call!);
        else if (s.Length > 0) (_state == State.Body && _body == Body.Reasoning ? reasoning : answer)(s);   // an unfinished header is shown as it is
        _state = State.Header;
    }

    /// <summary>Decides where the body of the message with <paramref name="header"/> goes.</summary>
    private void OpenBody(string header, Action<string> answer)
    {
        _header = header;
        string channel = ChannelOf(header);
        string? recipient = RecipientOf(header);
        if (_parseTools && recipient != null && recipient.StartsWith(FunctionsRecipient, StringComparison.Ordinal)
            && recipient.Length > FunctionsRecipient.Length)
        {
            _body = Body.Call;
            _function = recipient[FunctionsRecipient.Length..];
        }
        else if (channel == AnalysisChannel && recipient == null)
        {
            _body = _splitReasoning ? Body.Reasoning : Body.RawAnalysis;
            // llama-server keeps the analysis message in content as written, from its channel on
            if (!_splitReasoning) answer(header[header.LastIndexOf(Channel, StringComparison.Ordinal)..] + Message);
        }
        else _body = Body.Content;
    }

    private void CloseCall(string arguments, Action<string> answer, Action<ToolCall> call)
    {
        if (ToolCallParser.ReadValue(arguments, 0, out int stop) is JsonObject args && MarkerText.IsWhiteSpace(arguments.AsSpan(stop)))
            call(new ToolCall(ToolCall.NewId(ToolCallFormat.Harmony), _function, args.ToJsonString(Compact)));
        else answer(_header + Message + arguments);   // not a call after all: nothing is lost
    }

    /// <summary>A message header starts with <c>&lt;|start|&gt;</c> or <c>&lt;|channel|&gt;</c>, or for the first message with
    /// a recipient (or is still a prefix of one of them).</summary>
    private static bool MayBeHeader(string s) =>
        s.StartsWith(Start, StringComparison.Ordinal) || s.StartsWith(Channel, StringComparison.Ordinal) || s.StartsWith(RoleRecipient, StringComparison.Ordinal)
        || Start.StartsWith(s, StringComparison.Ordinal) || Channel.StartsWith(s, StringComparison.Ordinal) || RoleRecipient.StartsWith(s, StringComparison.Ordinal);

    private static bool IsHeader(string h) =>
        (h.StartsWith(Start, StringComparison.Ordinal) || h.StartsWith(Channel, StringComparison.Ordinal) || h.StartsWith(RoleRecipient, StringComparison.Ordinal))
        && h.Contains(Channel, StringComparison.Ordinal);

    /// <summary>The channel name: the word after the last <c>&lt;|channel|&gt;</c> (e.g. <c>commentary</c> in
    /// <c>&lt;|channel|&gt;commentary to=functions.f</c>; gpt-oss sometimes writes a stray <c>&lt;|channel|&gt;commentary</c>
    /// before the real channel).</summary>
    private static string ChannelOf(string header)
    {
        int at = header.LastIndexOf(Channel, StringComparison.Ordinal) + Channel.Length;
        return WordAt(header, at);
    }

    /// <summary>The recipient after <c>to=</c> in the role or the channel part, or null (<c>to=assistant</c>, the
    /// stray form, counts as none).</summary>
    private static string? RecipientOf(string header)
    {
        int at = header.IndexOf("to=", StringComparison.Ordinal);
        if (at < 0 || (at > 0 && header[at - 1] != ' ')) return null;
        string r = WordAt(header, at + 3);
        return r.Length == 0 || r == "assistant" ? null : r;
    }

    private static string WordAt(string s, int at)
    {
        int end = at;
        while (end < s.Length && s[end] != ' ' && s[end] != '<') end++;
        return s[at..end];
    }
}

/// <summary>Splits a reply's reasoning from its answer as text arrives (<see cref="ReasoningSplitter"/> for
/// <c>&lt;think&gt;</c> blocks, <see cref="HarmonySplitter"/> for gpt-oss's channels).</summary>
internal interface IReasoningSplitter
{
    /// <summary>Feeds text; reasoning goes to <paramref name="reasoning"/>, answer text to <paramref name="answer"/>.</summary>
    void Push(string text, Action<string> reasoning, Action<string> answer);
    /// <summary>The reply ended: what is held goes where it belongs.</summary>
    void Finish(Action<string> reasoning, Action<string> answer);
}
