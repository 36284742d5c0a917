using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static SharpInfer.Server.Api.TranslatedRequest;

namespace SharpInfer.Server.Api;

/// <summary>
/// A <c>/v1/responses</c> request translated into a chat-completions body: <c>input</c> (a string, or message,
/// <c>function_call</c>, <c>function_call_output</c> and <c>reasoning</c> items) after the stored conversation of
/// <c>previous_response_id</c>, <c>instructions</c> as the first system message, Responses-shaped function tools,
/// <c>tool_choice</c>, <c>max_output_tokens</c> and <c>text.format</c>. What the server cannot do (built-in tools,
/// images, files, background mode) is a 400 naming the field.
/// </summary>
internal sealed class ResponsesRequest
{
    /// <summary>The chat-completions body the turn runs.</summary>
    public required JsonBody Chat { get; init; }
    /// <summary>The conversation without instructions (what a stored response continues from).</summary>
    public required JsonArray Conversation { get; init; }
    public string? Instructions { get; init; }
    public string? PreviousResponseId { get; init; }
    public bool Store { get; init; }
    public bool Stream { get; init; }
    /// <summary>llama-server's <c>timings_per_token</c>: streamed text deltas carry the timings so far.</summary>
    public bool TimingsPerToken { get; init; }
    public required JsonBody Body { get; init; }

    /// <summary>Chat-completions names → Responses names, for errors raised by the shared chat path.</summary>
    public static readonly (string Chat, string Api)[] Names =
    [
        ("max_tokens", "max_output_tokens"),
        ("messages", "input"),
        ("response_format", "text.format"),
    ];

    private static readonly string[] Unsupported = ["background", "conversation", "prompt", "top_logprobs", "max_tool_calls"];

    public static ResponsesRequest Read(JsonBody b, ResponseStore store)
    {
        foreach (var f in Unsupported)
            if (b[f] is { } v && !(v is JsonValue jv && jv.GetValueKind() == JsonValueKind.False))
                throw ApiException.BadRequest($"'{f}' is not supported by this server.", f);
        if (b.String("truncation") is { } t && t != "disabled")
            throw ApiException.BadRequest($"'truncation' must be \"disabled\" (got \"{t}\"): prompts longer than the context are refused, not truncated.", "truncation");
        if (b.Array("include") is { Count: > 0 } include)
            throw ApiException.BadRequest($"'include' is not supported (got {include.ToJsonString()}).", "include");
        b.Object("metadata");
        b.Object("reasoning");
        b.String("user");

        var conversation = new JsonArray();
        var previous = b.String("previous_response_id");
        if (previous != null)
        {
            var entry = store.Get(previous) ?? throw new ApiException(404, $"Previous response with id '{previous}' not found.",
                ApiErrorTypes.InvalidRequest, "previous_response_id", "previous_response_not_found");
            conversation = entry.Conversation();
        }
        var input = b["input"] ?? throw ApiException.BadRequest("'input' is required.", "input");
        switch (input)
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                conversation.Add((JsonNode)new JsonObject { ["role"] = "user", ["content"] = v.GetValue<string>() });
                break;
            case JsonArray items:
                AddItems(items, conversation);
                break;
            default:
                throw ApiException.BadRequest($"'input' must be a string or a list of items, got {JsonBody.Describe(input)}.", "input");
        }
        if (conversation.Count == 0) throw ApiException.BadRequest("'input' must contain at least one item.", "input");

