using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Models;
using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Server;

/// <summary>
/// Request prompts → token ids, the one place the server does this. Chat messages go through the engine's
/// <see cref="ChatFormatter"/> (the model's template, a built-in one named by <c>--chat-template</c>, or ChatML for a
/// model without one; bos/eos texts from the vocabulary, BOS added unless the rendered prompt already starts with
/// it, message validation naming the field); completion prompts are tokenized as llama-server does (BOS/EOS per the
/// vocabulary, special tokens parsed).
/// </summary>
/// <remarks>
/// Template variables, as llama-server passes them (lowest precedence first): <c>enable_thinking</c> (true unless
/// <c>--reasoning off</c>), <c>date_string</c> (<c>"06 Dec 2026"</c>, read by Llama 3.x templates) and
/// <c>datetime</c> (<c>"Dec 06 2026"</c>, firefunction), the server's <c>--chat-template-kwargs</c> and
/// <c>--reasoning on|off</c>, then the request's <c>chat_template_kwargs</c>, and <c>reasoning_effort: "none"</c>
/// (OpenAI's way to switch reasoning off) as <c>enable_thinking: false</c>.
/// </remarks>
internal sealed class PromptBuilder(Model model, string? chatTemplate = null, IReadOnlyDictionary<string, JsonNode?>? serverKwargs = null,
                                  Func<DateTimeOffset>? clock = null)
{
    private const string ThinkingSwitch = "enable_thinking";
    // llama-server's Jinja concatenates a string with None/undefined; templates written against it rely on that
    private static readonly JinjaOptions TemplateOptions = JinjaOptions.Default with { ConcatNoneAsEmpty = true };
    private readonly ChatFormatter _formatter = ChatFormatter.ForModel(model, chatTemplate, TemplateOptions);
    private readonly IReadOnlyDictionary<string, JsonNode?> _serverKwargs = serverKwargs ?? new Dictionary<string, JsonNode?>();
    private readonly Func<DateTimeOffset> _clock = clock ?? (() => DateTimeOffset.Now);

    public ChatFormatter Formatter => _formatter;

    /// <summary>The variables a request sets: the server's <c>--chat-template-kwargs</c>/<c>--reasoning</c>, the
    /// request's <c>chat_template_kwargs</c> over them, and <c>reasoning_effort: "none"</c>. llama-server's rule: an
    /// <c>enable_thinking</c> that is not a boolean is a 400.</summary>
    public Dictionary<string, JsonNode?> RequestVariables(JsonObject? requestKwargs, string? reasoningEffort = null)
    {
        var vars = new Dictionary<string, JsonNode?>(_serverKwargs, StringComparer.Ordinal);
        if (requestKwargs is not null)
            foreach (var (k, v) in requestKwargs) vars[k] = v?.DeepClone();
        if (vars.TryGetValue(ThinkingSwitch, out var thinking) && thinking is not null
            && thinking.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False))
            throw new InvalidRequestException($"invalid type for \"{ThinkingSwitch}\" (expected boolean, got {thinking.GetValueKind().ToString().ToLowerInvariant()})",
                                              $"chat_template_kwargs.{ThinkingSwitch}");
        if (reasoningEffort == "none") vars[ThinkingSwitch] = false;
        return vars;
    }

    /// <summary>What every render gets unless the request or the server set it (llama-server's extra context).</summary>
    public Dictionary<string, JsonNode?> WithDefaults(IReadOnlyDictionary<string, JsonNode?>? variables)
    {
        var now = _clock();
        var all = new Dictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            [ThinkingSwitch] = true,
            ["date_string"] = now.ToString("dd MMM yyyy", CultureInfo.InvariantCulture),
            ["datetime"] = now.ToString("MMM dd yyyy", CultureInfo.InvariantCulture),
        };
        foreach (var (k, v) in _serverKwargs) all[k] = v;
        if (variables is not null)
            foreach (var (k, v) in variables) all[k] = v;
        return all;
    }

    /// <summary>Renders and tokenizes a conversation (<see cref="WithDefaults"/> applied to <paramref name="variables"/>);
    /// <paramref name="continuation"/> (a final assistant message being continued) follows the rendered text.</summary>
    public (string Text, int[] Tokens) Build(JsonArray messages, JsonArray? tools = null, bool addGenerationPrompt = true,
                                             IReadOnlyDictionary<string, JsonNode?>? variables = null, string? continuation = null)
    {
        if (continuation is not null)
        {
            string text = Render(messages, tools, addGenerationPrompt, variables) + continuation;
            return (text, _formatter.Tokenize(text));
        }
        var p = _formatter.Format(Request(messages, tools, addGenerationPrompt, variables));
        return (p.Text, p.TokenIds);
    }

    /// <summary>Renders a conversation without tokenizing it (<c>/apply-template</c>).</summary>
    public string Render(JsonArray messages, JsonArray? tools = null, bool addGenerationPrompt = true,
                         IReadOnlyDictionary<string, JsonNode?>? variables = null) =>
        _formatter.Render(Request(messages, tools, addGenerationPrompt, variables));

    private ChatFormatRequest Request(JsonArray messages, JsonArray? tools, bool addGenerationPrompt, IReadOnlyDictionary<string, JsonNode?>? variables) => new()
    {
        Messages = messages,
        Tools = tools,
        AddGenerationPrompt = addGenerationPrompt,
        Variables = WithDefaults(variables),
    };

    public int[] TokenizeCompletionPrompt(string prompt) => model.Tokenizer.Encode(prompt, addSpecial: true, parseSpecial: true);

    /// <summary><see cref="TokenizeCompletionPrompt(string)"/> within a budget: null once the prompt has more than
    /// <paramref name="maxTokens"/> tokens, found without tokenizing the rest.</summary>
    public int[]? TokenizeCompletionPrompt(string prompt, int maxTokens) => model.Tokenizer.EncodeAtMost(prompt, maxTokens, addSpecial: true, parseSpecial: true);
}
