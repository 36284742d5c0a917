using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Models;

namespace SharpInfer.Server;

/// <summary>
/// Request prompts → token ids, the one place the server does this. Chat messages go through the engine's
/// <see cref="ChatFormatter"/> (the model's template or a fallback, bos/eos texts from the vocabulary, BOS added
/// unless the rendered prompt already starts with it, message validation naming the field); completion prompts
/// are tokenized as llama-server does (BOS/EOS per the vocabulary, special tokens parsed).
/// </summary>
internal sealed class PromptBuilder(Model model, string? chatTemplate = null)
{
    private readonly ChatFormatter _formatter = ChatFormatter.ForModel(model, chatTemplate);

    public ChatFormatter Formatter => _formatter;

    /// <summary>Renders and tokenizes a conversation.</summary>
    public (string Text, int[] Tokens) Build(JsonArray messages, JsonArray? tools = null, bool addGenerationPrompt = true,
                                             IReadOnlyDictionary<string, JsonNode?>? variables = null)
    {
        var p = _formatter.Format(new ChatFormatRequest
        {
            Messages = messages,
            Tools = tools,
            AddGenerationPrompt = addGenerationPrompt,
            Variables = variables,
        });
        return (p.Text, p.TokenIds);
    }

    public int[] TokenizeCompletionPrompt(string prompt) => model.Tokenizer.Encode(prompt, addSpecial: true, parseSpecial: true);

    /// <summary><see cref="TokenizeCompletionPrompt(string)"/> within a budget: null once the prompt has more than
    /// <paramref name="maxTokens"/> tokens, found without tokenizing the rest.</summary>
    public int[]? TokenizeCompletionPrompt(string prompt, int maxTokens) => model.Tokenizer.EncodeAtMost(prompt, maxTokens, addSpecial: true, parseSpecial: true);
}
