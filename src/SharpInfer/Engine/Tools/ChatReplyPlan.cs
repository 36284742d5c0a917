using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpInfer.Engine.Tools;

/// <summary>
/// What a chat request's tools and reasoning settings mean for one template: the template variables and messages to
/// render, the grammar that forces tool calls, how a constraint makes room for reasoning, and the parser that turns
/// the reply into content, <c>reasoning_content</c> and <c>tool_calls</c>. Engine-independent (the server asks it).
/// </summary>
/// <remarks>
/// Reasoning: a template "thinks" when it writes <c>&lt;think&gt;</c> (Qwen3, DeepSeek-R1, SmolLM3). When the reply is
/// constrained (forced tool calls, response_format, grammar) and the request does not set <c>enable_thinking</c>, a
/// template with that switch gets <c>enable_thinking: false</c>, so the constrained answer starts at once; with
/// thinking on (set explicitly, or a template that always opens <c>&lt;think&gt;</c>) the grammar allows the
/// <c>&lt;think&gt;…&lt;/think&gt;</c> block before the answer, as llama.cpp's does.
/// </remarks>
internal sealed class ChatReplyPlan
{
    private const string ThinkingSwitch = "enable_thinking";

    public ToolSet? Tools { get; private init; }
    public ToolCallFormat Format { get; private init; }
    /// <summary>The template writes &lt;think&gt; blocks.</summary>
    public bool TemplateThinks { get; private init; }
    /// <summary>The template writes OpenAI's harmony format (gpt-oss): reasoning is the <c>analysis</c> channel.</summary>
    public bool TemplateIsHarmony { get; private init; }
    /// <summary>Reasoning goes to <c>reasoning_content</c> (false for <c>reasoning_format: none</c>).</summary>
    public bool ParseReasoning { get; private init; }
    /// <summary>Thinking is on for this request (not switched off by <c>enable_thinking: false</c>).</summary>
    public bool ThinkingEnabled { get; private init; }
    public required JsonArray Messages { get; init; }
    /// <summary>Control tokens the engine renders as text in this reply (<see cref="EngineRequest.PreservedTokens"/>), so
    /// that the reply parser sees the format's markers: llama-server's preserved tokens. For harmony the header and body
    /// markers (<c>&lt;|return|&gt;</c> and <c>&lt;|call|&gt;</c> end generation and never reach the text); empty
    /// otherwise.</summary>
    public IReadOnlyList<string> PreservedTokenTexts => TemplateIsHarmony ? HarmonyPreserved : [];

    private static readonly string[] HarmonyPreserved =
        [HarmonySplitter.Channel, "<|constrain|>", HarmonySplitter.Message, HarmonySplitter.Start, HarmonySplitter.End];
    public IReadOnlyDictionary<string, JsonNode?>? Variables { get; private init; }

    /// <param name="templateSource">The chat template's source.</param>
    /// <param name="reasoningFormat">llama-server's <c>reasoning_format</c>: null/<c>auto</c>/<c>deepseek</c>/
    /// <c>deepseek-legacy</c> split reasoning off, <c>none</c> keeps it in content.</param>
    /// <param name="otherConstraint">The request has a response_format/grammar constraint.</param>
    public static ChatReplyPlan Create(string templateSource, JsonArray messages, ToolSet? tools, string? reasoningFormat,
                                       IReadOnlyDictionary<string, JsonNode?>? variables, bool otherConstraint)
    {
        bool parse = reasoningFormat switch
        {
            null or "auto" or "deepseek" or "deepseek-legacy" => true,
            "none" => false,
            _ => throw new InvalidRequestException($"'reasoning_format' must be none, auto, deepseek or deepseek-legacy, got \"{reasoningFormat}\"", "reasoning_format"),
        };
        if (tools != null && tools.Forced && otherConstraint)
            throw new InvalidRequestException("a forced 'tool_choice' cannot be combined with response_format, grammar, json_schema or structured_outputs", "tool_choice");
        bool thinks = templateSource.Contains("<think>", StringComparison.Ordinal);
        bool harmony = templateSource.Contains("<|channel|>analysis<|message|>", StringComparison.Ordinal);
        var vars = variables;
        bool constrained = otherConstraint || tools?.Forced == true;
        if (thinks && constrained && templateSource.Contains(ThinkingSwitch, StringComparison.Ordinal) && vars?.ContainsKey(ThinkingSwitch) != true)
            vars = new Dictionary<string, JsonNode?>(vars ?? new Dictionary<string, JsonNode?>()) { [ThinkingSwitch] = false };
        bool enabled = thinks && !(vars != null && vars.TryGetValue(ThinkingSwitch, out var on) && on is JsonValue v
                                   && v.GetValueKind() == JsonValueKind.False);
        var format = ToolCallFormats.Detect(templateSource);
        return new ChatReplyPlan
        {
            Tools = tools,
            Format = format,
            TemplateThinks = thinks,
            TemplateIsHarmony = harmony,
            ParseReasoning = parse && (thinks || harmony),
            ThinkingEnabled = enabled,
            Messages = harmony ? WithHarmonyThinking(messages)
                : tools != null && tools.Choice != ToolChoiceMode.None && format == ToolCallFormat.Generic
                ? WithGenericInstructions(messages, tools) : messages,
            Variables = vars,
        };
    }

