using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tokenization;

/// <summary>What to render a chat template with. Only the variables that are set are passed to the
/// template (a null <see cref="Tools"/>, <see cref="BosToken"/> or <see cref="EosToken"/> leaves the name
/// undefined, so <c>tools is defined</c> is false), except <c>add_generation_prompt</c> which is always passed.</summary>
internal sealed class ChatRenderRequest
{
    /// <summary>The conversation: objects with <c>role</c> (system, user, assistant, tool, ...), <c>content</c>
    /// (a string or a list of content parts), and optionally <c>tool_calls</c>, <c>tool_call_id</c>,
    /// <c>reasoning_content</c>, ... exactly as in the OpenAI chat API. Passed as <c>messages</c>.</summary>
    public required JsonArray Messages { get; init; }
    /// <summary>Tool (function) definitions, passed as <c>tools</c> when not null.</summary>
    public JsonArray? Tools { get; init; }
    /// <summary>Passed as <c>add_generation_prompt</c>: end the prompt with the assistant turn header.</summary>
    public bool AddGenerationPrompt { get; init; } = true;
    /// <summary>Passed as <c>bos_token</c> when not null.</summary>
    public string? BosToken { get; init; }
    /// <summary>Passed as <c>eos_token</c> when not null.</summary>
    public string? EosToken { get; init; }
    /// <summary>Any other template variables (<c>enable_thinking</c>, <c>builtin_tools</c>, <c>date_string</c>,
    /// <c>reasoning_effort</c>, <c>documents</c>, ...). The named properties above take precedence.</summary>
    public IReadOnlyDictionary<string, JsonNode?>? Variables { get; init; }
}

/// <summary>Which built-in template <see cref="ChatTemplate.Fallback"/> picked.</summary>
internal enum ChatTemplateFallback
{
    /// <summary><c>&lt;|im_start|&gt;role\n...&lt;|im_end|&gt;\n</c> (Qwen, many fine-tunes).</summary>
    ChatMl,
    /// <summary><c>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\n...&lt;|eot_id|&gt;</c>.</summary>
    Llama3,
    /// <summary><c>[INST] ... [/INST]</c> with an optional <c>&lt;&lt;SYS&gt;&gt;</c> block.</summary>
    Llama2,
}

/// <summary>A model's chat template (Jinja, as in <c>tokenizer.chat_template</c>), parsed once and rendered
/// per request. Rendering a parsed template is cheap and thread-safe.</summary>
/// <remarks>
/// <para>When a model has no template, <see cref="ForModel"/> uses ChatML, as llama.cpp does; <see cref="Fallback"/>
/// picks by vocabulary instead: ChatML when the vocabulary has <c>&lt;|im_start|&gt;</c>, else Llama-3 style when it has
/// <c>&lt;|start_header_id|&gt;</c>, else the Llama 2 <c>[INST]</c> format. The choice depends only on a
/// <c>hasToken</c> predicate, not on the tokenizer type.</para>
/// <para>Templates that write <c>{{ bos_token }}</c> put the BOS text into the prompt: pass
/// <see cref="ChatRenderRequest.BosToken"/> only if the tokenizer will not add BOS itself.
/// <see cref="Engine.ChatFormatter"/> does all of this for a model (bos/eos from the vocabulary, the chat BOS rule,
/// message validation, tokenization).</para>
/// </remarks>
internal sealed class ChatTemplate
{
    private static readonly ConcurrentDictionary<(string, JinjaOptions), ChatTemplate> Cache = new();
    private const int MaxCached = 64;

    /// <summary>The parsed template.</summary>
    public JinjaTemplate Template { get; }
    /// <summary>The template source.</summary>
    public string Source => Template.Source;
    /// <summary>Which fallback this is, or null for a model's own template.</summary>
    public ChatTemplateFallback? FallbackKind { get; }

    /// <summary>Parses <paramref name="template"/> (throws <see cref="TemplateException"/> on syntax errors).</summary>
    public ChatTemplate(string template, JinjaOptions? options = null)
        : this(JinjaTemplate.Parse(template, options), null) { }

    private ChatTemplate(JinjaTemplate template, ChatTemplateFallback? kind)
    {
        Template = template;
        FallbackKind = kind;
    }

    /// <summary>Like the constructor, but reuses an already parsed template for the same source and options
    /// (a small process-wide cache), so per-request callers do not re-parse.</summary>
    public static ChatTemplate GetCached(string template, JinjaOptions? options = null)
    {
        options ??= JinjaOptions.Default;
        if (Cache.TryGetValue((template, options), out var hit)) return hit;
        var t = new ChatTemplate(template, options);
        if (Cache.Count >= MaxCached) Cache.Clear();
        Cache[(template, options)] = t;
        return t;
    }

