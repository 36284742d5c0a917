using SharpInfer.Sampling;

namespace SharpInfer.Engine;

/// <summary>Why a generation ended (OpenAI's finish_reason values).</summary>
internal enum FinishReason
{
    /// <summary>An end-of-generation token or a stop string.</summary>
    Stop,
    /// <summary>max_tokens reached, or the context is full.</summary>
    Length,
    /// <summary>The request was cancelled.</summary>
    Abort,
}

internal static class FinishReasonExtensions
{
    public static string ToApiString(this FinishReason r) => r switch
    {
        FinishReason.Stop => "stop",
        FinishReason.Length => "length",
        _ => "abort",
    };
}

/// <summary>One generated token: its id, the new text it completes (may be empty while a UTF-8 sequence or a possible
/// stop string is pending), its log-probability and alternatives when asked for, and the finish reason on the last.</summary>
internal sealed record GenerationEvent(int TokenId, string Text, float LogProb, TokenLogProb[]? TopLogProbs, FinishReason? Finish)
{
    /// <summary>A final event that carries no token (end-of-generation token, stop string or cancellation).</summary>
    public bool IsFinalOnly => TokenId < 0;
}
