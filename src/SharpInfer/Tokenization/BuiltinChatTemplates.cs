namespace SharpInfer.Tokenization;

/// <summary>
/// llama.cpp's built-in chat templates by name (<c>--chat-template chatml</c>, <c>llama3</c>, <c>command-r</c>, ...:
/// the <c>LLM_CHAT_TEMPLATES</c> list of src/llama-chat.cpp), written as Jinja that renders what llama.cpp's C++
/// formatter writes, byte for byte. Content is <c>message['content']</c> as a string (list content reaches these
/// templates joined with "\n", as in llama.cpp); where llama.cpp trims a message, <c>| trim</c> does.
/// </summary>
/// <remarks>
/// <para>The names cover the common families; llama.cpp's rarer ones (exaone, granite, gigachat, hunyuan, kimi-k2,
/// ...) are not built in: a model with such a format ships its own Jinja template, which is used instead.</para>
/// <para><b>Deviation.</b> With <c>--jinja</c> llama.cpp treats any <c>--chat-template</c> value other than
/// <c>chatml</c> as Jinja source (so <c>llama3</c> renders the literal text "llama3"), and only without
/// <c>--jinja</c> maps names; SharpInfer always maps a known name, and takes anything else as Jinja source.</para>
/// </remarks>
internal static class BuiltinChatTemplates
{
    /// <summary>llama.cpp's CHATML_TEMPLATE_SRC (common/chat.cpp): what llama.cpp uses for a model without a template.</summary>
    public const string ChatMl =
        "{%- for message in messages -%}" +
        "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}" +
        "{%- endfor -%}" +
        "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

    private static readonly Dictionary<string, string> Sources = new(StringComparer.Ordinal)
    {
        ["chatml"] = ChatMl,
        ["llama2"] = Llama2(system: false, bosInHistory: false, strip: false),
        ["llama2-sys"] = Llama2(system: true, bosInHistory: false, strip: false),
        ["llama2-sys-bos"] = Llama2(system: true, bosInHistory: true, strip: false),
        ["llama2-sys-strip"] = Llama2(system: true, bosInHistory: false, strip: true),
        ["mistral-v1"] = MistralV1V3(leading: " ", trailing: " ", trimAssistant: false),
        ["mistral-v3"] = MistralV1V3(leading: "", trailing: " ", trimAssistant: true),
        ["mistral-v3-tekken"] = MistralV1V3(leading: "", trailing: "", trimAssistant: false),
        ["mistral-v7"] = MistralV7(" "),
        ["mistral-v7-tekken"] = MistralV7(""),
        ["phi3"] = PerMessage("'<|' + message.role + '|>\\n' + message.content + '<|end|>\\n'", "<|assistant|>\\n"),
        ["phi4"] = PerMessage("'<|im_start|>' + message.role + '<|im_sep|>' + message.content + '<|im_end|>'", "<|im_start|>assistant<|im_sep|>"),
        ["falcon3"] = PerMessage("'<|' + message.role + '|>\\n' + message.content + '\\n'", "<|assistant|>\\n"),
        ["zephyr"] = PerMessage("'<|' + message.role + '|>\\n' + message.content + '<|endoftext|>\\n'", "<|assistant|>\\n"),
        ["monarch"] = PerMessage("('' if loop.first else '<s>') + message.role + '\\n' + message.content + '</s>\\n'", "<s>assistant\\n"),
        ["llama3"] = PerMessage("'<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + message.content | trim + '<|eot_id|>'",
                                "<|start_header_id|>assistant<|end_header_id|>\\n\\n"),
        ["command-r"] =
            "{%- for message in messages -%}" +
            "{%- set token = {'system': '<|SYSTEM_TOKEN|>', 'user': '<|USER_TOKEN|>', 'assistant': '<|CHATBOT_TOKEN|>'}.get(message.role) -%}" +
            "{%- if token -%}{{- '<|START_OF_TURN_TOKEN|>' + token + message.content | trim + '<|END_OF_TURN_TOKEN|>' -}}{%- endif -%}" +
            "{%- endfor -%}" +
            "{%- if add_generation_prompt -%}{{- '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' -}}{%- endif -%}",
        ["gemma"] =
            "{%- set ns = namespace(system='') -%}" +
            "{%- for message in messages -%}" +
            "{%- if message.role == 'system' -%}{%- set ns.system = ns.system + message.content | trim -%}" +
            "{%- else -%}" +
            "{%- set role = 'model' if message.role == 'assistant' else message.role -%}" +
            "{{- '<start_of_turn>' + role + '\\n' -}}" +
            "{%- if ns.system and role != 'model' -%}{{- ns.system + '\\n\\n' -}}{%- set ns.system = '' -%}{%- endif -%}" +
            "{{- message.content | trim + '<end_of_turn>\\n' -}}" +
            "{%- endif -%}" +
            "{%- endfor -%}" +
            "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}",
        ["openchat"] =
            "{%- for message in messages -%}" +
            "{%- if message.role == 'system' -%}{{- message.content + '<|end_of_turn|>' -}}" +
            "{%- else -%}{{- 'GPT4 Correct ' + message.role[:1] | upper + message.role[1:] + ': ' + message.content + '<|end_of_turn|>' -}}{%- endif -%}" +
            "{%- endfor -%}" +
            "{%- if add_generation_prompt -%}{{- 'GPT4 Correct Assistant:' -}}{%- endif -%}",
        ["vicuna"] = Vicuna("message.content + '\\n\\n'"),
        ["vicuna-orca"] = Vicuna("'SYSTEM: ' + message.content + '\\n'"),
        ["deepseek"] = ByRole("message.content", "'### Instruction:\\n' + message.content + '\\n'",
                              "'### Response:\\n' + message.content + '\\n<|EOT|>\\n'", "### Response:\\n"),
        ["deepseek2"] = ByRole("message.content + '\\n\\n'", "'User: ' + message.content + '\\n\\n'",
                               "'Assistant: ' + message.content + '<｜end▁of▁sentence｜>'", "Assistant:"),
        ["deepseek3"] = ByRole("message.content + '\\n\\n'", "'<｜User｜>' + message.content",
                               "'<｜Assistant｜>' + message.content + '<｜end▁of▁sentence｜>'", "<｜Assistant｜>"),
        ["chatglm3"] = "{{- '[gMASK]sop' -}}" + PerMessage("'<|' + message.role + '|>\\n ' + message.content", "<|assistant|>"),
        ["chatglm4"] = "{{- '[gMASK]<sop>' -}}" + PerMessage("'<|' + message.role + '|>\\n' + message.content", "<|assistant|>\\n"),
        ["glmedge"] = PerMessage("'<|' + message.role + '|>\\n' + message.content", "<|assistant|>"),
        ["minicpm"] =
            "{%- for message in messages -%}" +
            "{%- if message.role == 'user' -%}{{- '<用户>' + message.content | trim + '<AI>' -}}{%- else -%}{{- message.content | trim -}}{%- endif -%}" +
            "{%- endfor -%}",
    };

