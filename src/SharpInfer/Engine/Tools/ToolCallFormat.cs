namespace SharpInfer.Engine.Tools;

/// <summary>How a model writes tool calls, detected from its chat template (the markers llama.cpp's common/chat.cpp
/// looks for).</summary>
internal enum ToolCallFormat
{
    /// <summary>Hermes 2 Pro / Qwen2.5 / Qwen3: <c>&lt;tool_call&gt;{"name": .., "arguments": ..}&lt;/tool_call&gt;</c>,
    /// one block per call.</summary>
    Hermes,
    /// <summary>Llama 3.1/3.2/3.3: a JSON object <c>{"name": .., "parameters": ..}</c> as the whole reply, optionally
    /// after <c>&lt;|python_tag|&gt;</c>.</summary>
    Llama3,
    /// <summary>Mistral Nemo and later: <c>[TOOL_CALLS][{"name": .., "arguments": .., "id": ..}, ...]</c>.</summary>
    Mistral,
    /// <summary>Templates with no tool syntax: the reply is <c>{"tool_call": {"name": .., "arguments": ..}}</c>,
    /// <c>{"tool_calls": [...]}</c> or <c>{"response": ".."}</c>, explained to the model in a system message.</summary>
    Generic,
    /// <summary>gpt-oss's harmony format: a message on the commentary channel to the function,
    /// <c>&lt;|channel|&gt;commentary to=functions.NAME &lt;|constrain|&gt;json&lt;|message|&gt;{args}&lt;|call|&gt;</c>
    /// (or with the recipient in the role: <c>&lt;|start|&gt;assistant to=functions.NAME&lt;|channel|&gt;commentary json</c>);
    /// one call per reply, as <c>&lt;|call|&gt;</c> ends generation. Parsed by <see cref="HarmonySplitter"/>.</summary>
    Harmony,
}

internal static class ToolCallFormats
{
    /// <summary>The format a template's source implies, checked in llama.cpp's order of specificity.</summary>
    public static ToolCallFormat Detect(string? templateSource)
    {
        var s = templateSource ?? "";
        if (s.Contains("<|channel|>commentary", StringComparison.Ordinal) && s.Contains("to=", StringComparison.Ordinal)) return ToolCallFormat.Harmony;
        if (s.Contains("[TOOL_CALLS]", StringComparison.Ordinal)) return ToolCallFormat.Mistral;
        if (s.Contains("<tool_call>", StringComparison.Ordinal)) return ToolCallFormat.Hermes;
        if (s.Contains("<|start_header_id|>ipython<|end_header_id|>", StringComparison.Ordinal)
            || s.Contains("<|python_tag|>", StringComparison.Ordinal))
            return ToolCallFormat.Llama3;
        return ToolCallFormat.Generic;
    }
}
