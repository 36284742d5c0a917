using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Engine.Tools;
using SharpInfer.Sampling;

namespace SharpInfer.Facade;

/// <summary>A chat call ready for the engine: the prompt's tokens, the sampling parameters (with the grammar that
/// forces tool calls or JSON), and how to parse the reply.</summary>
internal sealed record PreparedChat(int[] Tokens, SamplingParams Sampling, Func<ChatOutputParser>? NewParser, int[]? PreservedTokens = null);

/// <summary>
/// Typed chat messages and options → the engine's request, through the same pieces the HTTP server uses: the
/// OpenAI-shaped message list the <see cref="ChatFormatter"/> renders, <see cref="ToolSet"/> for tools and tool choice,
/// and <see cref="ChatReplyPlan"/> for the template's tool format, tool grammar and reasoning.
/// </summary>
internal static class ChatRequestBuilder
{
    /// <param name="compile">Compiles a grammar for a reply that renders the given preserved control tokens.</param>
    public static PreparedChat Prepare(ChatFormatter formatter, Func<string, int[]?, ILogitsProcessorFactory> compile,
                                       IEnumerable<LlmChatMessage> messages, LlmChatOptions options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var json = Messages(messages);
        var tools = options.Tools is { Count: > 0 } list ? Tools(list) : null;
        var toolSet = ToolSet.Read(tools, Choice(options.ToolChoice), options.ParallelToolCalls);
        string? constraint = options.ConstraintGrammar();
        var plan = ChatReplyPlan.Create(formatter.Template.Source, json, toolSet, options.SeparateReasoning ? null : "none",
                                        options.TemplateVariables, constraint != null);
        var prompt = formatter.Format(new ChatFormatRequest { Messages = plan.Messages, Tools = tools, Variables = plan.Variables });
        bool opensThinking = plan.TemplateThinks && ChatReplyPlan.PromptOpensThinking(prompt.Text);
        string? gbnf = plan.ToolGrammar(opensThinking) ?? (constraint != null ? plan.WrapGrammar(constraint, opensThinking) : null);
        var sampling = options.ToSampling();
        var preserved = plan.PreservedTokenIds(formatter.Tokenizer.Vocabulary);
        if (gbnf != null) sampling = sampling with { LogitsProcessor = compile(gbnf, preserved) };
        Func<ChatOutputParser>? parser = plan.ParsesToolCalls || plan.ParseReasoning ? () => plan.NewParser(opensThinking) : null;
        return new PreparedChat(prompt.TokenIds, sampling, parser, preserved);
    }

    private static JsonArray Messages(IEnumerable<LlmChatMessage> messages)
    {
        var array = new JsonArray();
        foreach (var m in messages)
        {
            ArgumentNullException.ThrowIfNull(m, nameof(messages));
            var o = new JsonObject
            {
                ["role"] = m.Role switch
                {
                    LlmChatRole.System => "system",
                    LlmChatRole.User => "user",
                    LlmChatRole.Assistant => "assistant",
                    LlmChatRole.Tool => "tool",
                    _ => throw new InvalidRequestException($"unknown chat role {m.Role}", "role"),
                },
                ["content"] = m.Content,
            };
            if (m.ToolCalls is { Count: > 0 } calls)
            {
                var callArray = new JsonArray();
                foreach (var c in calls)
                    callArray.Add((JsonNode)new JsonObject
                    {
                        ["id"] = c.Id,
                        ["type"] = "function",
                        ["function"] = new JsonObject { ["name"] = c.Name, ["arguments"] = c.Arguments },
                    });
                o["tool_calls"] = callArray;
            }
            if (m.ToolCallId != null) o["tool_call_id"] = m.ToolCallId;
            if (m.ToolName != null) o["name"] = m.ToolName;
            array.Add((JsonNode)o);
        }
        return array;
    }

    private static JsonArray Tools(IReadOnlyList<LlmTool> tools)
    {
        var array = new JsonArray();
        foreach (var t in tools)
        {
            var fn = new JsonObject { ["name"] = t.Name };
            if (t.Description != null) fn["description"] = t.Description;
            fn["parameters"] = t.Parameters?.DeepClone() ?? new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() };
            array.Add((JsonNode)new JsonObject { ["type"] = "function", ["function"] = fn });
        }
        return array;
    }

    private static JsonNode Choice(LlmToolChoice choice) => choice.Mode == "function"
        ? new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = choice.FunctionName } }
        : JsonValue.Create(choice.Mode);
}
