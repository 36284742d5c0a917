using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.AI;

namespace SharpInfer.Extensions.AI;

/// <summary>Microsoft.Extensions.AI's messages and options ↔ the <see cref="Llm"/> facade's typed ones.</summary>
internal static class ChatMessageMapping
{
    public static List<LlmChatMessage> ToLlm(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = new List<LlmChatMessage>();
        if (options?.Instructions is { Length: > 0 } instructions) list.Add(LlmChatMessage.System(instructions));
        foreach (var m in messages)
        {
            var role = m.Role == ChatRole.System ? LlmChatRole.System
                : m.Role == ChatRole.Assistant ? LlmChatRole.Assistant
                : m.Role == ChatRole.Tool ? LlmChatRole.Tool
                : m.Role == ChatRole.User ? LlmChatRole.User
                : throw new NotSupportedException($"the chat role '{m.Role}' is not supported (system, user, assistant, tool)");
            string? text = null;
            List<LlmToolCall>? calls = null;
            foreach (var content in m.Contents)
            {
                switch (content)
                {
                    case TextContent t:
                        text += t.Text;
                        break;
                    case FunctionCallContent call:
                        (calls ??= []).Add(new LlmToolCall(call.CallId, call.Name,
                            JsonSerializer.Serialize(call.Arguments ?? new Dictionary<string, object?>(), TypeInfo<IDictionary<string, object?>>())));
                        break;
                    case FunctionResultContent result:
                        // each result is its own tool message, as OpenAI's API has it
                        list.Add(LlmChatMessage.ToolResult(result.CallId, ResultText(result)));
                        break;
                    case TextReasoningContent or UsageContent:
                        break;   // earlier reasoning is not sent back (chat templates drop it from history)
                    default:
                        throw new NotSupportedException($"{content.GetType().Name} in a '{m.Role}' message is not supported: SharpInfer's models take text");
                }
            }
            if (text != null || calls != null || (role != LlmChatRole.Tool && !m.Contents.Any(c => c is FunctionResultContent)))
                list.Add(new LlmChatMessage(role, text ?? (role == LlmChatRole.Assistant ? null : "")) { ToolCalls = calls });
        }
        return list;
    }

    private static string ResultText(FunctionResultContent r) => r.Result switch
    {
        null => r.Exception is { } e ? "Error: " + e.Message : "",
        string s => s,
        JsonElement { ValueKind: JsonValueKind.String } e => e.GetString()!,
        var o => JsonSerializer.Serialize(o, AIJsonUtilities.DefaultOptions.GetTypeInfo(o.GetType())),
    };

    public static LlmChatOptions ToLlm(ChatOptions? o, LlmChatOptions defaults)
    {
        if (o is null) return defaults;
        var r = defaults with
        {
            Temperature = o.Temperature ?? defaults.Temperature,
            TopP = o.TopP ?? defaults.TopP,
            TopK = o.TopK ?? defaults.TopK,
            MaxTokens = o.MaxOutputTokens ?? defaults.MaxTokens,
            FrequencyPenalty = o.FrequencyPenalty ?? defaults.FrequencyPenalty,
            PresencePenalty = o.PresencePenalty ?? defaults.PresencePenalty,
            Seed = o.Seed is { } seed ? unchecked((ulong)seed) : defaults.Seed,
            Stop = o.StopSequences is { Count: > 0 } stop ? [.. stop] : defaults.Stop,
            ParallelToolCalls = o.AllowMultipleToolCalls ?? defaults.ParallelToolCalls,
        };
        if (o.AdditionalProperties is { } extra)
        {
            if (extra.TryGetValue("min_p", out float minP)) r = r with { MinP = minP };
            if (extra.TryGetValue("repetition_penalty", out float rep)) r = r with { RepetitionPenalty = rep };
        }
        switch (o.ResponseFormat)
        {
            case ChatResponseFormatJson json:
                r = r with { Json = true, JsonSchema = json.Schema is { } schema ? JsonNode.Parse(schema.GetRawText()) : null };
                break;
            case null or ChatResponseFormatText:
                break;
            default:
                throw new NotSupportedException($"response format {o.ResponseFormat.GetType().Name} is not supported (text, JSON, JSON schema)");
        }
        if (o.Tools is { Count: > 0 } tools)
        {
            var list = new List<LlmTool>();
            foreach (var tool in tools)
            {
                if (tool is not AIFunctionDeclaration f)
                    throw new NotSupportedException($"the tool '{tool.Name}' ({tool.GetType().Name}) is not supported: SharpInfer calls functions only");
                list.Add(new LlmTool(f.Name, string.IsNullOrEmpty(f.Description) ? null : f.Description, JsonNode.Parse(f.JsonSchema.GetRawText())));
            }
            r = r with
            {
                Tools = list,
                ToolChoice = o.ToolMode switch
                {
                    null or AutoChatToolMode => LlmToolChoice.Auto,
                    NoneChatToolMode => LlmToolChoice.None,
                    RequiredChatToolMode { RequiredFunctionName: { } name } => LlmToolChoice.Function(name),
                    RequiredChatToolMode => LlmToolChoice.Required,
                    _ => throw new NotSupportedException($"tool mode {o.ToolMode} is not supported"),
                },
            };
        }
        return r;
    }

    /// <summary>Microsoft.Extensions.AI's JSON metadata for <typeparamref name="T"/> (source-generated for its own
    /// types, so no reflection-only serializer path: trimming and native AOT keep working).</summary>
    private static JsonTypeInfo<T> TypeInfo<T>() => (JsonTypeInfo<T>)AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(T));

    public static ChatFinishReason ToFinishReason(LlmFinishReason f) => f switch
    {
        LlmFinishReason.Length => ChatFinishReason.Length,
        LlmFinishReason.ToolCalls => ChatFinishReason.ToolCalls,
        _ => ChatFinishReason.Stop,
    };

    public static UsageDetails ToUsage(LlmUsage u) => new()
    {
        InputTokenCount = u.PromptTokens,
        OutputTokenCount = u.CompletionTokens,
        TotalTokenCount = u.TotalTokens,
        CachedInputTokenCount = u.CachedPromptTokens,
    };

    public static FunctionCallContent ToContent(LlmToolCall call)
    {
        IDictionary<string, object?>? args;
        try
        {
            args = JsonSerializer.Deserialize(call.Arguments, TypeInfo<Dictionary<string, object?>>());
        }
        catch (JsonException e)
        {
            return new FunctionCallContent(call.Id, call.Name) { Exception = e };
        }
        return new FunctionCallContent(call.Id, call.Name, args);
    }
}