    /// <summary>The built-in names, sorted.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Sources.Keys.Order(StringComparer.Ordinal)];

    /// <summary>The Jinja source of the built-in template <paramref name="name"/> (exact, case-sensitive, as llama.cpp).</summary>
    public static bool TryGetSource(string name, out string source) => Sources.TryGetValue(name, out source!);

    private static string PerMessage(string perMessage, string generationPrompt) =>
        "{%- for message in messages -%}{{- " + perMessage + " -}}{%- endfor -%}" +
        "{%- if add_generation_prompt -%}{{- '" + generationPrompt + "' -}}{%- endif -%}";

    private static string ByRole(string system, string user, string assistant, string generationPrompt) =>
        "{%- for message in messages -%}" +
        "{%- if message.role == 'system' -%}{{- " + system + " -}}" +
        "{%- elif message.role == 'user' -%}{{- " + user + " -}}" +
        "{%- elif message.role == 'assistant' -%}{{- " + assistant + " -}}{%- endif -%}" +
        "{%- endfor -%}" +
        "{%- if add_generation_prompt -%}{{- '" + generationPrompt + "' -}}{%- endif -%}";

    private static string Vicuna(string system) =>
        ByRole(system, "'USER: ' + message.content + '\\n'", "'ASSISTANT: ' + message.content + '</s>\\n'", "ASSISTANT:");

    // llama.cpp's llama2 family: "[INST] " opens the first turn (BOS comes from tokenization), an assistant
    // reply closes a turn with "</s>", and the next message reopens one; no generation prompt.
    private static string Llama2(bool system, bool bosInHistory, bool strip) =>
        "{%- set ns = namespace(inside=true) -%}{{- '[INST] ' -}}" +
        "{%- for message in messages -%}" +
        (strip ? "{%- set content = message.content | trim -%}" : "{%- set content = message.content -%}") +
        "{%- if not ns.inside -%}{%- set ns.inside = true -%}{{- '" + (bosInHistory ? "<s>[INST] " : "[INST] ") + "' -}}{%- endif -%}" +
        "{%- if message.role == 'system' -%}" +
        (system ? "{{- '<<SYS>>\\n' + content + '\\n<</SYS>>\\n\\n' -}}" : "{{- content + '\\n' -}}") +
        "{%- elif message.role == 'user' -%}{{- content + ' [/INST]' -}}" +
        "{%- else -%}{{- content + '</s>' -}}{%- set ns.inside = false -%}{%- endif -%}" +
        "{%- endfor -%}";

    private static string MistralV1V3(string leading, string trailing, bool trimAssistant) =>
        "{%- set ns = namespace(inside=false) -%}" +
        "{%- for message in messages -%}" +
        "{%- if not ns.inside -%}{{- '" + leading + "[INST]" + trailing + "' -}}{%- set ns.inside = true -%}{%- endif -%}" +
        "{%- if message.role == 'system' -%}{{- message.content + '\\n\\n' -}}" +
        "{%- elif message.role == 'user' -%}{{- message.content + '" + leading + "[/INST]' -}}" +
        "{%- else -%}{{- '" + trailing + "' + message.content" + (trimAssistant ? " | trim" : "") + " + '</s>' -}}{%- set ns.inside = false -%}{%- endif -%}" +
        "{%- endfor -%}";

    private static string MistralV7(string space) =>
        "{%- for message in messages -%}" +
        "{%- if message.role == 'system' -%}{{- '[SYSTEM_PROMPT]" + space + "' + message.content + '[/SYSTEM_PROMPT]' -}}" +
        "{%- elif message.role == 'user' -%}{{- '[INST]" + space + "' + message.content + '[/INST]' -}}" +
        "{%- else -%}{{- '" + space + "' + message.content + '</s>' -}}{%- endif -%}" +
        "{%- endfor -%}";
}
