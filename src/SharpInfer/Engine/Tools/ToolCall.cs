namespace SharpInfer.Engine.Tools;

/// <summary>One parsed call: OpenAI's <c>tool_calls[i]</c> (<c>arguments</c> is compact JSON text).</summary>
internal sealed record ToolCall(string Id, string Name, string Arguments)
{
    private const string Alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    /// <summary>A new id: <c>call_</c> and 24 random characters, or for <see cref="ToolCallFormat.Mistral"/> 9 random
    /// alphanumerics (Mistral's templates reject any other id when the call is sent back).</summary>
    public static string NewId(ToolCallFormat format) =>
        format == ToolCallFormat.Mistral ? Random.Shared.GetString(Alphanumeric, 9) : "call_" + Random.Shared.GetString(Alphanumeric, 24);
}
