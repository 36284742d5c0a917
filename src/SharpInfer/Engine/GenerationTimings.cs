namespace SharpInfer.Engine;

/// <summary>Counts and wall-clock times of one generation (llama.cpp's "prompt eval" and "eval" lines).</summary>
internal sealed class GenerationTimings
{
    public int PromptTokens { get; set; }
    /// <summary>Prompt tokens whose KV was already cached (prefix reuse) and were not recomputed.</summary>
    public int CachedPromptTokens { get; set; }
    public double PromptMs { get; set; }
    public int GeneratedTokens { get; set; }
    /// <summary>Single-token forward passes after the prompt (each generated token but the last is fed back).</summary>
    public int DecodePasses { get; set; }
    /// <summary>Time from the end of the prompt pass to the end of generation (decode passes and sampling).</summary>
    public double GenerationMs { get; set; }
    /// <summary>Speculative decoding: proposed tokens verified, and accepted (llama.cpp's draft_n, draft_n_accepted).</summary>
    public int DraftTokens { get; set; }
    public int DraftAccepted { get; set; }

    public int ProcessedPromptTokens => PromptTokens - CachedPromptTokens;
    public double PromptTokensPerSecond => PromptMs > 0 ? ProcessedPromptTokens / (PromptMs / 1000.0) : 0;
    public double GenerationTokensPerSecond => GenerationMs > 0 ? DecodePasses / (GenerationMs / 1000.0) : 0;
}