        var instructions = b.String("instructions");
        var messages = (JsonArray)conversation.DeepClone();
        if (instructions != null) messages.Insert(0, new JsonObject { ["role"] = "system", ["content"] = instructions });
        var chat = new JsonObject { ["messages"] = messages };
        CopyField(b, "model", chat);
        CopyField(b, "max_output_tokens", chat, "max_tokens");
        // beyond the Responses API, as extensions: top_k, min_p, seed, grammar (llama.cpp), ignore_eos, chat_template_kwargs, reasoning_format
        // llama-server's return_progress as well
        foreach (var f in new[] { "temperature", "top_p", "top_k", "min_p", "seed", "grammar", "ignore_eos", "stream", "parallel_tool_calls", "user", "chat_template_kwargs", "reasoning_format", "return_progress" })
            CopyField(b, f, chat);
        if (b.Array("tools") is { } tools) chat["tools"] = Tools(tools);
        if (b["tool_choice"] is { } choice) chat["tool_choice"] = ToolChoice(choice);
        if (b.Object("text") is { } text && text["format"] is { } format) chat["response_format"] = Format(format);
        return new ResponsesRequest
        {
            Chat = new JsonBody(chat),
            Conversation = conversation,
            Instructions = instructions,
            PreviousResponseId = previous,
            Store = b.Bool("store") ?? true,
            Stream = b.Bool("stream") ?? false,
            TimingsPerToken = b.Bool("timings_per_token") ?? false,
            Body = b,
        };
    }

    /// <summary>Input items → chat messages. Consecutive <c>function_call</c> items become one assistant message with
    /// several <c>tool_calls</c>; a <c>reasoning</c> item becomes the next assistant message's <c>reasoning_content</c>.</summary>
    private static void AddItems(JsonArray items, JsonArray messages)
    {
        string? reasoning = null;
        for (int i = 0; i < items.Count; i++)
        {
            string at = $"input[{i}]";
            var item = AsObject(items[i], at);
            string type = OptString(item, "type", at) ?? (item["role"] is not null ? "message" : throw ApiException.BadRequest($"'{at}.type' is required.", $"{at}.type"));
            switch (type)
            {
                case "message":
                {
                    string role = ReqString(item, "role", at);
                    if (role is not ("user" or "system" or "developer" or "assistant"))
                        throw ApiException.BadRequest($"'{at}.role' must be user, system, developer or assistant, got \"{role}\".", $"{at}.role");
                    var m = new JsonObject { ["role"] = role == "developer" ? "system" : role, ["content"] = Text(item["content"], $"{at}.content") };
                    if (role == "assistant" && reasoning != null)
                    {
                        m["reasoning_content"] = reasoning;
                        reasoning = null;
                    }
                    messages.Add((JsonNode)m);
                    break;
                }
                case "function_call":
                {
                    var call = new JsonObject
                    {
                        ["id"] = ReqString(item, "call_id", at),
                        ["type"] = "function",
                        ["function"] = new JsonObject { ["name"] = ReqString(item, "name", at), ["arguments"] = ReqString(item, "arguments", at) },
                    };
                    if (messages.Count > 0 && messages[^1] is JsonObject last && (string?)last["role"] == "assistant" && reasoning == null)
                    {
                        if (last["tool_calls"] is JsonArray calls) calls.Add((JsonNode)call);
                        else last["tool_calls"] = new JsonArray(call);
                    }
                    else
                    {
                        var m = new JsonObject { ["role"] = "assistant", ["content"] = null, ["tool_calls"] = new JsonArray(call) };
                        if (reasoning != null) m["reasoning_content"] = reasoning;
                        reasoning = null;
                        messages.Add((JsonNode)m);
                    }
                    break;
                }
                case "function_call_output":
                    messages.Add((JsonNode)new JsonObject
                    {
                        ["role"] = "tool",
                        ["tool_call_id"] = ReqString(item, "call_id", at),
                        ["content"] = Text(item["output"] ?? throw ApiException.BadRequest($"'{at}.output' is required.", $"{at}.output"), $"{at}.output"),
                    });
                    break;
                case "reasoning":
                    reasoning = ReasoningText(item, at);
                    break;
                default:
                    throw ApiException.BadRequest($"'{at}.type' \"{type}\" is not supported (message, function_call, function_call_output, reasoning).", $"{at}.type");
            }
        }
    }

    /// <summary>Message content: a string, or text parts (<c>input_text</c>, <c>output_text</c>, <c>text</c>) joined.</summary>
    private static string Text(JsonNode? content, string at)
    {
        switch (content)
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                return v.GetValue<string>();
            case JsonArray parts:
                var sb = new StringBuilder();
                for (int i = 0; i < parts.Count; i++)
                {
                    var part = AsObject(parts[i], $"{at}[{i}]");
                    string type = ReqString(part, "type", $"{at}[{i}]");
                    if (type is not ("input_text" or "output_text" or "text"))
                        throw ApiException.BadRequest($"'{at}[{i}].type' \"{type}\" is not supported: only text parts (input_text, output_text) are.", $"{at}[{i}].type");
                    sb.Append(ReqString(part, "text", $"{at}[{i}]"));
                }
                return sb.ToString();
            default:
                throw ApiException.BadRequest($"'{at}' must be a string or a list of content parts, got {JsonBody.Describe(content)}.", at);
        }
    }

    /// <summary>A reasoning item's text: its <c>content</c> (reasoning_text parts), else its <c>summary</c>.</summary>
    private static string ReasoningText(JsonObject item, string at)
    {
        var sb = new StringBuilder();
        foreach (var field in new[] { "content", "summary" })
        {
            if (item[field] is null) continue;
            if (item[field] is not JsonArray parts) throw ApiException.BadRequest($"'{at}.{field}' must be a list.", $"{at}.{field}");
            for (int i = 0; i < parts.Count; i++) sb.Append(ReqString(AsObject(parts[i], $"{at}.{field}[{i}]"), "text", $"{at}.{field}[{i}]"));
            if (sb.Length > 0) break;
        }
        return sb.ToString();
    }

    /// <summary>Responses function tools (<c>{type, name, description, parameters, strict}</c>) → chat tools.</summary>
    private static JsonArray Tools(JsonArray tools)
    {
        var result = new JsonArray();
        for (int i = 0; i < tools.Count; i++)
        {
            string at = $"tools[{i}]";
            var t = AsObject(tools[i], at);
            string type = ReqString(t, "type", at);
            if (type != "function")
                throw ApiException.BadRequest($"'{at}.type' \"{type}\" is not supported: only function tools are (no built-in tools such as web_search or file_search).", $"{at}.type");
            var fn = new JsonObject { ["name"] = ReqString(t, "name", at) };
            if (OptString(t, "description", at) is { } d) fn["description"] = d;
            if (t["parameters"] is { } p) fn["parameters"] = p.DeepClone();
            result.Add((JsonNode)new JsonObject { ["type"] = "function", ["function"] = fn });
        }
        return result;
    }

    /// <summary><c>"none"|"auto"|"required"</c> or <c>{type: "function", name}</c>.</summary>
    private static JsonNode ToolChoice(JsonNode choice)
    {
        if (choice is JsonValue) return choice.DeepClone();
        var o = AsObject(choice, "tool_choice");
        string type = ReqString(o, "type", "tool_choice");
        if (type != "function") throw ApiException.BadRequest($"'tool_choice.type' \"{type}\" is not supported (function).", "tool_choice.type");
        return new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = ReqString(o, "name", "tool_choice") } };
    }

    /// <summary><c>text.format</c>: <c>text</c>, <c>json_object</c>, or <c>json_schema</c> (name, schema, strict at its top).</summary>
    private static JsonNode Format(JsonNode format)
    {
        var f = AsObject(format, "text.format");
        string type = ReqString(f, "type", "text.format");
        return type switch
        {
            "text" or "json_object" => new JsonObject { ["type"] = type },
            "json_schema" => new JsonObject
            {
                ["type"] = "json_schema",
                ["json_schema"] = new JsonObject
                {
                    ["name"] = OptString(f, "name", "text.format") ?? "response",
                    ["schema"] = AsObject(f["schema"] ?? throw ApiException.BadRequest("'text.format.schema' is required.", "text.format.schema"), "text.format.schema").DeepClone(),
                },
            },
            _ => throw ApiException.BadRequest($"'text.format.type' must be text, json_object or json_schema, got \"{type}\".", "text.format.type"),
        };
    }
}
