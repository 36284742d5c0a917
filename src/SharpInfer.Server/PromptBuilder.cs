using System.Text.Json.Nodes;
using SharpInfer.Models;
using SharpInfer.Tokenization;

namespace SharpInfer.Server;

/// <summary>
/// Messages → prompt text → token ids, the one place the server does this (to be replaced by the engine's
/// <c>ChatFormatter</c> when it lands). The model's chat template (or the vocabulary-picked fallback) renders the
/// conversation with <c>bos_token</c>/<c>eos_token</c> set to the vocabulary's texts; the text is tokenized with
/// special tokens parsed and, when the vocabulary adds BOS, BOS is prepended unless the rendered prompt already
/// starts with the BOS text (templates that write <c>{{ bos_token }}</c> would otherwise get it twice).
/// </summary>
public sealed class PromptBuilder
{
    private readonly Model _model;
    private readonly ChatTemplate _template;
    private readonly string? _bosText, _eosText;

    public PromptBuilder(Model model)
    {
        _model = model;
        var v = model.Vocabulary;
        _template = ChatTemplate.ForModel(model.ChatTemplate, t => v.GetId(t) != Vocabulary.None);
        _bosText = v.BosId >= 0 && v.BosId < v.Count ? v.GetText(v.BosId) : null;
        _eosText = v.EosId >= 0 && v.EosId < v.Count ? v.GetText(v.EosId) : null;
    }

    /// <summary>The template in use (the model's own, or a fallback).</summary>
    public ChatTemplate Template => _template;

    /// <summary>Renders the conversation; throws <see cref="Tokenization.Jinja.TemplateException"/> when the template fails.</summary>
    public string Render(JsonArray messages, JsonArray? tools = null, bool addGenerationPrompt = true,
                         IReadOnlyDictionary<string, JsonNode?>? variables = null) =>
        _template.Render(new ChatRenderRequest
        {
            Messages = messages,
            Tools = tools,
            AddGenerationPrompt = addGenerationPrompt,
            BosToken = _bosText,
            EosToken = _eosText,
            Variables = variables,
        });

    /// <summary>Token ids of a rendered chat prompt: special tokens parsed, BOS per the rule above.</summary>
    public int[] Tokenize(string rendered)
    {
        var v = _model.Vocabulary;
        var ids = new List<int>(rendered.Length / 3 + 4);
        if (v.AddBos && v.BosId >= 0 && !(_bosText is { Length: > 0 } && rendered.StartsWith(_bosText, StringComparison.Ordinal)))
            ids.Add(v.BosId);
        _model.Tokenizer.Encode(rendered, ids, addSpecial: false, parseSpecial: true);
        return [.. ids];
    }

    /// <summary>Renders and tokenizes a conversation.</summary>
    public (string Text, int[] Tokens) Build(JsonArray messages, JsonArray? tools = null, bool addGenerationPrompt = true,
                                             IReadOnlyDictionary<string, JsonNode?>? variables = null)
    {
        var text = Render(messages, tools, addGenerationPrompt, variables);
        return (text, Tokenize(text));
    }

    /// <summary>Token ids of a plain completion prompt: BOS/EOS as the vocabulary says, special tokens parsed
    /// (as llama-server does).</summary>
    public int[] TokenizeCompletionPrompt(string prompt) => _model.Tokenizer.Encode(prompt, addSpecial: true, parseSpecial: true);
}
