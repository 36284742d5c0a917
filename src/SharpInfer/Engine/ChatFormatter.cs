using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Models;
using SharpInfer.Tokenization;
using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Engine;

/// <summary>A conversation to format: OpenAI chat-API messages and tools, and template variables.</summary>
internal sealed class ChatFormatRequest
{
    /// <summary>The conversation, as in the OpenAI chat API: objects with <c>role</c> and <c>content</c> (a string, a
    /// list of <c>{"type": "text", "text": ...}</c> parts, or null/absent for an assistant turn), and optionally
    /// <c>tool_calls</c>, <c>tool_call_id</c>, <c>name</c>, <c>reasoning_content</c>, ... Not modified.</summary>
    public required JsonArray Messages { get; init; }
    /// <summary>Tool (function) definitions, passed to the template as <c>tools</c> when not null.</summary>
    public JsonArray? Tools { get; init; }
    /// <summary>End the prompt with the assistant turn header (what a model answers after).</summary>
    public bool AddGenerationPrompt { get; init; } = true;
    /// <summary>Other template variables (<c>enable_thinking</c>, <c>reasoning_effort</c>, <c>date_string</c>, ...).
    /// <c>bos_token</c> and <c>eos_token</c> given here replace the vocabulary's; <c>messages</c>, <c>tools</c> and
    /// <c>add_generation_prompt</c> cannot be set here.</summary>
    public IReadOnlyDictionary<string, JsonNode?>? Variables { get; init; }
}

/// <summary>A formatted chat prompt: the text the template rendered and the token ids to feed the model.</summary>
/// <param name="Text">The rendered prompt, exactly as the template produced it.</param>
/// <param name="TokenIds">The ids of <paramref name="Text"/> (special tokens written in it parsed), with BOS/EOS
/// added per the chat BOS rule (see <see cref="ChatFormatter"/>).</param>
/// <param name="AddedBos">Whether a BOS token was put in front of the rendered text's ids.</param>
internal sealed record ChatPrompt(string Text, int[] TokenIds, bool AddedBos);

/// <summary>How a template wants message <c>content</c>, found by rendering a probe message both ways.</summary>
internal enum ChatContentFormat
{
    /// <summary>Strings and lists of text parts both render the text: messages are passed as given.</summary>
    Any,
    /// <summary>Only string content renders (e.g. Qwen3's template drops lists, Llama 3's prints their repr): text
    /// parts are joined with "\n" into one string.</summary>
    String,
    /// <summary>Only lists of parts render: string content is passed as one text part.</summary>
    Parts,
}

/// <summary>
/// Turns an OpenAI-style conversation into a model's prompt: renders the chat template (the model's own, else a
/// built-in fallback) with <c>bos_token</c>/<c>eos_token</c> from the vocabulary, then tokenizes the result with
/// special tokens parsed. Thread-safe and free of I/O: create one per model and share it (CLI chat, HTTP server).
/// </summary>
/// <remarks>
/// <para><b>BOS rule.</b> BOS is added when the vocabulary's metadata says so (<see cref="Vocabulary.AddBos"/>),
/// except when the rendered prompt already begins with the BOS token's text (templates that print
/// <c>{{ bos_token }}</c>, e.g. Llama 3's): then the prompt has exactly one BOS, the one the template wrote. Likewise
/// EOS is appended only when the metadata asks for it and the prompt does not already end with it. This is what
/// llama.cpp's chat path does; <c>run</c> and <c>tokenize</c> keep llama.cpp's plain tokenization, which can give two.</para>
/// <para><b>Messages.</b> <see cref="Validate"/> rejects malformed messages with an <see cref="InvalidRequestException"/>
/// naming the field. Before rendering, <c>tool_calls[].function.arguments</c> given as a JSON string (as OpenAI
/// clients send them) is parsed into an object when it holds one, and content is adapted to what the template
/// renders (<see cref="ContentFormat"/>). Template failures are <see cref="TemplateException"/>s; for
/// <c>raise_exception(msg)</c> the message is exactly <c>msg</c>.</para>
/// </remarks>
internal sealed class ChatFormatter
{
    private static readonly string[] ReservedVariables = ["messages", "tools", "add_generation_prompt"];
    private const string ProbeText = "sharpinfer-content-probe";

