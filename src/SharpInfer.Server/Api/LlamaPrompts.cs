using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpInfer.Server.Api;

/// <summary>
/// llama-server's <c>prompt</c> forms, tokenized as it does: a string; a list of token ids; a list mixing ids and
/// strings (one prompt: strings tokenized in place, BOS only when the list starts with a string); an object
/// <c>{"prompt_string": ...}</c>; or a list of any of those but plain ids (one prompt each). A list that holds any
/// bare number is one prompt. Every prompt must fit the context (400 otherwise).
/// </summary>
internal static class LlamaPrompts
{
    public const string PromptStringKey = "prompt_string";

    public static List<int[]> Read(JsonNode? node, ModelHost host, string field = "prompt")
    {
        if (node is null) throw ApiException.BadRequest($"'{field}' is required.", field);
        var list = new List<int[]>();
        if (node is JsonArray arr && !arr.Any(IsNumber))
        {
            if (arr.Count == 0) throw ApiException.BadRequest($"'{field}' must not be empty.", field);
            for (int i = 0; i < arr.Count; i++) list.Add(One(arr[i], host, $"{field}[{i}]"));
        }
        else list.Add(One(node, host, field));
        return list;
    }

    private static bool IsNumber(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.Number;
    private static bool IsString(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.String;

    private static int[] One(JsonNode? node, ModelHost host, string field)
    {
        var engine = host.Engine!;
        switch (node)
        {
            case JsonValue when IsString(node):
                return PromptLimits.Tokenize(host.Prompts!, node!.GetValue<string>(), engine.MaxModelLen);
            case JsonArray arr:
                return Mixed(arr, host, field);
            case JsonObject obj:
                if (obj["multimodal_data"] is not null)
                    throw ApiException.BadRequest("Multimodal data provided, but the model does not support multimodal requests.", field);
                if (obj[PromptStringKey] is not { } inner)
                    throw ApiException.BadRequest($"'{field}' as an object needs a '{PromptStringKey}'.", field);
                return inner is JsonArray ia ? Mixed(ia, host, field) : One(inner, host, field);
            default:
                throw ApiException.BadRequest($"'{field}' elements must be a string, a list of tokens, a JSON object containing a prompt string, or a list of mixed strings & tokens.", field);
        }
    }

    /// <summary>Ids and strings in one prompt; a string first gets the vocabulary's BOS, later ones none.</summary>
    private static int[] Mixed(JsonArray arr, ModelHost host, string field)
    {
        var engine = host.Engine!;
        var tokenizer = engine.Model.Tokenizer;
        int vocab = engine.Model.Config.VocabSize;
        var ids = new List<int>();
        for (int i = 0; i < arr.Count; i++)
        {
            var item = arr[i];
            if (IsString(item))
                ids.AddRange(tokenizer.Encode(item!.GetValue<string>(), addSpecial: i == 0, parseSpecial: true));
            else if (IsNumber(item))
            {
                long id = JsonBody.AsLong(item!, field);
                if (id < 0 || id >= vocab)
                    throw ApiException.BadRequest($"'{field}' contains token id {id}, outside the vocabulary (0..{vocab - 1}).", field);
                ids.Add((int)id);
            }
            else throw ApiException.BadRequest($"'{field}' must hold only token ids and strings, got {JsonBody.Describe(item)}.", field);
            if (ids.Count >= engine.MaxModelLen) throw PromptLimits.TooLong(engine.MaxModelLen, $"at least {ids.Count} tokens", field);
        }
        return [.. ids];
    }
}
