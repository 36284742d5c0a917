using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using SharpInfer.Engine;
using SharpInfer.Engine.Pooling;

namespace SharpInfer.Server.Api;

/// <summary>
/// What the embedding and rerank endpoints share: reading prompts (a string, a list of strings, a list of token ids,
/// a list of lists of token ids) within the context, and running many pooling requests through the engine at once.
/// </summary>
internal static class PoolingRuns
{
    /// <summary>Most inputs (or documents) in one request: OpenAI's limit for embeddings.</summary>
    public const int MaxInputs = 2048;

    /// <summary>The prompts of <paramref name="field"/>, tokenized as llama-server tokenizes embedding inputs (BOS / EOS
    /// as the vocabulary adds them, special tokens parsed), each refused with a 400 when empty or longer than
    /// <paramref name="maxTokens"/>.</summary>
    public static List<int[]> ReadPrompts(JsonNode? node, string field, ModelHost host, int maxTokens)
    {
        var tokenizer = host.Model!.Tokenizer;
        int vocab = host.Model.Config.VocabSize;
        const string shapes = "a string, a list of strings, a list of token ids or a list of lists of token ids";
        if (node is null) throw ApiException.BadRequest($"'{field}' is required.", field);
        var list = new List<int[]>();
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String)
        {
            list.Add(Tokenize(v.GetValue<string>(), field, tokenizer, maxTokens));
            return list;
        }
        if (node is not JsonArray arr) throw ApiException.BadRequest($"'{field}' must be {shapes}, got {JsonBody.Describe(node)}.", field);
        if (arr.Count == 0) throw ApiException.BadRequest($"'{field}' must not be empty.", field);
        if (arr.All(x => x is JsonValue xv && xv.GetValueKind() == JsonValueKind.Number))
        {
            list.Add(Ids(arr, field, vocab, maxTokens));
            return list;
        }
        if (arr.Count > MaxInputs) throw ApiException.BadRequest($"'{field}' has {arr.Count} inputs; at most {MaxInputs} are allowed in one request.", field);
        for (int i = 0; i < arr.Count; i++)
        {
            string item = $"{field}[{i}]";
            list.Add(arr[i] switch
            {
                JsonValue s when s.GetValueKind() == JsonValueKind.String => Tokenize(s.GetValue<string>(), item, tokenizer, maxTokens),
                JsonArray ids => Ids(ids, item, vocab, maxTokens),
                var x => throw ApiException.BadRequest($"'{item}' must be a string or a list of token ids, got {JsonBody.Describe(x)}.", item),
            });
        }
        return list;
    }

    private static int[] Tokenize(string text, string field, Tokenization.Tokenizer tokenizer, int maxTokens)
    {
        if (text.Length == 0) throw ApiException.BadRequest($"'{field}' must not be an empty string.", field);
        // refuse a text that cannot fit before tokenizing any of it, then tokenize only as far as the budget
        if (tokenizer.IsLongerThan(text, maxTokens)) throw TooLong(maxTokens, "more tokens than that", field);
        return tokenizer.EncodeAtMost(text, maxTokens, addSpecial: true, parseSpecial: true) ?? throw TooLong(maxTokens, "more tokens than that", field);
    }

    private static int[] Ids(JsonArray arr, string field, int vocab, int maxTokens)
    {
        if (arr.Count == 0) throw ApiException.BadRequest($"'{field}' must not be an empty list of token ids.", field);
        if (arr.Count > maxTokens) throw TooLong(maxTokens, $"{arr.Count} tokens", field);
        return GenerationEndpoints.TokenIds(arr, field, vocab);
    }

    /// <summary>A prompt over the context: refused (no truncation, as OpenAI and llama-server do).</summary>
    public static ApiException TooLong(int maxTokens, string what, string field) => ApiException.BadRequest(
        $"This model's maximum context length is {maxTokens} tokens. However, '{field}' has {what}. Please reduce the length of the input.",
        field, "context_length_exceeded");

    /// <summary>Runs one pooling request per prompt, at most the engine's running-sequence count of them in flight (so a
    /// request of 2048 inputs queues behind itself instead of filling the engine's waiting queue), and returns the
    /// results in order. The first failure cancels the rest and is rethrown as the API error for <paramref name="field"/>.</summary>
    public static async Task<PoolingOutput[]> RunAsync(LlmEngine engine, IReadOnlyList<int[]> prompts, PoolingParams p, string field, CancellationToken aborted)
    {
        PoolingOutput[] results;
        try
        {
            results = await engine.PoolManyAsync(prompts, p, engine.Options.MaxNumSeqs, aborted).ConfigureAwait(false);
        }
        catch (PoolingInputException e)
        {
            throw ApiErrors.Map(e.InnerException!, prompts.Count == 1 ? field : $"{field}[{e.Index}]");
        }
        foreach (var r in results)
            foreach (var v in r.Vectors)
                foreach (var x in v)
                    if (!float.IsFinite(x))
                        throw new ApiException(StatusCodes.Status500InternalServerError, "The model produced non-finite values (NaN or infinity) for this input.", ApiErrorTypes.Server);
        return results;
    }
}