    /// <summary>The tokenizer prompts are encoded with.</summary>
    public Tokenizer Tokenizer { get; }
    /// <summary>The parsed template (the model's, or a fallback: see <see cref="ChatTemplate.FallbackKind"/>).</summary>
    public ChatTemplate Template { get; }
    /// <summary>The BOS token's text passed as <c>bos_token</c> (null when the vocabulary has no BOS).</summary>
    public string? BosToken { get; }
    /// <summary>The EOS token's text passed as <c>eos_token</c> (null when the vocabulary has no EOS).</summary>
    public string? EosToken { get; }
    /// <summary>How the template wants message content.</summary>
    public ChatContentFormat ContentFormat { get; }

    /// <summary>A formatter for <paramref name="tokenizer"/> and a template source (null or blank: the fallback the
    /// vocabulary implies). Throws <see cref="TemplateException"/> when the template does not parse.</summary>
    public ChatFormatter(Tokenizer tokenizer, string? chatTemplate, JinjaOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        Tokenizer = tokenizer;
        var vocab = tokenizer.Vocabulary;
        Template = ChatTemplate.ForModel(chatTemplate, t => vocab.GetId(t) != Vocabulary.None, options);
        BosToken = TokenText(vocab.BosId);
        EosToken = TokenText(vocab.EosId);
        ContentFormat = ProbeContentFormat();
    }

    /// <summary>A formatter for a loaded model: its tokenizer and <c>tokenizer.chat_template</c>, or
    /// <paramref name="chatTemplate"/> when given (e.g. from <c>--chat-template-file</c>).</summary>
    public static ChatFormatter ForModel(Model model, string? chatTemplate = null, JinjaOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new ChatFormatter(model.Tokenizer, chatTemplate ?? model.ChatTemplate, options);
    }

    /// <summary>Renders and tokenizes a conversation.</summary>
    /// <exception cref="InvalidRequestException">Malformed messages, tools or variables.</exception>
    /// <exception cref="TemplateException">The template failed or raised.</exception>
    public ChatPrompt Format(ChatFormatRequest request)
    {
        string text = Render(request);
        return new ChatPrompt(text, Tokenize(text, out bool addedBos), addedBos);
    }

    /// <summary>Renders a conversation to the prompt text (no tokenization).</summary>
    /// <exception cref="InvalidRequestException">Malformed messages, tools or variables.</exception>
    /// <exception cref="TemplateException">The template failed or raised.</exception>
    public string Render(ChatFormatRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        Validate(request.Messages, request.Tools);
        Dictionary<string, JsonNode?>? variables = null;
        string? bos = BosToken, eos = EosToken;
        if (request.Variables is { Count: > 0 } given)
        {
            variables = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
            ValidateVariables(given);
            foreach (var (name, value) in given)
            {
                // ChatRenderRequest's named properties win over Variables, so an override must clear them
                if (name == "bos_token") bos = null;
                else if (name == "eos_token") eos = null;
                variables[name] = value;
            }
        }
        return Template.Render(new ChatRenderRequest
        {
            Messages = PrepareMessages(request.Messages),
            Tools = request.Tools,
            AddGenerationPrompt = request.AddGenerationPrompt,
            BosToken = bos,
            EosToken = eos,
            Variables = variables,
        });
    }

    /// <summary>Token ids of a rendered prompt under the chat BOS rule (special tokens parsed).</summary>
    public int[] Tokenize(string renderedPrompt) => Tokenize(renderedPrompt, out _);

