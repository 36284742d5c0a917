using System.Text.Json;
using SharpInfer.Engine;
using SharpInfer.Engine.Tools;

namespace SharpInfer.Server.Api;

/// <summary>Chat replies with reasoning and tool calls in OpenAI's shapes: the whole <c>message</c>, and streamed
/// <c>delta</c>s (<c>reasoning_content</c>, <c>content</c>, and <c>tool_calls</c>: index, id, type and name first,
/// then the arguments).</summary>
internal static class ChatReplyJson
{
    /// <summary><c>message</c> of a non-streamed reply: content is null when the reply is only calls.</summary>
    public static void WriteMessage(Utf8JsonWriter w, ChatOutputParser.Reply reply)
    {
        w.WriteStartObject("message");
        w.WriteString("role", "assistant");
        if (reply.Content is null && reply.Calls.Count > 0) w.WriteNull("content");
        else w.WriteString("content", reply.Content ?? "");
        if (reply.Reasoning is not null) w.WriteString("reasoning_content", reply.Reasoning);
        if (reply.Calls.Count > 0)
        {
            w.WriteStartArray("tool_calls");
            foreach (var c in reply.Calls)
            {
                w.WriteStartObject();
                w.WriteString("id", c.Id);
                w.WriteString("type", "function");
                w.WriteStartObject("function");
                w.WriteString("name", c.Name);
                w.WriteString("arguments", c.Arguments);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteNull("refusal");
        w.WriteEndObject();
    }

    /// <summary>"tool_calls" when the reply made calls and ended normally.</summary>
    public static string FinishReason(FinishReason finish, bool madeCalls) =>
        madeCalls && finish == Engine.FinishReason.Stop ? "tool_calls" : finish.ToApiString();

    /// <summary>The <c>delta</c> objects one parser event becomes (a call: its header, then its arguments).</summary>
    public static IEnumerable<Action<Utf8JsonWriter>> Deltas(ChatOutputEvent e, int callIndex)
    {
        switch (e.Kind)
        {
            case ChatOutputKind.Content:
                yield return w => w.WriteString("content", e.Text);
                break;
            case ChatOutputKind.Reasoning:
                yield return w => w.WriteString("reasoning_content", e.Text);
                break;
            default:
                var c = e.Call!;
                yield return w => ToolCallDelta(w, callIndex, c, header: true);
                yield return w => ToolCallDelta(w, callIndex, c, header: false);
                break;
        }
    }

    private static void ToolCallDelta(Utf8JsonWriter w, int index, ToolCall c, bool header)
    {
        w.WriteStartArray("tool_calls");
        w.WriteStartObject();
        w.WriteNumber("index", index);
        if (header)
        {
            w.WriteString("id", c.Id);
            w.WriteString("type", "function");
        }
        w.WriteStartObject("function");
        if (header)
        {
            w.WriteString("name", c.Name);
            w.WriteString("arguments", "");
        }
        else w.WriteString("arguments", c.Arguments);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
    }
}