    /// <summary>Whether the reply is parsed for tool calls.</summary>
    public bool ParsesToolCalls => Tools != null && Tools.Choice != ToolChoiceMode.None;

    /// <summary>The rendered prompt leaves a &lt;think&gt; block open (DeepSeek-R1's generation prompt ends with it).</summary>
    public static bool PromptOpensThinking(string prompt)
    {
        var t = prompt.AsSpan().TrimEnd();
        return t.EndsWith("<think>", StringComparison.Ordinal);
    }

    /// <summary>The ids of <see cref="PreservedTokenTexts"/> in <paramref name="vocabulary"/> (each must be one token, as
    /// llama-server requires; others are left out), or null when there are none.</summary>
    public int[]? PreservedTokenIds(Tokenization.Vocabulary vocabulary)
    {
        var ids = new List<int>();
        foreach (var text in PreservedTokenTexts)
            if (vocabulary.GetId(text) is var id and >= 0) ids.Add(id);
        return ids.Count > 0 ? [.. ids] : null;
    }

    /// <summary>The grammar that forces the reply to be tool calls, or null when calls are not forced.</summary>
    public string? ToolGrammar(bool promptOpensThinking) =>
        Tools is not { Forced: true } t ? null
        : TemplateIsHarmony ? WithHarmonyAnalysis(ToolCallGrammar.Build(ToolCallFormat.Harmony, t))
        : WrapGrammar(ToolCallGrammar.Build(Format, t), promptOpensThinking);

    /// <summary>
    /// A constraint on a harmony reply (response_format, json_schema, a grammar) applies to the <c>final</c> message's
    /// body, as in llama.cpp's gpt-oss grammar: an optional analysis message, then <c>&lt;|channel|&gt;final</c> with an
    /// optional content type (<c>&lt;|constrain|&gt;json</c>; at most 32 characters, where llama.cpp sets no bound), then
    /// the constrained body. A grammar that itself writes
    /// harmony messages (its language has a word starting with <c>&lt;|channel|&gt;</c> or <c>&lt;|start|&gt;</c>) is taken
    /// as the whole reply, unchanged.
    /// </summary>
    private static string WithHarmonyFinal(string gbnf)
    {
        var automaton = new Sampling.Grammar.GrammarAutomaton(Sampling.Grammar.CompiledGrammar.FromGbnf(gbnf));
        if (automaton.Step(automaton.Start, "<|channel|>"u8) >= 0 || automaton.Step(automaton.Start, "<|start|>"u8) >= 0) return gbnf;
        return "root ::= (\"<|channel|>analysis<|message|>\" analysis-body \"<|end|><|start|>assistant\")? " +
               "\"<|channel|>final\" (\" \" \"<|constrain|>\"? [A-Za-z0-9_-]{1,32})? \"<|message|>\" answer-root\n" +
               "analysis-body ::= ([^<] | \"<\" [^|])*\n" +
               GbnfRules.Prefix(gbnf, "answer-");
    }