    private int[] Tokenize(string text, out bool addedBos)
    {
        ArgumentNullException.ThrowIfNull(text);
        var vocab = Tokenizer.Vocabulary;
        var ids = new List<int>(text.Length / 3 + 4);
        addedBos = vocab.AddBos && vocab.BosId != Vocabulary.None
                   && !(BosToken is { Length: > 0 } b && text.StartsWith(b, StringComparison.Ordinal));
        if (addedBos) ids.Add(vocab.BosId);
        Tokenizer.Encode(text, ids, addSpecial: false, parseSpecial: true);
        if (vocab.AddEos && vocab.EosId != Vocabulary.None
            && !(EosToken is { Length: > 0 } e && text.EndsWith(e, StringComparison.Ordinal)))
            ids.Add(vocab.EosId);
        return [.. ids];
    }

    /// <summary>Checks extra template variables: names must be non-empty and not <c>messages</c>, <c>tools</c> or
    /// <c>add_generation_prompt</c> (those come from the request itself).</summary>
    public static void ValidateVariables(IReadOnlyDictionary<string, JsonNode?>? variables)
    {
        if (variables is null) return;
        foreach (var name in variables.Keys)
        {
            if (string.IsNullOrEmpty(name)) throw new InvalidRequestException("template variable names must not be empty", "variables");
            if (Array.IndexOf(ReservedVariables, name) >= 0)
                throw new InvalidRequestException($"'{name}' cannot be set as a template variable", name);
        }
    }

    /// <summary>Checks a conversation's shape; throws <see cref="InvalidRequestException"/> (field: the JSON path of
    /// the problem, e.g. <c>messages[1].content</c>) at the first problem.</summary>
    public static void Validate(JsonArray? messages, JsonArray? tools = null)
    {
        if (messages is null) throw new InvalidRequestException("'messages' is required", "messages");
        if (messages.Count == 0) throw new InvalidRequestException("'messages' must contain at least one message", "messages");
        for (int i = 0; i < messages.Count; i++)
        {
            string at = $"messages[{i}]";
            if (messages[i] is not JsonObject m) throw new InvalidRequestException($"'{at}' must be an object with 'role' and 'content', got {Kind(messages[i])}", at);
            if (!m.TryGetPropertyValue("role", out var roleNode) || roleNode is null)
                throw new InvalidRequestException($"'{at}.role' is required", $"{at}.role");
            if (roleNode.GetValueKind() != JsonValueKind.String)
                throw new InvalidRequestException($"'{at}.role' must be a string, got {Kind(roleNode)}", $"{at}.role");
            string role = roleNode.GetValue<string>();
            if (role.Length == 0) throw new InvalidRequestException($"'{at}.role' must not be empty", $"{at}.role");
            m.TryGetPropertyValue("content", out var content);
            switch (content)
            {
                case null:
                    if (role != "assistant")
                        throw new InvalidRequestException($"'{at}.content' is required for a '{role}' message (only assistant messages may omit it)", $"{at}.content");
                    break;
                case JsonArray parts:
                    ValidateParts(parts, $"{at}.content");
                    break;
                case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                    break;
                default:
                    throw new InvalidRequestException($"'{at}.content' must be a string or an array of content parts, got {Kind(content)}", $"{at}.content");
            }
            if (m.TryGetPropertyValue("tool_calls", out var calls) && calls is not null)
            {
                if (calls is not JsonArray callList)
                    throw new InvalidRequestException($"'{at}.tool_calls' must be an array, got {Kind(calls)}", $"{at}.tool_calls");
                for (int j = 0; j < callList.Count; j++)
                {
                    string cat = $"{at}.tool_calls[{j}]";
                    if (callList[j] is not JsonObject call) throw new InvalidRequestException($"'{cat}' must be an object, got {Kind(callList[j])}", cat);
                    if (call["function"] is not JsonObject fn) throw new InvalidRequestException($"'{cat}.function' must be an object", $"{cat}.function");
                    if (fn["name"] is not JsonValue name || name.GetValueKind() != JsonValueKind.String)
                        throw new InvalidRequestException($"'{cat}.function.name' must be a string", $"{cat}.function.name");
                }
            }
        }
        if (tools is not null)
            for (int i = 0; i < tools.Count; i++)
                if (tools[i] is not JsonObject)
                    throw new InvalidRequestException($"'tools[{i}]' must be an object, got {Kind(tools[i])}", $"tools[{i}]");
    }

