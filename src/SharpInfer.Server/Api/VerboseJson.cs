using System.Text.Json;
using SharpInfer.Engine;
using SharpInfer.Tokenization;

namespace SharpInfer.Server.Api;

/// <summary>
/// llama-server's <c>__verbose</c> debug object, added to a non-streamed OpenAI-style response when the request sets
/// <c>"verbose": true</c> or the server runs with <c>--verbose</c>: the first choice as llama-server's native
/// completion result, whose <c>prompt</c> is the prompt's tokens turned back into text with special tokens written
/// out (what the model saw after templating and BOS). <c>generation_settings</c> and <c>timings</c> are left out:
/// the response carries its own <c>timings</c>.
/// </summary>
internal static class VerboseJson
{
    public static void Write(Utf8JsonWriter w, Tokenizer tokenizer, string model, int[] promptTokens, string content,
                             int completionTokens, FinishReason? finish)
    {
        w.WriteStartObject("__verbose");
        w.WriteNumber("index", 0);
        w.WriteString("content", content);
        w.WriteStartArray("tokens");
        w.WriteEndArray();
        w.WriteNumber("id_slot", -1);
        w.WriteBoolean("stop", true);
        w.WriteString("model", model);
        w.WriteNumber("tokens_predicted", completionTokens);
        w.WriteNumber("tokens_evaluated", promptTokens.Length);
        w.WriteString("prompt", tokenizer.Decode(promptTokens, renderSpecial: true));
        w.WriteBoolean("has_new_line", content.Contains('\n', StringComparison.Ordinal));
        w.WriteBoolean("truncated", false);
        w.WriteString("stop_type", finish switch
        {
            FinishReason.Stop => "eos",
            FinishReason.Length => "limit",
            _ => "none",
        });
        w.WriteString("stopping_word", "");
        w.WriteNumber("tokens_cached", promptTokens.Length + completionTokens);
        w.WriteEndObject();
    }
}
