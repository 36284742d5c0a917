using System.Text.Json;

namespace SharpInfer.Engine.Speculation;

/// <summary>
/// vLLM's <c>--speculative-config</c>: how the engine proposes tokens for the target model to verify in one forward
/// pass. <c>{"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_max": 4, "prompt_lookup_min": 2}</c>
/// looks the last n tokens up in the prompt and output so far (prompt lookup decoding). Outputs are exactly the
/// non-speculative ones (greedy: token for token; sampled: in distribution).
/// </summary>
internal sealed record SpeculativeConfig
{
    /// <summary>"ngram" (prompt lookup) or "draft_model" (a smaller model with the same vocabulary: <see cref="Model"/>).</summary>
    public string Method { get; init; } = "ngram";
    /// <summary>Draft model file (vLLM's "model", llama.cpp's -md); implies method "draft_model".</summary>
    public string? Model { get; init; }
    /// <summary>Most tokens proposed per sequence and step (k); the engine adapts below it per request.</summary>
    public int NumSpeculativeTokens { get; init; } = 5;
    /// <summary>Longest suffix (in tokens) looked up for n-gram proposals.</summary>
    public int PromptLookupMax { get; init; } = 4;
    /// <summary>Shortest suffix looked up; shorter matches propose nothing.</summary>
    public int PromptLookupMin { get; init; } = 2;
    /// <summary>vLLM's <c>disable_by_batch_size</c>: no proposals while more sequences than this are decoding, where
    /// verification would cost more compute than the saved steps give back (decoding a large batch is
    /// compute-bound, not memory-bound).</summary>
    public int DisableByBatchSize { get; init; } = 4;

    /// <summary>Tests only: accept every proposal unverified (a deliberately wrong rule the distribution test must catch).</summary>
    internal bool AcceptAllForTests { get; init; }
    /// <summary>Tests only: redraw rejected sampled-draft positions from p instead of max(0, p − q) (a wrong rule).</summary>
    internal bool WrongResidualForTests { get; init; }
    /// <summary>Tests only: a draft model proposes its argmax for sampled requests too (one-hot q, the earlier rule), to
    /// compare acceptance with sampled drafting.</summary>
    internal bool ArgmaxDraftsForTests { get; init; }

    public const int MaxSpeculativeTokens = 16;

    public SpeculativeConfig Validate()
    {
        static void Check(bool ok, string field, string msg)
        {
            if (!ok) throw new InvalidRequestException($"speculative config: {field} {msg}", "speculative_config");
        }
        Check(Method is "ngram" or "draft_model", "method", $"must be \"ngram\" or \"draft_model\", got \"{Method}\"");
        Check(Method != "draft_model" || !string.IsNullOrEmpty(Model), "model", "is required by method \"draft_model\" (the draft GGUF file)");
        Check(Method != "ngram" || Model == null, "model", "is a draft model, which method \"ngram\" does not use");
        Check(NumSpeculativeTokens is >= 1 and <= MaxSpeculativeTokens, "num_speculative_tokens", $"must be between 1 and {MaxSpeculativeTokens}, got {NumSpeculativeTokens}");
        Check(PromptLookupMin is >= 1 and <= 64, "prompt_lookup_min", $"must be between 1 and 64, got {PromptLookupMin}");
        Check(PromptLookupMax >= PromptLookupMin && PromptLookupMax <= 64, "prompt_lookup_max", $"must be between prompt_lookup_min ({PromptLookupMin}) and 64, got {PromptLookupMax}");
        Check(DisableByBatchSize >= 1, "disable_by_batch_size", $"must be at least 1, got {DisableByBatchSize}");
        return this;
    }

    /// <summary>Parses vLLM's JSON form; unknown keys and wrong types are errors naming the key.</summary>
    public static SpeculativeConfig Parse(string json)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException($"speculative config is not valid JSON: {e.Message}", "speculative_config");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidRequestException("speculative config must be a JSON object", "speculative_config");
            var c = new SpeculativeConfig();
            bool methodGiven = false;
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "method") methodGiven = true;
                c = p.Name switch
                {
                    "method" => c with { Method = Text(p) },
                    "model" => c with { Model = Text(p) },
                    "num_speculative_tokens" => c with { NumSpeculativeTokens = Int(p) },
                    "prompt_lookup_max" => c with { PromptLookupMax = Int(p) },
                    "prompt_lookup_min" => c with { PromptLookupMin = Int(p) },
                    "disable_by_batch_size" => c with { DisableByBatchSize = Int(p) },
                    _ => throw new InvalidRequestException($"speculative config: unknown key \"{p.Name}\"", "speculative_config"),
                };
            }
            if (!methodGiven && c.Model != null) c = c with { Method = "draft_model" };
            return c.Validate();
        }
    }

    private static string Text(JsonProperty p) => p.Value.ValueKind == JsonValueKind.String
        ? p.Value.GetString()!
        : throw new InvalidRequestException($"speculative config: {p.Name} must be a string", "speculative_config");

    private static int Int(JsonProperty p) => p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out int v)
        ? v
        : throw new InvalidRequestException($"speculative config: {p.Name} must be an integer", "speculative_config");
}