    private static void ValidateParts(JsonArray parts, string at)
    {
        for (int k = 0; k < parts.Count; k++)
        {
            string pat = $"{at}[{k}]";
            if (parts[k] is not JsonObject part) throw new InvalidRequestException($"'{pat}' must be a content part object, got {Kind(parts[k])}", pat);
            if (part["type"] is not JsonValue type || type.GetValueKind() != JsonValueKind.String)
                throw new InvalidRequestException($"'{pat}.type' must be a string", $"{pat}.type");
            string t = type.GetValue<string>();
            if (t != "text")
                throw new InvalidRequestException($"'{pat}.type' is '{t}': only text content parts are supported", $"{pat}.type");
            if (part["text"] is not JsonValue text || text.GetValueKind() != JsonValueKind.String)
                throw new InvalidRequestException($"'{pat}.text' must be a string", $"{pat}.text");
        }
    }

    private static string Kind(JsonNode? n) => n switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "an array",
        _ => n.GetValueKind() switch
        {
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => "null",
        },
    };

    /// <summary>A copy of the (validated) messages with null/missing content as "", string tool-call arguments parsed and
    /// content adapted to <see cref="ContentFormat"/>. The caller's array is left untouched.</summary>
    private JsonArray PrepareMessages(JsonArray messages)
    {
        var copy = new JsonArray();
        foreach (var node in messages)
        {
            var m = (JsonObject)node!.DeepClone();
            // null or missing content (an assistant turn that only calls tools, as the OpenAI SDKs send it) is passed as
            // "": that is what llama-server gives the template, and templates such as Qwen3's test `'</think>' in content`
            if (m["content"] is null) m["content"] = "";
            var content = m["content"];
            if (ContentFormat == ChatContentFormat.String && content is JsonArray parts)
            {
                var sb = new StringBuilder();
                foreach (var p in parts)
                {
                    if (sb.Length > 0) sb.Append('\n');
                    sb.Append(p!["text"]!.GetValue<string>());
                }
                m["content"] = sb.ToString();
            }
            else if (ContentFormat == ChatContentFormat.Parts && content is JsonValue s && s.GetValueKind() == JsonValueKind.String)
                m["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = s.GetValue<string>() });
            if (m["tool_calls"] is JsonArray calls)
                foreach (var call in calls)
                    if (call!["function"] is JsonObject fn && fn["arguments"] is JsonValue a && a.GetValueKind() == JsonValueKind.String
                        && TryParseObject(a.GetValue<string>()) is { } parsed)
                        fn["arguments"] = parsed;
            copy.Add((JsonNode)m);
        }
        return copy;
    }

    private static JsonObject? TryParseObject(string s)
    {
        try
        {
            return JsonNode.Parse(s) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private string? TokenText(int id) =>
        id == Vocabulary.None ? null : Encoding.UTF8.GetString(Tokenizer.PieceBytes(id, renderSpecial: true));

    /// <summary>Renders one user message as a string and as a text part: if only one form shows the text, the template
    /// needs that form. A template that fails on the probe is given messages as they come.</summary>
    private ChatContentFormat ProbeContentFormat()
    {
        string? Probe(JsonNode content)
        {
            try
            {
                return Template.Render(new ChatRenderRequest
                {
                    Messages = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),   // not [..]: that is the trim-unsafe Add<T>
                    BosToken = BosToken,
                    EosToken = EosToken,
                });
            }
            catch (TemplateException)
            {
                return null;
            }
        }
        string? asString = Probe(ProbeText);
        string? asParts = Probe(new JsonArray(new JsonObject { ["type"] = "text", ["text"] = ProbeText }));
        bool stringWorks = asString?.Contains(ProbeText, StringComparison.Ordinal) == true;
        bool partsWork = asParts?.Contains(ProbeText, StringComparison.Ordinal) == true && asParts == asString;
        if (stringWorks && !partsWork) return ChatContentFormat.String;
        if (!stringWorks && asParts?.Contains(ProbeText, StringComparison.Ordinal) == true) return ChatContentFormat.Parts;
        return ChatContentFormat.Any;
    }
}
