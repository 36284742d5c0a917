using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace SharpInfer.Extensions.AI;

/// <summary>
/// <see cref="IChatClient"/> over an in-process <see cref="Llm"/>: sampling from <see cref="ChatOptions"/>, JSON and
/// JSON-schema replies through the engine's grammars, tools in the chat template's own format with the reply's calls
/// parsed into <see cref="FunctionCallContent"/> (so <c>UseFunctionInvocation()</c> works), reasoning as
/// <see cref="TextReasoningContent"/>, usage and finish reasons. The client does not own the <see cref="Llm"/>.
/// </summary>
public sealed class SharpInferChatClient : IChatClient
{
    private readonly Llm _llm;
    private readonly LlmChatOptions _defaults;
    private readonly ChatClientMetadata _metadata;

    /// <param name="defaults">Options a call's <see cref="ChatOptions"/> does not set (e.g. the reply's token limit).</param>
    public SharpInferChatClient(Llm llm, LlmChatOptions? defaults = null)
    {
        _llm = llm ?? throw new ArgumentNullException(nameof(llm));
        _defaults = defaults ?? new LlmChatOptions();
        _metadata = new ChatClientMetadata("sharpinfer", null, llm.ModelId);
    }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
                                                     CancellationToken cancellationToken = default)
    {
        var reply = await _llm.ChatAsync(ChatMessageMapping.ToLlm(messages, options), ChatMessageMapping.ToLlm(options, _defaults),
                                         cancellationToken).ConfigureAwait(false);
        var contents = new List<AIContent>();
        if (reply.Reasoning is { Length: > 0 } reasoning) contents.Add(new TextReasoningContent(reasoning));
        if (reply.Text.Length > 0 || reply.ToolCalls.Count == 0) contents.Add(new TextContent(reply.Text));
        foreach (var call in reply.ToolCalls) contents.Add(ChatMessageMapping.ToContent(call));
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, contents) { MessageId = reply.Id })
        {
            ResponseId = reply.Id,
            ModelId = _llm.ModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = ChatMessageMapping.ToFinishReason(reply.FinishReason),
            Usage = ChatMessageMapping.ToUsage(reply.Usage),
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
                                                                                [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var created = DateTimeOffset.UtcNow;
        await foreach (var u in _llm.ChatStreamingAsync(ChatMessageMapping.ToLlm(messages, options), ChatMessageMapping.ToLlm(options, _defaults),
                                                        cancellationToken).ConfigureAwait(false))
        {
            AIContent content = u.Kind switch
            {
                LlmChatUpdateKind.Text => new TextContent(u.Text),
                LlmChatUpdateKind.Reasoning => new TextReasoningContent(u.Text),
                LlmChatUpdateKind.ToolCall => ChatMessageMapping.ToContent(u.ToolCall!),
                _ => new UsageContent(ChatMessageMapping.ToUsage(u.Usage!)),
            };
            yield return new ChatResponseUpdate(ChatRole.Assistant, [content])
            {
                ResponseId = u.Id,
                MessageId = u.Id,
                ModelId = _llm.ModelId,
                CreatedAt = created,
                FinishReason = u.FinishReason is { } f ? ChatMessageMapping.ToFinishReason(f) : null,
            };
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType == typeof(Llm)) return _llm;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    public void Dispose()
    {
        // the Llm belongs to whoever created it (one model may serve several clients)
    }
}

public static class LlmChatClientExtensions
{
    /// <summary>This model as a Microsoft.Extensions.AI <see cref="IChatClient"/>; <paramref name="defaults"/> fills in
    /// what a call's <see cref="ChatOptions"/> leaves unset.</summary>
    public static IChatClient AsChatClient(this Llm llm, LlmChatOptions? defaults = null) => new SharpInferChatClient(llm, defaults);
}
