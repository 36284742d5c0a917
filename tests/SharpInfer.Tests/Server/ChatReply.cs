using System.Text.Json.Nodes;

namespace SharpInfer.Tests.Server;

/// <summary>
/// A chat completion's first choice as a client ends up with it, from the whole reply or reassembled from its
/// streamed deltas, so that tests compare the two without each writing the reassembly again. Content and reasoning
/// are null when none came (the streamed role chunk's content "" counts as content, as in the reply a client builds).
/// </summary>
internal sealed record ChatReply(string? Content, string? Reasoning, List<(string Name, string Args)> Calls, string? FinishReason)
{
    /// <summary>Streamed only: a reasoning delta came after some content (a reasoning model's answer comes last).</summary>
    public bool ReasoningAfterContent { get; init; }

    /// <summary>Streamed only: how many deltas carried reasoning (more than one: it was streamed as it came).</summary>
    public int ReasoningDeltas { get; init; }

    /// <summary>What the reply was read from (the choice, or the chunks), for assertion messages.</summary>
    public string Source { get; init; } = "";

    /// <summary>The first choice of a non-streamed chat completion.</summary>
    public static ChatReply FromChoice(JsonNode choice)
    {
        var message = choice["message"]!;
        var calls = message["tool_calls"]?.AsArray()
            .Select(c => (c!["function"]!["name"]!.GetValue<string>(), c["function"]!["arguments"]!.GetValue<string>())).ToList() ?? [];
        return new ChatReply(message["content"]?.GetValue<string>(), message["reasoning_content"]?.GetValue<string>(), calls,
                             choice["finish_reason"]?.GetValue<string>())
        { Source = choice.ToJsonString() };
    }

    /// <summary>The first choice reassembled from streamed chunks. A tool call's header (index, id, type, name) comes
    /// first and once per call, in index order; later deltas of that call carry only argument text.</summary>
    public static ChatReply FromChunks(IReadOnlyList<JsonObject> chunks)
    {
        string? content = null, reasoning = null, finish = null;
        bool reasoningAfterContent = false;
        int reasoningDeltas = 0;
        var calls = new List<(string Name, string Args)>();
        foreach (var chunk in chunks)
        {
            var c = chunk["choices"]![0]!;
            var delta = c["delta"]!;
            if (delta["reasoning_content"]?.GetValue<string>() is { } r)
            {
                reasoning = (reasoning ?? "") + r;
                reasoningDeltas++;
                reasoningAfterContent |= !string.IsNullOrEmpty(content);
            }
            if (delta["content"]?.GetValue<string>() is { } t) content = (content ?? "") + t;
            foreach (var tc in delta["tool_calls"]?.AsArray() ?? [])
            {
                int index = tc!["index"]!.GetValue<int>();
                if (tc["id"] is not null)
                {
                    Assert.Equal(calls.Count, index);
                    Assert.Equal("function", tc["type"]!.GetValue<string>());
                    calls.Add((tc["function"]!["name"]!.GetValue<string>(), tc["function"]!["arguments"]!.GetValue<string>()));
                }
                else
                {
                    Assert.Null(tc["function"]!["name"]);
                    calls[index] = calls[index] with { Args = calls[index].Args + tc["function"]!["arguments"]!.GetValue<string>() };
                }
            }
            if (c["finish_reason"]?.GetValue<string>() is { } f) finish = f;
        }
        return new ChatReply(content, reasoning, calls, finish)
        {
            ReasoningAfterContent = reasoningAfterContent,
            ReasoningDeltas = reasoningDeltas,
            Source = string.Join("\n", chunks.Select(c => c.ToJsonString())),
        };
    }
}
