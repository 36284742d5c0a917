using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpInfer.Engine.Tools;

/// <summary>
/// Finds tool calls in a reply, incrementally (for streaming) and identically however the text is split: text that
/// cannot start a call is released at once; text that may (a partial marker, an opened call) is held until it is
/// decided. A call that does not parse stays text, so no text that is not a call is ever lost; only whitespace that
/// separates calls is dropped. Formats (see <see cref="ToolCallFormat"/>): Hermes blocks anywhere in the reply;
/// Llama 3 JSON at the start of the reply or after <c>&lt;|python_tag|&gt;</c>; Mistral's array after <c>[TOOL_CALLS]</c>
/// or at the start;
/// generic JSON as the whole reply.
/// </summary>
internal sealed class ToolCallParser
{
    private static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private enum State { Start, Content, InCall, JsonReply }

    private readonly ToolCallFormat _format;
    private readonly string? _open, _close;
    private readonly StringBuilder _buffer = new();
    private State _state;
    private string _heldSpace = "";
    private bool _anyCalls;

    public ToolCallParser(ToolCallFormat format)
    {
        _format = format;
        (_open, _close) = format switch
        {
            ToolCallFormat.Hermes => ("<tool_call>", "</tool_call>"),
            ToolCallFormat.Llama3 => ("<|python_tag|>", (string?)null),
            ToolCallFormat.Mistral => ("[TOOL_CALLS]", null),
            _ => ((string?)null, (string?)null),
        };
        _state = format == ToolCallFormat.Hermes ? State.Content : State.Start;
    }

    public void Push(string text, Action<ChatOutputEvent> emit)
    {
        if (_state == State.Content && _buffer.Length == 0 && (_open == null || text.IndexOf(_open[0]) < 0))
        {
            EmitContent(text, emit);   // plain text that cannot start a marker: no buffering
            return;
        }
        _buffer.Append(text);
        while (true)
        {
            var s = _buffer.ToString();
            switch (_state)
            {
                case State.Start:
                {
                    var t = s.AsSpan().TrimStart();
                    if (t.Length == 0) return;
                    if (_open != null && t.Length < _open.Length && _open.AsSpan().StartsWith(t)) return;   // may become the marker
                    if (_open != null && t.StartsWith(_open, StringComparison.Ordinal))
                    {
                        _state = State.Content;
                        continue;
                    }
                    // a reply that opens with the calls' JSON: Llama 3 writes <|python_tag|> and Mistral [TOOL_CALLS]
                    // as control tokens, which decode to nothing
                    _state = t[0] == (_format == ToolCallFormat.Mistral ? '[' : '{') ? State.JsonReply : State.Content;
                    continue;
                }
                case State.Content:
                {
                    if (_open == null)
                    {
                        EmitContent(s, emit);
                        _buffer.Clear();
                        return;
                    }
                    bool opened = MarkerText.CutAt(s, _buffer, _open, out var content);
                    EmitContent(content, emit);
                    if (!opened) return;
                    _state = State.InCall;
                    continue;
                }
                case State.InCall when _close != null:
                {
                    int end = s.IndexOf(_close, StringComparison.Ordinal);
                    if (end < 0) return;
                    var inner = s[..end];
                    var call = ReadValue(inner, 0, out int stop) is { } node && MarkerText.IsWhiteSpace(inner.AsSpan(stop)) ? Call(node) : null;
                    if (call != null) EmitCall(call, emit);
                    else EmitContent(_open + inner + _close, emit);
                    _buffer.Clear().Append(s, end + _close.Length, s.Length - end - _close.Length);
                    _state = State.Content;
                    continue;
                }
                default:
                    return;   // held to the end of the reply
            }
        }
    }

    public void Finish(Action<ChatOutputEvent> emit)
    {
        var s = _buffer.ToString();
        _buffer.Clear();
        switch (_state)
        {
            case State.InCall when _close != null:
                EmitContent(_open + s, emit);   // never closed
                break;
            case State.InCall:
                if (!EmitPayload(s, emit)) EmitContent(_open + s, emit);
                break;
            case State.JsonReply:
                if (!EmitPayload(s, emit)) EmitContent(s, emit);
                break;
            default:
                EmitContent(s, emit);
                break;
        }
        if (!_anyCalls && _heldSpace.Length > 0) emit(ChatOutputEvent.Content(_heldSpace));
        _heldSpace = "";
    }

