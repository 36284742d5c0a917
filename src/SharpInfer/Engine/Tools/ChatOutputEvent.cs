namespace SharpInfer.Engine.Tools;

internal enum ChatOutputKind
{
    /// <summary>Answer text (<c>content</c>).</summary>
    Content,
    /// <summary>Reasoning text (<c>reasoning_content</c>).</summary>
    Reasoning,
    /// <summary>A complete, well-formed tool call.</summary>
    ToolCall,
}

/// <summary>A piece of a reply as the client sees it: content or reasoning text, or a whole tool call.</summary>
internal readonly record struct ChatOutputEvent(ChatOutputKind Kind, string? Text, ToolCall? Call)
{
    public static ChatOutputEvent Content(string text) => new(ChatOutputKind.Content, text, null);
    public static ChatOutputEvent Reasoning(string text) => new(ChatOutputKind.Reasoning, text, null);
    public static ChatOutputEvent Tool(ToolCall call) => new(ChatOutputKind.ToolCall, null, call);
}