    /// <summary>gpt-oss reasons before it calls: an optional <c>analysis</c> message (its body free of <c>&lt;|</c>, so it
    /// ends at <c>&lt;|end|&gt;</c>), then the call's message, as llama.cpp's gpt-oss grammar allows.</summary>
    private static string WithHarmonyAnalysis(string gbnf) =>
        "root ::= (\"<|channel|>analysis<|message|>\" analysis-body \"<|end|><|start|>assistant\")? answer-root\n" +
        "analysis-body ::= ([^<] | \"<\" [^|])*\n" +
        GbnfRules.Prefix(gbnf, "answer-");

    /// <summary><paramref name="gbnf"/> with room for reasoning first when thinking is on: an optional
    /// <c>&lt;think&gt;…&lt;/think&gt;</c> block, or, when the prompt opened the block, its rest up to
    /// <c>&lt;/think&gt;</c>. Inside the block a <c>&lt;</c> may not be followed by <c>/</c>. For harmony the constraint is
    /// the <c>final</c> message's body (<see cref="WithHarmonyFinal"/>).</summary>
    public string WrapGrammar(string gbnf, bool promptOpensThinking)
    {
        if (TemplateIsHarmony) return WithHarmonyFinal(gbnf);
        if (!ThinkingEnabled && !promptOpensThinking) return gbnf;
        string think = promptOpensThinking
            ? "think-body \"</think>\" think-ws"
            : "(\"<think>\" think-body \"</think>\" think-ws)?";
        return $"root ::= {think} answer-root\n" +
               "think-body ::= ([^<] | \"<\" [^/])*\n" +
               "think-ws ::= [ \\n]{0,8}\n" +
               GbnfRules.Prefix(gbnf, "answer-");
    }

    /// <summary>A parser for one reply.</summary>
    public ChatOutputParser NewParser(bool promptOpensThinking) =>
        new(ParsesToolCalls ? Format : null, ParseReasoning, ParseReasoning && promptOpensThinking, TemplateIsHarmony);

    /// <summary>The harmony template reads an assistant turn's reasoning from <c>thinking</c>: a copy of the messages with
    /// <c>reasoning_content</c> copied there, and, on a turn with tool calls, its content dropped (the template refuses
    /// both), as llama-server passes them.</summary>
    private static JsonArray WithHarmonyThinking(JsonArray messages)
    {
        if (!messages.Any(m => m is JsonObject o && o["reasoning_content"] is JsonValue)) return messages;
        var copy = (JsonArray)messages.DeepClone();
        foreach (var m in copy)
            if (m is JsonObject o && o["reasoning_content"] is JsonValue r && r.GetValueKind() == JsonValueKind.String)
            {
                o["thinking"] = r.GetValue<string>();
                if (o["tool_calls"] is JsonArray { Count: > 0 }) o.Remove("content");
            }
        return copy;
    }

    /// <summary>For templates without tool syntax: a system message that explains the JSON reply (llama.cpp's generic
    /// format), added to the first system message or as a new one.</summary>
    private static JsonArray WithGenericInstructions(JsonArray messages, ToolSet tools)
    {
        var callSchemas = new JsonArray();
        foreach (var f in tools.Callable)
            callSchemas.Add((JsonNode)new JsonObject
            {
                ["type"] = "object",
                ["properties"] = new JsonObject
                {
                    ["name"] = new JsonObject { ["const"] = f.Name },
                    ["arguments"] = f.Parameters.DeepClone(),
                },
                ["required"] = new JsonArray("name", "arguments"),
            });
        string text = "Respond in JSON format, either with `tool_call` (a request to call tools) or with `response` reply to the user's request. " +
                      "Tool calls follow this schema: " + callSchemas.ToJsonString();
        var copy = (JsonArray)messages.DeepClone();
        if (copy.Count > 0 && copy[0] is JsonObject first && first["role"]?.GetValue<string>() == "system" && first["content"] is JsonValue c
            && c.GetValueKind() == JsonValueKind.String)
            first["content"] = c.GetValue<string>() + "\n\n" + text;
        else copy.Insert(0, new JsonObject { ["role"] = "system", ["content"] = text });
        return copy;
    }
}
