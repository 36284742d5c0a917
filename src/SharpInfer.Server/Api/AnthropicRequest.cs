using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static SharpInfer.Server.Api.TranslatedRequest;

namespace SharpInfer.Server.Api;

/// <summary>
/// An Anthropic Messages request (<c>/v1/messages</c>, <c>/v1/messages/count_tokens</c>) translated into a
/// chat-completions body: <c>system</c> as the first system message; user <c>text</c> blocks as user messages and
/// <c>tool_result</c> blocks as tool messages; assistant <c>text</c>, <c>tool_use</c> (as <c>tool_calls</c>) and
/// <c>thinking</c> (as <c>reasoning_content</c>) blocks as one assistant message; custom tools
/// (<c>name</c>, <c>description</c>, <c>input_schema</c>); <c>tool_choice</c> auto/any/tool/none;
/// <c>stop_sequences</c>; <c>thinking</c> switching the template's thinking on or off. Images, documents, server
/// tools and MCP servers are a 400 naming the field.
/// </summary>
internal sealed class AnthropicRequest
{
    public required JsonBody Chat { get; init; }
    public required IReadOnlyList<string> StopSequences { get; init; }
    /// <summary>The request enabled <c>thinking</c>: reasoning is returned as thinking blocks (else it is dropped).</summary>
    public bool Thinking { get; init; }
    public bool Stream { get; init; }

    /// <summary>Chat-completions names → Anthropic names, for errors raised by the shared chat path.</summary>
    public static readonly (string Chat, string Api)[] Names = [("stop", "stop_sequences"), ("tools", "tools")];

    private static readonly string[] Unsupported = ["container", "mcp_servers", "context_management"];

