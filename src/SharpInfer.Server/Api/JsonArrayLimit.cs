using System.Text;
using System.Text.Json;

namespace SharpInfer.Server.Api;

/// <summary>
/// Refuses a body with an array longer than a limit by scanning its bytes with a <see cref="Utf8JsonReader"/>
/// (no allocation) before any document is built. For a generation request the limit is the context length (a prompt
/// of token ids, a list of messages or tools: each element is at least one token) or the most choices, whichever
/// is larger.
/// </summary>
internal static class JsonArrayLimit
{
    public static void Check(ReadOnlySpan<byte> json, int maxArrayLength)
    {
        if (maxArrayLength == int.MaxValue || json.Length <= maxArrayLength) return;   // too short to hold such an array
        Span<int> counts = stackalloc int[JsonBodyLimits.MaxDepth + 2];
        Span<bool> isArray = stackalloc bool[JsonBodyLimits.MaxDepth + 2];
        // where the name of the property holding each open container starts (-1: none), for the message
        Span<int> nameAt = stackalloc int[JsonBodyLimits.MaxDepth + 2];
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = JsonBodyLimits.MaxDepth });
        int lastNameStart = -1;
        try
        {
            while (reader.Read())
            {
                int depth = reader.CurrentDepth;
                var token = reader.TokenType;
                if (token == JsonTokenType.PropertyName)
                {
                    lastNameStart = (int)reader.TokenStartIndex;
                    continue;
                }
                int name = lastNameStart;
                lastNameStart = -1;
                if (token is JsonTokenType.EndArray or JsonTokenType.EndObject) continue;
                // a value: it counts as an element when its parent is an array
                if (depth > 0 && isArray[depth - 1] && ++counts[depth - 1] > maxArrayLength)
                    throw TooLong(json, maxArrayLength, nameAt[depth - 1]);
                if (token is JsonTokenType.StartArray or JsonTokenType.StartObject)
                {
                    isArray[depth] = token == JsonTokenType.StartArray;
                    counts[depth] = 0;
                    nameAt[depth] = name >= 0 ? name : depth > 0 ? nameAt[depth - 1] : -1;
                }
            }
        }
        catch (JsonException)
        {
            // malformed: the parser that follows reports it with its own message
        }
    }

    private static ApiException TooLong(ReadOnlySpan<byte> json, int max, int nameStart)
    {
        string? name = null;
        if (nameStart >= 0)
        {
            var reader = new Utf8JsonReader(json[nameStart..]);
            if (reader.Read() && reader.TokenType == JsonTokenType.String)
            {
                try { name = reader.GetString(); }
                catch (InvalidOperationException) { }   // not valid Unicode: the message just leaves the name out
            }
        }
        if (name is { Length: > 64 }) name = name[..64];
        return ApiException.BadRequest(
            $"An array in the request{(name is null ? "" : $" (in '{name}')")} has more than {max} elements; nothing in a request to this model " +
            "can be longer than its context.", name, "context_length_exceeded");
    }
}

/// <summary>Limits shared by the body reader and its checks.</summary>
internal static class JsonBodyLimits
{
    public const int MaxDepth = 64;
}
