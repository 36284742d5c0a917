using System.Text.Json;
using SharpInfer.Engine;

namespace SharpInfer.Server.Api;

/// <summary>
/// llama.cpp server's <c>timings</c> object, beside <c>usage</c> in a response (and in each choice's final streamed
/// chunk): prompt and generation counts and times, and with speculative decoding <c>draft_n</c> (proposed tokens
/// verified) and <c>draft_n_accepted</c>. With several choices the counts add up and the times are the longest
/// (the choices run at once).
/// </summary>
internal static class TimingsJson
{
    public static void Write(Utf8JsonWriter w, IEnumerable<RequestTimings?> choices, bool speculative)
    {
        int promptN = 0, cacheN = 0, predictedN = 0, draftN = 0, draftAccepted = 0;
        double promptMs = 0, predictedMs = 0, perSecond = 0;
        int rated = 0;
        foreach (var t in choices)
        {
            if (t == null) continue;
            promptN += t.PromptTokens - t.CachedPromptTokens;
            cacheN += t.CachedPromptTokens;
            predictedN += t.CompletionTokens;
            draftN += t.DraftTokens;
            draftAccepted += t.DraftAccepted;
            promptMs = Math.Max(promptMs, t.PrefillTime * 1000);
            predictedMs = Math.Max(predictedMs, t.DecodeTime * 1000);
            // tokens after the first, over the time from the first to the last (the first came with the prompt)
            if (t.DecodeTime > 0 && t.CompletionTokens > 1)
            {
                perSecond += (t.CompletionTokens - 1) / t.DecodeTime;
                rated++;
            }
        }
        w.WriteStartObject("timings");
        w.WriteNumber("cache_n", cacheN);
        w.WriteNumber("prompt_n", promptN);
        w.WriteNumber("prompt_ms", Math.Round(promptMs, 3));
        // llama-server's rates: per computed prompt token, and prompt tokens per second of the prompt's computation
        w.WriteNumber("prompt_per_token_ms", promptN > 0 ? Math.Round(promptMs / promptN, 3) : 0);
        w.WriteNumber("prompt_per_second", promptMs > 0 ? Math.Round(promptN * 1000.0 / promptMs, 3) : 0);
        w.WriteNumber("predicted_n", predictedN);
        w.WriteNumber("predicted_ms", Math.Round(predictedMs, 3));
        double tokensPerSecond = rated > 0 ? perSecond / rated : 0;
        w.WriteNumber("predicted_per_token_ms", tokensPerSecond > 0 ? Math.Round(1000.0 / tokensPerSecond, 3) : 0);
        w.WriteNumber("predicted_per_second", Math.Round(tokensPerSecond, 3));
        if (speculative)
        {
            w.WriteNumber("draft_n", draftN);
            w.WriteNumber("draft_n_accepted", draftAccepted);
        }
        w.WriteEndObject();
    }
}