    /// <param name="countOnly">count_tokens: no <c>max_tokens</c>, no sampling fields.</param>
    public static AnthropicRequest Read(JsonBody b, bool countOnly)
    {
        foreach (var f in Unsupported)
            if (b[f] is not null) throw ApiException.BadRequest($"'{f}' is not supported by this server.", f);
        if (b["model"] is null) throw ApiException.BadRequest("'model' is required.", "model");
        b.String("model");
        b.Object("metadata");
        b.String("service_tier");
        var chat = new JsonObject();
        var messages = new JsonArray();
        if (b["system"] is { } system) messages.Add((JsonNode)new JsonObject { ["role"] = "system", ["content"] = SystemText(system) });
        var input = b.Array("messages") ?? throw ApiException.BadRequest("'messages' is required.", "messages");
        if (input.Count == 0) throw ApiException.BadRequest("'messages' must contain at least one message.", "messages");
        for (int i = 0; i < input.Count; i++) AddMessage(AsObject(input[i], $"messages[{i}]"), $"messages[{i}]", messages);
        chat["messages"] = messages;
        CopyField(b, "model", chat);

        bool thinking = false;
        if (b.Object("thinking") is { } t)
        {
            string type = ReqString(t, "type", "thinking");
            thinking = type switch
            {
                "enabled" or "adaptive" => true,
                "disabled" => false,
                _ => throw ApiException.BadRequest($"'thinking.type' must be enabled or disabled, got \"{type}\".", "thinking.type"),
            };
            if (thinking && t["budget_tokens"] is { } budget) JsonBody.AsLong(budget, "thinking.budget_tokens");
        }
        // Anthropic thinks only when asked to: a template with a switch gets it set either way
        chat["chat_template_kwargs"] = new JsonObject { ["enable_thinking"] = thinking };

        if (b.Array("tools") is { } tools) chat["tools"] = Tools(tools);
        if (b.Object("tool_choice") is { } choice)
        {
            string type = ReqString(choice, "type", "tool_choice");
            chat["tool_choice"] = type switch
            {
                "auto" => "auto",
                "any" => "required",
                "none" => "none",
                "tool" => new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = ReqString(choice, "name", "tool_choice") } },
                _ => throw ApiException.BadRequest($"'tool_choice.type' must be auto, any, tool or none, got \"{type}\".", "tool_choice.type"),
            };
            if (choice["disable_parallel_tool_use"] is { } d)
                chat["parallel_tool_calls"] = !(d is JsonValue dv && dv.GetValueKind() is JsonValueKind.True or JsonValueKind.False
                    ? dv.GetValue<bool>()
                    : throw ApiException.BadRequest("'tool_choice.disable_parallel_tool_use' must be a boolean.", "tool_choice.disable_parallel_tool_use"));
            else chat["parallel_tool_calls"] = true;
        }
        else if (b["tools"] is not null) chat["parallel_tool_calls"] = true;

        IReadOnlyList<string> stops = [];
        bool stream = false;
        if (!countOnly)
        {
            if (b["max_tokens"] is null) throw ApiException.BadRequest("'max_tokens' is required.", "max_tokens");
            b.Int("max_tokens", 1);
            CopyField(b, "max_tokens", chat);
            if (b.Array("stop_sequences") is { } s)
            {
                stops = b.StringOrList("stop_sequences");
                chat["stop"] = s.DeepClone();
            }
            // seed, grammar (llama.cpp) and ignore_eos are extensions beyond the Messages API
            foreach (var f in new[] { "temperature", "top_p", "top_k", "stream", "seed", "grammar", "ignore_eos" }) CopyField(b, f, chat);
            stream = b.Bool("stream") ?? false;
        }
        return new AnthropicRequest { Chat = new JsonBody(chat), StopSequences = stops, Thinking = thinking, Stream = stream };
    }

    /// <summary><c>system</c>: a string or a list of text blocks.</summary>
    private static string SystemText(JsonNode system)
    {
        if (system is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        if (system is not JsonArray blocks) throw ApiException.BadRequest($"'system' must be a string or a list of text blocks, got {JsonBody.Describe(system)}.", "system");
        var sb = new StringBuilder();
        for (int i = 0; i < blocks.Count; i++)
        {
            var block = AsObject(blocks[i], $"system[{i}]");
            if (ReqString(block, "type", $"system[{i}]") != "text")
                throw ApiException.BadRequest($"'system[{i}].type' must be \"text\".", $"system[{i}].type");
            if (sb.Length > 0) sb.Append('\n');
            sb.Append(ReqString(block, "text", $"system[{i}]"));
        }
        return sb.ToString();
    }

    private static void AddMessage(JsonObject m, string at, JsonArray messages)
    {
        string role = ReqString(m, "role", at);
        if (role is not ("user" or "assistant"))
            throw ApiException.BadRequest($"'{at}.role' must be user or assistant, got \"{role}\".", $"{at}.role");
        var content = m["content"] ?? throw ApiException.BadRequest($"'{at}.content' is required.", $"{at}.content");
        if (content is JsonValue cv && cv.GetValueKind() == JsonValueKind.String)
        {
            messages.Add((JsonNode)new JsonObject { ["role"] = role, ["content"] = cv.GetValue<string>() });
            return;
        }
        if (content is not JsonArray blocks)
            throw ApiException.BadRequest($"'{at}.content' must be a string or a list of content blocks, got {JsonBody.Describe(content)}.", $"{at}.content");
        if (role == "assistant") AddAssistant(blocks, $"{at}.content", messages);
        else AddUser(blocks, $"{at}.content", messages);
    }

    /// <summary>User blocks in order: runs of text become one user message, each tool_result a tool message.</summary>
    private static void AddUser(JsonArray blocks, string at, JsonArray messages)
    {
        StringBuilder? text = null;
        void Flush()
        {
            if (text is null) return;
            messages.Add((JsonNode)new JsonObject { ["role"] = "user", ["content"] = text.ToString() });
            text = null;
        }
        for (int i = 0; i < blocks.Count; i++)
        {
            string bt = $"{at}[{i}]";
            var block = AsObject(blocks[i], bt);
            switch (ReqString(block, "type", bt))
            {
                case "text":
                    (text ??= new()).Append(ReqString(block, "text", bt));
                    break;
                case "tool_result":
                    Flush();
                    string result = block["content"] switch
                    {
                        null => "",
                        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                        JsonArray parts => TextBlocks(parts, $"{bt}.content"),
                        var other => throw ApiException.BadRequest($"'{bt}.content' must be a string or a list of text blocks, got {JsonBody.Describe(other)}.", $"{bt}.content"),
                    };
                    messages.Add((JsonNode)new JsonObject { ["role"] = "tool", ["tool_call_id"] = ReqString(block, "tool_use_id", bt), ["content"] = result });
                    break;
                case var type:
                    throw ApiException.BadRequest($"'{bt}.type' \"{type}\" is not supported in a user message (text, tool_result).", $"{bt}.type");
            }
        }
        Flush();
    }

    private static string TextBlocks(JsonArray parts, string at)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < parts.Count; i++)
        {
            var p = AsObject(parts[i], $"{at}[{i}]");
            if (ReqString(p, "type", $"{at}[{i}]") != "text")
                throw ApiException.BadRequest($"'{at}[{i}].type' must be \"text\" (images and documents are not supported).", $"{at}[{i}].type");
            sb.Append(ReqString(p, "text", $"{at}[{i}]"));
        }
        return sb.ToString();
    }

    /// <summary>Assistant blocks as one assistant message: text as content, tool_use as tool_calls, thinking as
    /// reasoning_content (redacted thinking is dropped: its text is not readable).</summary>
    private static void AddAssistant(JsonArray blocks, string at, JsonArray messages)
    {
        var text = new StringBuilder();
        var reasoning = new StringBuilder();
        var calls = new JsonArray();
        for (int i = 0; i < blocks.Count; i++)
        {
            string bt = $"{at}[{i}]";
            var block = AsObject(blocks[i], bt);
            switch (ReqString(block, "type", bt))
            {
                case "text":
                    text.Append(ReqString(block, "text", bt));
                    break;
                case "thinking":
                    reasoning.Append(ReqString(block, "thinking", bt));
                    break;
                case "redacted_thinking":
                    break;
                case "tool_use":
                    var input = block["input"] ?? new JsonObject();
                    if (input is not JsonObject) throw ApiException.BadRequest($"'{bt}.input' must be an object.", $"{bt}.input");
                    calls.Add((JsonNode)new JsonObject
                    {
                        ["id"] = ReqString(block, "id", bt),
                        ["type"] = "function",
                        ["function"] = new JsonObject { ["name"] = ReqString(block, "name", bt), ["arguments"] = input.ToJsonString() },
                    });
                    break;
                case var type:
                    throw ApiException.BadRequest($"'{bt}.type' \"{type}\" is not supported in an assistant message (text, thinking, tool_use).", $"{bt}.type");
            }
        }
        var m = new JsonObject { ["role"] = "assistant", ["content"] = text.Length == 0 && calls.Count > 0 ? null : text.ToString() };
        if (reasoning.Length > 0) m["reasoning_content"] = reasoning.ToString();
        if (calls.Count > 0) m["tool_calls"] = calls;
        messages.Add((JsonNode)m);
    }

    /// <summary>Custom tools → chat function tools; server tools (a dated <c>type</c> such as web_search_20250305) are refused.</summary>
    private static JsonArray Tools(JsonArray tools)
    {
        var result = new JsonArray();
        for (int i = 0; i < tools.Count; i++)
        {
            string at = $"tools[{i}]";
            var t = AsObject(tools[i], at);
            if (OptString(t, "type", at) is { } type && type != "custom")
                throw ApiException.BadRequest($"'{at}.type' \"{type}\" is not supported: only custom tools (name, description, input_schema) are.", $"{at}.type");
            var fn = new JsonObject { ["name"] = ReqString(t, "name", at) };
            if (OptString(t, "description", at) is { } d) fn["description"] = d;
            fn["parameters"] = AsObject(t["input_schema"] ?? throw ApiException.BadRequest($"'{at}.input_schema' is required.", $"{at}.input_schema"), $"{at}.input_schema").DeepClone();
            result.Add((JsonNode)new JsonObject { ["type"] = "function", ["function"] = fn });
        }
        return result;
    }
}
