using System.Text;

namespace SharpInfer.Engine.Tools;

/// <summary>
/// Splits a reply into reasoning (<c>&lt;think&gt;…&lt;/think&gt;</c> at its start, or everything up to
/// <c>&lt;/think&gt;</c> when the prompt already opened the block) and the answer, incrementally: text is released as
/// soon as it cannot be part of a tag. Whitespace around the reasoning and before the answer is dropped (as
/// llama-server does). An unclosed block is all reasoning.
/// </summary>
internal sealed class ReasoningSplitter : IReasoningSplitter
{
    public const string Open = "<think>";
    public const string Close = "</think>";

    private enum State { Start, Thinking, AfterThinking, Answer }

    private State _state;
    private readonly StringBuilder _buffer = new();
    private string _heldSpace = "";
    private bool _reasoningStarted;

    /// <param name="startsInside">The prompt ends inside an opened block (e.g. DeepSeek-R1's generation prompt
    /// ends with <c>&lt;think&gt;\n</c>).</param>
    public ReasoningSplitter(bool startsInside) => _state = startsInside ? State.Thinking : State.Start;

    /// <summary>Feeds text; reasoning goes to <paramref name="reasoning"/>, answer text to <paramref name="answer"/>.</summary>
    public void Push(string text, Action<string> reasoning, Action<string> answer)
    {
        if (_state == State.Answer)
        {
            answer(text);   // decided: nothing is held any more
            return;
        }
        _buffer.Append(text);
        while (true)
        {
            switch (_state)
            {
                case State.Start:
                {
                    var s = _buffer.ToString();
                    var t = s.TrimStart();
                    if (t.StartsWith(Open, StringComparison.Ordinal))
                    {
                        _buffer.Clear().Append(t, Open.Length, t.Length - Open.Length);
                        _state = State.Thinking;
                        continue;
                    }
                    if (Open.StartsWith(t, StringComparison.Ordinal)) return;   // may still become <think>
                    _state = State.Answer;
                    continue;
                }
                case State.Thinking:
                {
                    bool closed = MarkerText.CutAt(_buffer.ToString(), _buffer, Close, out var thought);
                    EmitReasoning(thought, reasoning);
                    if (!closed) return;
                    _heldSpace = "";
                    _state = State.AfterThinking;
                    continue;
                }
                case State.AfterThinking:
                {
                    var s = _buffer.ToString().TrimStart();
                    _buffer.Clear();
                    if (s.Length == 0) return;
                    _buffer.Append(s);
                    _state = State.Answer;
                    continue;
                }
                default:
                    if (_buffer.Length > 0) answer(_buffer.ToString());
                    _buffer.Clear();
                    return;
            }
        }
    }

    /// <summary>The reply ended: what is held goes where it belongs.</summary>
    public void Finish(Action<string> reasoning, Action<string> answer)
    {
        if (_state == State.Start && _buffer.Length > 0) answer(_buffer.ToString());
        else if (_state == State.Thinking) EmitReasoning(_buffer.ToString(), reasoning);
        _buffer.Clear();
    }

    /// <summary>Reasoning without its leading whitespace, and with whitespace held back until more reasoning follows
    /// (so the whitespace before <c>&lt;/think&gt;</c> is never sent).</summary>
    private void EmitReasoning(string s, Action<string> reasoning)
    {
        if (!_reasoningStarted)
        {
            s = s.TrimStart();
            if (s.Length == 0) return;
            _reasoningStarted = true;
        }
        if (s.Length == 0) return;
        int body = s.TrimEnd().Length;
        if (body == 0)
        {
            _heldSpace += s;
            return;
        }
        reasoning(_heldSpace + s[..body]);
        _heldSpace = s[body..];
    }
}
