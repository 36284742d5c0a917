using System.Text;

namespace SharpInfer.Engine.Tools;

/// <summary>
/// Splits a gpt-oss reply in OpenAI's harmony format into reasoning and answer, incrementally: each message is a header
/// (<c>&lt;|start|&gt;assistant</c>, which the generation prompt already wrote for the first one, then
/// <c>&lt;|channel|&gt;NAME</c>) up to <c>&lt;|message|&gt;</c>, and a body up to <c>&lt;|end|&gt;</c> (the last one is
/// ended by <c>&lt;|return|&gt;</c> or <c>&lt;|call|&gt;</c>, end-of-generation tokens that never reach the text). Bodies
/// of the <c>analysis</c> channel are reasoning; <c>final</c> and <c>commentary</c> bodies are answer text (tool calls
/// on the commentary channel are not parsed into <c>tool_calls</c>). A reply that does not start with a header is all
/// answer, unchanged; so is a header longer than <see cref="MaxHeader"/> characters, which bounds what is held.
/// </summary>
internal sealed class HarmonySplitter : IReasoningSplitter
{
    public const string Start = "<|start|>", Channel = "<|channel|>", Message = "<|message|>", End = "<|end|>";
    public const string AnalysisChannel = "analysis";
    /// <summary>Headers are a role, a channel and an optional recipient and content type: a few dozen characters.</summary>
    public const int MaxHeader = 256;

    private enum State { Header, Body, Plain }

    private State _state = State.Header;
    private bool _analysis;
    private readonly StringBuilder _buffer = new();

    public void Push(string text, Action<string> reasoning, Action<string> answer)
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
                    _analysis = ChannelOf(s[..at]) == AnalysisChannel;
                    _buffer.Clear().Append(s, at + Message.Length, s.Length - at - Message.Length);
                    _state = State.Body;
                    continue;
                }
                else _state = State.Plain;
                _buffer.Clear();
                answer(s);
                return;
            }
            bool ended = MarkerText.CutAt(s, _buffer, End, out var body);
            if (body.Length > 0) (_analysis ? reasoning : answer)(body);
            if (!ended) return;
            _state = State.Header;
        }
    }

    public void Finish(Action<string> reasoning, Action<string> answer)
    {
        if (_buffer.Length > 0)
        {
            // an unfinished header is shown as it is; an unfinished body goes where its channel sends it
            (_state == State.Body && _analysis ? reasoning : answer)(_buffer.ToString());
            _buffer.Clear();
        }
    }

    /// <summary>A message header starts with <c>&lt;|start|&gt;</c> or <c>&lt;|channel|&gt;</c> (or is still a prefix of one).</summary>
    private static bool MayBeHeader(string s) =>
        s.StartsWith(Start, StringComparison.Ordinal) || s.StartsWith(Channel, StringComparison.Ordinal)
        || Start.StartsWith(s, StringComparison.Ordinal) || Channel.StartsWith(s, StringComparison.Ordinal);

    private static bool IsHeader(string h) =>
        (h.StartsWith(Start, StringComparison.Ordinal) || h.StartsWith(Channel, StringComparison.Ordinal)) && h.Contains(Channel, StringComparison.Ordinal);

    /// <summary>The channel name: the word after <c>&lt;|channel|&gt;</c> (e.g. <c>commentary</c> in
    /// <c>&lt;|channel|&gt;commentary to=functions.f</c>).</summary>
    private static string ChannelOf(string header)
    {
        int at = header.IndexOf(Channel, StringComparison.Ordinal) + Channel.Length;
        int end = at;
        while (end < header.Length && header[end] != ' ' && header[end] != '<') end++;
        return header[at..end];
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
