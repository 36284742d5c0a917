using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Tokenization;

namespace SharpInfer.Server.Api;

/// <summary>The JSON of llama-server's native completion results: <c>completion_probabilities</c>, <c>timings</c>,
/// <c>generation_settings</c> and the final result object, with <c>response_fields</c> picking nested values.</summary>
internal static class LlamaCompletionJson
{
    /// <summary>The most negative float: llama-server's log-probability for probability 0 (JSON has no -inf).</summary>
    private const float LogZero = float.MinValue;

    /// <summary><c>completion_probabilities</c>: per token its id, text, bytes and log-probability (or probability
    /// with post_sampling_probs) and the <c>n_probs</c> most likely alternatives, all from the model's distribution.</summary>
    public static void WriteProbabilities(Utf8JsonWriter w, Tokenizer t, IEnumerable<TokenLogProbs> tokens, int nProbs, bool post)
    {
        w.WriteStartArray("completion_probabilities");
        foreach (var lp in tokens)
        {
            w.WriteStartObject();
            WriteToken(w, t, lp.TokenId, lp.LogProb, post);
            w.WriteStartArray(post ? "top_probs" : "top_logprobs");
            for (int i = 0; i < lp.Top.Length && i < nProbs; i++)
            {
                w.WriteStartObject();
                WriteToken(w, t, lp.Top[i].Id, lp.Top[i].LogProb, post);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void WriteToken(Utf8JsonWriter w, Tokenizer t, int id, float logProb, bool post)
    {
        var bytes = t.PieceBytes(id, renderSpecial: true);
        w.WriteNumber("id", id);
        w.WriteString("token", ValidPrefix(bytes));
        w.WriteStartArray("bytes");
        foreach (var b in bytes) w.WriteNumberValue(b);
        w.WriteEndArray();
        if (post) w.WriteNumber("prob", float.IsFinite(logProb) ? MathF.Exp(logProb) : 0f);
        else w.WriteNumber("logprob", float.IsFinite(logProb) ? logProb : LogZero);
    }

    /// <summary>The text of a piece up to its first incomplete UTF-8 sequence (llama-server's validate_utf8).</summary>
    private static string ValidPrefix(ReadOnlySpan<byte> bytes)
    {
        int n = bytes.Length;
        while (n > 0 && !System.Text.Unicode.Utf8.IsValid(bytes[..n])) n--;
        return Encoding.UTF8.GetString(bytes[..n]);
    }

    /// <summary>llama-server's <c>timings</c>: counts and milliseconds of the prompt (tokens computed, not those the
    /// cache served) and of the generation, with per-token and per-second rates.</summary>
    public static void WriteTimings(Utf8JsonWriter w, int cacheN, int promptN, double promptMs, int predictedN, double predictedMs,
                                    int draftN = 0, int draftAccepted = 0)
    {
        w.WriteStartObject("timings");
        w.WriteNumber("cache_n", cacheN);
        w.WriteNumber("prompt_n", promptN);
        w.WriteNumber("prompt_ms", Math.Round(promptMs, 3));
        w.WriteNumber("prompt_per_token_ms", promptN > 0 ? Math.Round(promptMs / promptN, 3) : 0);
        w.WriteNumber("prompt_per_second", promptMs > 0 ? Math.Round(promptN * 1000.0 / promptMs, 3) : 0);
        w.WriteNumber("predicted_n", predictedN);
        w.WriteNumber("predicted_ms", Math.Round(predictedMs, 3));
        w.WriteNumber("predicted_per_token_ms", predictedN > 0 ? Math.Round(predictedMs / predictedN, 3) : 0);
        w.WriteNumber("predicted_per_second", predictedMs > 0 ? Math.Round(predictedN * 1000.0 / predictedMs, 3) : 0);
        if (draftN > 0)
        {
            w.WriteNumber("draft_n", draftN);
            w.WriteNumber("draft_n_accepted", draftAccepted);
        }
        w.WriteEndObject();
    }

    /// <summary>The settings the request ran with, under llama-server's names (samplers the engine does not have show
    /// their neutral values).</summary>
    public static void WriteGenerationSettings(Utf8JsonWriter w, LlamaCompletionRequest r, string? propertyName = "generation_settings")
    {
        var s = r.Params.Sampling;
        if (propertyName != null) w.WriteStartObject(propertyName);
        else w.WriteStartObject();
        w.WriteNumber("seed", s.Seed is { } seed ? seed : LlamaCompletionRequest.RandomSeed);
        w.WriteNumber("temperature", s.Temperature);
        w.WriteNumber("dynatemp_range", 0);
        w.WriteNumber("dynatemp_exponent", 1);
        w.WriteNumber("top_k", s.TopK);
        w.WriteNumber("top_p", s.TopP);
        w.WriteNumber("min_p", s.MinP);
        w.WriteNumber("top_n_sigma", -1);
        w.WriteNumber("xtc_probability", 0);
        w.WriteNumber("xtc_threshold", 0.1);
        w.WriteNumber("typical_p", 1);
        w.WriteNumber("repeat_last_n", s.PenaltyLastN);
        w.WriteNumber("repeat_penalty", s.RepetitionPenalty);
        w.WriteNumber("presence_penalty", s.PresencePenalty);
        w.WriteNumber("frequency_penalty", s.FrequencyPenalty);
        w.WriteNumber("dry_multiplier", 0);
        w.WriteNumber("dry_base", 1.75);
        w.WriteNumber("dry_allowed_length", 2);
        w.WriteNumber("dry_penalty_last_n", -1);
        w.WriteNumber("mirostat", 0);
        w.WriteNumber("mirostat_tau", 5);
        w.WriteNumber("mirostat_eta", 0.1);
        w.WriteNumber("adaptive_target", -1);
        w.WriteNumber("adaptive_decay", 0.9);
        w.WriteStartArray("stop");
        foreach (var stop in s.Stop) w.WriteStringValue(stop);
        w.WriteEndArray();
        w.WriteNumber("max_tokens", r.NPredict);
        w.WriteNumber("n_predict", r.NPredict);
        w.WriteNumber("n_keep", r.NKeep);
        w.WriteNumber("n_discard", 0);
        w.WriteBoolean("ignore_eos", s.IgnoreEos);
        w.WriteBoolean("stream", r.Params.Stream);
        w.WriteStartArray("logit_bias");
        if (s.LogitBias != null)
            foreach (var (id, bias) in s.LogitBias)
            {
                w.WriteStartObject();
                // ignore_eos's bans are llama-server's -inf, which JSON writes as null
                if (r.EogBans.Contains(id)) w.WriteNull("bias");
                else w.WriteNumber("bias", bias);
                w.WriteNumber("token", id);
                w.WriteEndObject();
            }
        w.WriteEndArray();
        w.WriteNumber("n_probs", r.NProbs);
        w.WriteNumber("min_keep", 0);
        w.WriteBoolean("grammar_lazy", false);
        w.WriteStartArray("samplers");
        foreach (var name in r.Samplers) w.WriteStringValue(name);
        w.WriteEndArray();
        w.WriteBoolean("timings_per_token", r.TimingsPerToken);
        w.WriteBoolean("post_sampling_probs", r.PostSamplingProbs);
        w.WriteStartArray("lora");
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary><c>response_fields</c>: only the listed values, each under its path (<c>"generation_settings/n_predict"</c>);
    /// a path that names nothing is left out (as llama-server).</summary>
    public static void WritePicked(Utf8JsonWriter w, Action<Utf8JsonWriter> full, IReadOnlyList<string> fields)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(4096);
        using (var inner = new Utf8JsonWriter(buffer)) full(inner);
        var root = JsonNode.Parse(buffer.WrittenSpan);
        w.WriteStartObject();
        foreach (var path in fields)
        {
            JsonNode? node = root;
            foreach (var part in path.Split('/'))
            {
                node = node is JsonObject o && o.TryGetPropertyValue(part, out var next) ? next : null;
                if (node is null) break;
            }
            if (node is null) continue;
            w.WritePropertyName(path);
            node.WriteTo(w);
        }
        w.WriteEndObject();
    }
}
