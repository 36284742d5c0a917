namespace SharpInfer.Sampling;

/// <summary>
/// How to pick each next token and when to stop. Defaults follow OpenAI's API (temperature 1, no top-k);
/// <see cref="Validate"/> rejects out-of-range values with an <see cref="InvalidRequestException"/> naming the field.
/// </summary>
internal sealed record SamplingParams
{
    /// <summary>0 means greedy (argmax).</summary>
    public float Temperature { get; init; } = 1.0f;
    /// <summary>Keep the k most likely tokens; 0 (or -1) disables.</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of most likely tokens whose probability adds up to at least p; 1 disables.</summary>
    public float TopP { get; init; } = 1.0f;
    /// <summary>Drop tokens less likely than min_p × the most likely one; 0 disables.</summary>
    public float MinP { get; init; }
    /// <summary>Divides positive (multiplies negative) logits of tokens seen in the last <see cref="PenaltyLastN"/>
    /// tokens of prompt and output (llama.cpp and Hugging Face semantics); 1 disables.</summary>
    public float RepetitionPenalty { get; init; } = 1.0f;
    /// <summary>Subtracted once from the logit of every token already generated (OpenAI semantics).</summary>
    public float PresencePenalty { get; init; }
    /// <summary>Subtracted from a token's logit once per time it has been generated (OpenAI semantics).</summary>
    public float FrequencyPenalty { get; init; }
    /// <summary>Window of the repetition penalty; -1 = the whole sequence.</summary>
    public int PenaltyLastN { get; init; } = 64;
    /// <summary>Seed for reproducible sampling; null picks one at random.</summary>
    public ulong? Seed { get; init; }
    /// <summary>llama.cpp's sampler chain instead of Hugging Face's/vLLM's order: top-k → top-p → min-p on the raw
    /// logits, then temperature, then llama.cpp's <c>dist</c> draw with <c>std::mt19937</c> seeded with the (32-bit)
    /// seed, so that the same seed and logits give the same tokens as llama.cpp. llama-server's native routes use it.</summary>
    public bool LlamaCppChain { get; init; }
    public int MaxTokens { get; init; } = 256;
    /// <summary>Generation stops before the first occurrence of any of these strings (not included in the output).</summary>
    public IReadOnlyList<string> Stop { get; init; } = [];
    /// <summary>Added to the raw logit of the given token ids before sampling.</summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }
    /// <summary>Keep generating past end-of-generation tokens (benchmarks).</summary>
    public bool IgnoreEos { get; init; }
    /// <summary>Report the log-probability of each chosen token and this many alternatives (0 = chosen only); null = none.</summary>
    public int? Logprobs { get; init; }
    /// <summary>Per-request logits processor (e.g. a grammar constraint), applied before every other rule.</summary>
    public ILogitsProcessorFactory? LogitsProcessor { get; init; }

    public bool IsGreedy => Temperature <= 0f;

    public static SamplingParams Greedy(int maxTokens = 256) => new() { Temperature = 0, MaxTokens = maxTokens };

    public const int MaxLogprobs = 20;

    /// <summary>Throws <see cref="InvalidRequestException"/> for the first invalid field.</summary>
    public SamplingParams Validate(int vocabSize)
    {
        static void Check(bool ok, string field, string msg)
        {
            if (!ok) throw new InvalidRequestException($"'{field}' {msg}", field);
        }
        Check(float.IsFinite(Temperature) && Temperature >= 0 && Temperature <= 100, "temperature", $"must be between 0 and 100, got {Temperature}");
        Check(TopK >= -1, "top_k", $"must be -1, 0 (disabled) or positive, got {TopK}");
        Check(float.IsFinite(TopP) && TopP > 0 && TopP <= 1, "top_p", $"must be in (0, 1], got {TopP}");
        Check(float.IsFinite(MinP) && MinP >= 0 && MinP <= 1, "min_p", $"must be in [0, 1], got {MinP}");
        Check(float.IsFinite(RepetitionPenalty) && RepetitionPenalty > 0 && RepetitionPenalty <= 10, "repetition_penalty", $"must be in (0, 10], got {RepetitionPenalty}");
        Check(float.IsFinite(PresencePenalty) && PresencePenalty >= -2 && PresencePenalty <= 2, "presence_penalty", $"must be between -2 and 2, got {PresencePenalty}");
        Check(float.IsFinite(FrequencyPenalty) && FrequencyPenalty >= -2 && FrequencyPenalty <= 2, "frequency_penalty", $"must be between -2 and 2, got {FrequencyPenalty}");
        Check(PenaltyLastN >= -1, "repeat_last_n", $"must be -1 or more, got {PenaltyLastN}");
        Check(MaxTokens >= 1, "max_tokens", $"must be at least 1, got {MaxTokens}");
        Check(Stop.Count <= 16, "stop", $"allows at most 16 strings, got {Stop.Count}");
        foreach (var s in Stop) Check(!string.IsNullOrEmpty(s), "stop", "strings must not be empty");
        Check(Logprobs is null || (Logprobs >= 0 && Logprobs <= MaxLogprobs), "top_logprobs", $"must be between 0 and {MaxLogprobs}, got {Logprobs}");
        if (LogitBias != null)
            foreach (var (id, bias) in LogitBias)
            {
                Check(id >= 0 && id < vocabSize, "logit_bias", $"token id {id} is outside the vocabulary (0..{vocabSize - 1})");
                Check(float.IsFinite(bias) && bias >= -100 && bias <= 100, "logit_bias", $"values must be between -100 and 100, got {bias}");
            }
        return this;
    }
}
