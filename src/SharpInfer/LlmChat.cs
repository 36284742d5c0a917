using System.Text.Json.Nodes;

namespace SharpInfer;

public enum LlmChatRole { System, User, Assistant, Tool }

/// <summary>One chat message. Assistant messages may carry the tool calls they made; tool messages answer one call
/// (<see cref="ToolCallId"/>).</summary>
public sealed record LlmChatMessage(LlmChatRole Role, string? Content)
{
    public IReadOnlyList<LlmToolCall>? ToolCalls { get; init; }
    /// <summary>On a <see cref="LlmChatRole.Tool"/> message: the call this is the result of.</summary>
    public string? ToolCallId { get; init; }
    /// <summary>On a <see cref="LlmChatRole.Tool"/> message: the function's name (templates that show it).</summary>
    public string? ToolName { get; init; }

    public static LlmChatMessage System(string content) => new(LlmChatRole.System, content);
    public static LlmChatMessage User(string content) => new(LlmChatRole.User, content);
    public static LlmChatMessage Assistant(string? content, IReadOnlyList<LlmToolCall>? toolCalls = null) =>
        new(LlmChatRole.Assistant, content) { ToolCalls = toolCalls };
    public static LlmChatMessage ToolResult(string toolCallId, string content, string? toolName = null) =>
        new(LlmChatRole.Tool, content) { ToolCallId = toolCallId, ToolName = toolName };
}

/// <summary>A function the model may call: its name, what it does, and its parameters' JSON schema (null: none).</summary>
public sealed record LlmTool(string Name, string? Description = null, JsonNode? Parameters = null);

/// <summary>A call the model made: <see cref="Arguments"/> is compact JSON text matching the tool's schema.</summary>
public sealed record LlmToolCall(string Id, string Name, string Arguments);

/// <summary>Whether a chat reply may (<see cref="Auto"/>), must (<see cref="Required"/>, <see cref="Function"/>) or
/// must not (<see cref="None"/>) call tools.</summary>
public sealed record LlmToolChoice
{
    private LlmToolChoice(string mode, string? functionName)
    {
        Mode = mode;
        FunctionName = functionName;
    }

    /// <summary>"auto", "none", "required" or "function".</summary>
    public string Mode { get; }
    public string? FunctionName { get; }

    public static LlmToolChoice Auto { get; } = new("auto", null);
    public static LlmToolChoice None { get; } = new("none", null);
    public static LlmToolChoice Required { get; } = new("required", null);
    public static LlmToolChoice Function(string name) => new("function", name ?? throw new ArgumentNullException(nameof(name)));
}

public enum LlmFinishReason
{
    /// <summary>The model ended its reply (or a stop string was reached).</summary>
    Stop,
    /// <summary>The token limit or the context length was reached.</summary>
    Length,
    /// <summary>The reply is tool calls.</summary>
    ToolCalls,
}

/// <summary>Tokens one call used; <see cref="CachedPromptTokens"/> of the prompt came from the prefix cache.</summary>
public sealed record LlmUsage(int PromptTokens, int CompletionTokens, int CachedPromptTokens)
{
    public int TotalTokens => PromptTokens + CompletionTokens;
}

/// <summary>A whole chat reply.</summary>
public sealed record LlmChatResponse(string Text, string? Reasoning, IReadOnlyList<LlmToolCall> ToolCalls, LlmFinishReason FinishReason, LlmUsage Usage)
{
    /// <summary>An id unique to this reply.</summary>
    public required string Id { get; init; }
}

public enum LlmChatUpdateKind
{
    /// <summary>Reply text.</summary>
    Text,
    /// <summary>Reasoning text.</summary>
    Reasoning,
    /// <summary>A complete tool call.</summary>
    ToolCall,
    /// <summary>The last update: finish reason and usage.</summary>
    Finished,
}

/// <summary>A piece of a streamed chat reply: text, reasoning, a whole tool call, or (last) the finish reason and usage.</summary>
public sealed record LlmChatUpdate(LlmChatUpdateKind Kind, string? Text = null, LlmToolCall? ToolCall = null)
{
    public LlmFinishReason? FinishReason { get; init; }
    public LlmUsage? Usage { get; init; }
    /// <summary>The reply's id (the same on every update of one reply).</summary>
    public required string Id { get; init; }
}
