using System.Text.Json;
using SharpInfer.Tokenization;

namespace SharpInfer.Server.Api;

/// <summary>
/// Refuses prompts that cannot fit the context before any work is spent on them: no string decoded, no node
/// created, no template rendered, no token produced. A text of more than <c>context × MaxBytesPerToken</c> UTF-8
/// bytes has more tokens than the context holds (<see cref="Tokenizer.MaxBytesPerToken"/> says why the bound is sound),
/// and a list of token ids is simply counted. Prompts that pass are tokenized with <see cref="Tokenizer.EncodeAtMost"/>,
/// which stops once the budget is exceeded.
/// </summary>
internal static class PromptLimits
{
    /// <summary>A completions <c>prompt</c>: a string, a list of strings, a list of ids or a list of lists of ids.</summary>
    public static void CheckCompletionPrompt(JsonBody body, Tokenizer tokenizer, int maxModelLen)
    {
        if (body.Source is not { } root || !root.TryGetProperty("prompt", out var prompt)) return;
        switch (prompt.ValueKind)
        {
            case JsonValueKind.String:
                CheckText(prompt, tokenizer, maxModelLen, "prompt");
                break;
            case JsonValueKind.Array:
                // a flat list of ids is one prompt; nested lists and strings are one prompt each
                if (prompt.GetArrayLength() >= maxModelLen && prompt[0].ValueKind == JsonValueKind.Number)
                    throw TooLong(maxModelLen, $"{prompt.GetArrayLength()} tokens", "prompt");
                foreach (var item in prompt.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.String) CheckText(item, tokenizer, maxModelLen, "prompt");
                    else if (item.ValueKind == JsonValueKind.Array && item.GetArrayLength() >= maxModelLen)
                        throw TooLong(maxModelLen, $"{item.GetArrayLength()} tokens", "prompt");
                }
                break;
        }
    }

    /// <summary>Chat <c>messages</c>: the text of any one user or system message (a string or a text part) that alone
    /// exceeds the context. Templates render every user and system message, so that text is part of the prompt;
    /// assistant and tool messages are left to the full check, since some templates drop parts of them (Qwen3 strips
    /// earlier reasoning).</summary>
    public static void CheckChatMessages(JsonBody body, Tokenizer tokenizer, int maxModelLen)
    {
        if (body.Source is not { } root || !root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array) return;
        foreach (var m in messages.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String) continue;
            if (!role.ValueEquals("user") && !role.ValueEquals("system")) continue;
            if (!m.TryGetProperty("content", out var content)) continue;
            if (content.ValueKind == JsonValueKind.String) CheckText(content, tokenizer, maxModelLen, "messages");
            else if (content.ValueKind == JsonValueKind.Array)
                foreach (var part in content.EnumerateArray())
                    if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String)
                        CheckText(text, tokenizer, maxModelLen, "messages");
        }
    }

    private static void CheckText(JsonElement text, Tokenizer tokenizer, int maxModelLen, string param)
    {
        // the prompt must have fewer tokens than the context (the engine refuses prompt length >= max_model_len)
        if (JsonRawString.Utf8Length(text) is { } bytes && tokenizer.IsLongerThan(bytes, maxModelLen - 1))
            throw TooLong(maxModelLen, $"{JsonRawString.Describe(bytes)} bytes of text, more than {maxModelLen - 1} tokens can hold", param);
    }

    /// <summary>The completions prompt tokenized within the context, or the same 400 as the engine's check.</summary>
    public static int[] Tokenize(PromptBuilder prompts, string text, int maxModelLen) =>
        prompts.TokenizeCompletionPrompt(text, maxModelLen - 1)
        ?? throw TooLong(maxModelLen, $"at least {maxModelLen} tokens", "prompt");

    public static ApiException TooLong(int maxModelLen, string what, string param) => ApiException.ContextLength(
        $"This model's maximum context length is {maxModelLen} tokens. However, your prompt has {what}. Please reduce the length of the prompt.",
        param, null, maxModelLen);
}