    /// <summary>The calls at the start of <paramref name="s"/> (and the text after them as content); false, emitting
    /// nothing, when there are none.</summary>
    private bool EmitPayload(string s, Action<ChatOutputEvent> emit)
    {
        var calls = new List<ToolCall>();
        int end = 0;
        string? response = null;
        switch (_format)
        {
            case ToolCallFormat.Mistral:
                if (ReadValue(s, 0, out end) is JsonArray arr && arr.Count > 0)
                    foreach (var item in arr)
                    {
                        if (item is null || Call(item) is not { } c) return false;
                        calls.Add(c);
                    }
                break;
            case ToolCallFormat.Llama3:
                // one or more call objects, separated by whitespace or ';'
                for (int pos = 0; ;)
                {
                    if (ReadValue(s, pos, out int stop) is not { } node || Call(node) is not { } c) break;
                    calls.Add(c);
                    end = stop;
                    pos = stop;
                    while (pos < s.Length && (char.IsWhiteSpace(s[pos]) || s[pos] == ';')) pos++;
                }
                break;
            default:
                if (ReadValue(s, 0, out end) is JsonObject o)
                {
                    if (o["tool_call"] is JsonObject one && Call(one) is { } c) calls.Add(c);
                    else if (o["tool_calls"] is JsonArray many && many.Count > 0)
                        foreach (var item in many)
                        {
                            if (item is null || Call(item) is not { } mc) return false;
                            calls.Add(mc);
                        }
                    else if (o.Count == 1 && o["response"] is JsonValue r && r.GetValueKind() == JsonValueKind.String) response = r.GetValue<string>();
                }
                break;
        }
        if (response != null) EmitContent(response, emit);
        else if (calls.Count == 0) return false;
        foreach (var c in calls) EmitCall(c, emit);
        EmitContent(s[end..], emit);
        return true;
    }

    private ToolCall? Call(JsonNode node)
    {
        if (node is not JsonObject o || o["name"] is not JsonValue n || n.GetValueKind() != JsonValueKind.String) return null;
        string name = n.GetValue<string>();
        if (name.Length == 0) return null;
        var args = o["arguments"] ?? o["parameters"];
        string json;
        switch (args)
        {
            case null: json = "{}"; break;
            case JsonObject: json = args.ToJsonString(Compact); break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                if (ReadValue(v.GetValue<string>(), 0, out int stop) is not JsonObject parsed || !MarkerText.IsWhiteSpace(v.GetValue<string>().AsSpan(stop))) return null;
                json = parsed.ToJsonString(Compact);
                break;
            default: return null;
        }
        string id = o["id"] is JsonValue idv && idv.GetValueKind() == JsonValueKind.String && idv.GetValue<string>() is { Length: > 0 } given
            ? given : ToolCall.NewId(_format);
        return new ToolCall(id, name, json);
    }

    private void EmitCall(ToolCall call, Action<ChatOutputEvent> emit)
    {
        _anyCalls = true;
        emit(ChatOutputEvent.Tool(call));
    }

    /// <summary>Content with whitespace runs held until more content follows: whitespace between or after calls is
    /// dropped, and released at the end only when the reply had no call.</summary>
    private void EmitContent(string s, Action<ChatOutputEvent> emit)
    {
        if (s.Length == 0) return;
        int body = s.TrimEnd().Length;
        if (body == 0)
        {
            _heldSpace += s;
            return;
        }
        var text = _heldSpace + s[..body];
        _heldSpace = s[body..];
        emit(ChatOutputEvent.Content(text));
    }

    /// <summary>The JSON value starting at <paramref name="start"/> (after whitespace), or null; <paramref name="end"/>
    /// is the index just after it.</summary>
    internal static JsonNode? ReadValue(string s, int start, out int end)
    {
        end = start;
        while (start < s.Length && char.IsWhiteSpace(s[start])) start++;
        if (start >= s.Length || s[start] is not ('{' or '[')) return null;
        var bytes = Encoding.UTF8.GetBytes(s, start, s.Length - start);
        try
        {
            var reader = new Utf8JsonReader(bytes, isFinalBlock: true, state: default);
            if (!reader.Read() || !reader.TrySkip()) return null;
            int consumed = (int)reader.BytesConsumed;
            var node = JsonNode.Parse(bytes.AsSpan(0, consumed));
            end = start + Encoding.UTF8.GetCharCount(bytes, 0, consumed);
            return node;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
