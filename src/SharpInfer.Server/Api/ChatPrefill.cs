using System.Text;
using System.Text.Json.Nodes;

namespace SharpInfer.Server.Api;

/// <summary>
/// Continuing the final assistant message instead of opening a new turn, as llama-server (and Ollama) do when a
/// conversation ends with an assistant message, and as vLLM's <c>continue_final_message: true</c> asks: the prompt is
/// the conversation before that message with the generation prompt, followed by the message's text (text parts
/// joined with a blank line, as llama.cpp's <c>render_content</c>), so the reply goes on from it.
/// </summary>
internal static class ChatPrefill
{
    /// <summary>The messages to render and the text to append; <paramref name="addGenerationPrompt"/> becomes true when
    /// the last message is continued. <c>continue_final_message: false</c> turns the implicit prefill off.</summary>
    public static (JsonArray Messages, string? Continuation) Split(JsonArray messages, JsonBody body, ref bool addGenerationPrompt)
    {
        bool? explicitContinue = body.Bool("continue_final_message");
        // vLLM's and llama-server's rule: continuing the last assistant message and opening a new one contradict
        if (addGenerationPrompt && explicitContinue == true)
            throw ApiException.BadRequest("'add_generation_prompt' and 'continue_final_message' cannot both be true.", "continue_final_message");
        if (explicitContinue == false || messages.Count < 2 || !IsAssistant(messages[^1])) return (messages, null);
        if (explicitContinue == null && IsAssistant(messages[^2]))
            throw ApiException.BadRequest("Cannot have 2 or more assistant messages at the end of the list.", "messages");
        var last = (JsonObject)messages[^1]!;
        var before = new JsonArray();
        for (int i = 0; i < messages.Count - 1; i++) before.Add(messages[i]?.DeepClone());
        addGenerationPrompt = true;
        return (before, Text(last["content"]));
    }

    private static bool IsAssistant(JsonNode? m) => m is JsonObject o && o["role"] is JsonValue r && r.TryGetValue(out string? s) && s == "assistant";

    private static string Text(JsonNode? content)
    {
        if (content is JsonValue v && v.TryGetValue(out string? s)) return s;
        if (content is not JsonArray parts) return "";
        var text = new StringBuilder();
        foreach (var part in parts)
        {
            if (part is not JsonObject p || (string?)p["type"] != "text" || p["text"] is not JsonValue t || !t.TryGetValue(out string? piece)) continue;
            if (text.Length > 0) text.Append("\n\n");
            text.Append(piece);
        }
        return text.ToString();
    }
}