    /// <summary>The template to use for <paramref name="chatTemplate"/> (the model's <c>tokenizer.chat_template</c> or
    /// a <c>--chat-template</c> value): a built-in name (<see cref="BuiltinChatTemplates"/>: <c>chatml</c>,
    /// <c>llama3</c>, <c>command-r</c>, ...) gives that template, other non-blank text is Jinja source, and null or
    /// blank gives ChatML, as llama.cpp does for a model without a template (<paramref name="hasToken"/> is not
    /// consulted; <see cref="Fallback"/> picks by vocabulary instead).</summary>
    public static ChatTemplate ForModel(string? chatTemplate, Func<string, bool> hasToken, JinjaOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(hasToken);
        if (string.IsNullOrWhiteSpace(chatTemplate))
            return new ChatTemplate(JinjaTemplate.Parse(BuiltinChatTemplates.ChatMl, options), ChatTemplateFallback.ChatMl);
        return GetCached(BuiltinChatTemplates.TryGetSource(chatTemplate, out var builtin) ? builtin : chatTemplate, options);
    }

    /// <summary>Picks the built-in template for a model without one: ChatML when
    /// <c>hasToken("&lt;|im_start|&gt;")</c>, else Llama 3 when <c>hasToken("&lt;|start_header_id|&gt;")</c>,
    /// else Llama 2 <c>[INST]</c>.</summary>
    public static ChatTemplate Fallback(Func<string, bool> hasToken, JinjaOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(hasToken);
        var kind = hasToken("<|im_start|>") ? ChatTemplateFallback.ChatMl
            : hasToken("<|start_header_id|>") ? ChatTemplateFallback.Llama3
            : ChatTemplateFallback.Llama2;
        return new ChatTemplate(JinjaTemplate.Parse(FallbackSource(kind), options), kind);
    }

    /// <summary>The Jinja source of a built-in fallback template.</summary>
    public static string FallbackSource(ChatTemplateFallback kind) => kind switch
    {
        ChatTemplateFallback.ChatMl => ContentMacro +
            "{%- for message in messages %}" +
            "{{- '<|im_start|>' + message['role'] + '\\n' + text(message['content']) + '<|im_end|>\\n' }}" +
            "{%- endfor %}" +
            "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
        ChatTemplateFallback.Llama3 => ContentMacro +
            "{{- bos_token }}" +
            "{%- for message in messages %}" +
            "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + text(message['content']) | trim + '<|eot_id|>' }}" +
            "{%- endfor %}" +
            "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}",
        ChatTemplateFallback.Llama2 => ContentMacro +
            "{%- set ns = namespace(system='') %}" +
            "{%- for message in messages if message['role'] == 'system' %}" +
            "{%- set ns.system = ns.system + text(message['content']) | trim %}" +
            "{%- endfor %}" +
            "{%- set ns.first = true %}" +
            "{%- for message in messages if message['role'] != 'system' %}" +
            "{%- if message['role'] == 'assistant' %}" +
            "{{- ' ' + text(message['content']) | trim + ' ' + (eos_token or '') }}" +
            "{%- else %}" +
            "{%- set content = text(message['content']) | trim %}" +
            "{%- if ns.first and ns.system %}{%- set content = '<<SYS>>\\n' + ns.system + '\\n<</SYS>>\\n\\n' + content %}{%- endif %}" +
            "{%- set ns.first = false %}" +
            "{{- (bos_token or '') + '[INST] ' + content + ' [/INST]' }}" +
            "{%- endif %}" +
            "{%- endfor %}",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>text(content): a string as is; a list of content parts → the text of its "text" parts.</summary>
    private const string ContentMacro =
        "{%- macro text(content) -%}" +
        "{%- if content is string -%}{{ content }}" +
        "{%- elif content is iterable and content is not mapping -%}" +
        "{%- for part in content -%}{%- if part is mapping and part.get('type', 'text') == 'text' -%}{{ part.get('text', '') }}{%- elif part is string -%}{{ part }}{%- endif -%}{%- endfor -%}" +
        "{%- elif content is not none -%}{{ content }}" +
        "{%- endif -%}" +
        "{%- endmacro -%}";

    /// <summary>The template variables for a request (what <see cref="Render"/> passes).</summary>
    public static Dictionary<string, JinjaValue> BuildVariables(ChatRenderRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(request.Messages);
        var vars = new Dictionary<string, JinjaValue>(StringComparer.Ordinal);
        if (request.Variables is not null)
            foreach (var (k, v) in request.Variables) vars[k] = JinjaValue.FromJson(v);
        vars["messages"] = JinjaValue.FromJson(request.Messages);
        if (request.Tools is not null) vars["tools"] = JinjaValue.FromJson(request.Tools);
        vars["add_generation_prompt"] = JinjaValue.From(request.AddGenerationPrompt);
        if (request.BosToken is not null) vars["bos_token"] = JinjaValue.From(request.BosToken);
        if (request.EosToken is not null) vars["eos_token"] = JinjaValue.From(request.EosToken);
        return vars;
    }

    /// <summary>Renders the prompt text. Throws <see cref="TemplateException"/> when the template fails
    /// (for <c>raise_exception(msg)</c>: kind <see cref="TemplateErrorKind.Raised"/> and message <c>msg</c>).</summary>
    public string Render(ChatRenderRequest request) => Template.Render(BuildVariables(request));
}
