using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpInfer.Server.Api;

/// <summary>
/// Helpers for the APIs translated onto chat completions (<c>/v1/responses</c>, <c>/v1/messages</c>): typed reads of
/// nested fields that answer 400 naming the full path (<c>input[2].call_id</c>), and renaming of chat-completions field
/// names in the errors the shared chat path raises, so a client reads the names of the API it called.
/// </summary>
internal static class TranslatedRequest
{
    public static string? OptString(JsonObject o, string name, string at)
    {
        var v = o[name];
        if (v is null) return null;
        if (v is JsonValue jv && jv.GetValueKind() == JsonValueKind.String) return jv.GetValue<string>();
        throw ApiException.BadRequest($"'{at}.{name}' must be a string, got {JsonBody.Describe(v)}.", $"{at}.{name}");
    }

    public static string ReqString(JsonObject o, string name, string at) =>
        OptString(o, name, at) ?? throw ApiException.BadRequest($"'{at}.{name}' is required.", $"{at}.{name}");

    public static JsonObject AsObject(JsonNode? v, string at) =>
        v as JsonObject ?? throw ApiException.BadRequest($"'{at}' must be an object, got {JsonBody.Describe(v)}.", at);

    /// <summary>A copy of a value from the request, placed in the translated body.</summary>
    public static JsonNode? Copy(JsonNode? v) => v?.DeepClone();

    /// <summary>Copies a top-level field under a (possibly different) chat-completions name, when present.</summary>
    public static void CopyField(JsonBody from, string name, JsonObject to, string? chatName = null)
    {
        if (from[name] is { } v) to[chatName ?? name] = v.DeepClone();
    }

    /// <summary>Runs <paramref name="prepare"/> and maps any error to an <see cref="ApiException"/> whose <c>param</c>
    /// and message use this API's names (<paramref name="names"/>: chat name → this API's name; the longest match wins,
    /// a path prefix such as <c>tools[0].function</c> maps too).</summary>
    public static T Renaming<T>(Func<T> prepare, string promptParam, IReadOnlyList<(string Chat, string Api)> names)
    {
        try
        {
            return prepare();
        }
        catch (Exception e)
        {
            var a = ApiErrors.Map(e, promptParam);
            if (a.Param is null) throw a;
            string param = Rename(a.Param, names);
            if (param == a.Param) throw a;
            string message = a.Message.Replace($"'{a.Param}'", $"'{param}'", StringComparison.Ordinal);
            throw new ApiException(a.Status, message, a.Type, param, a.Code) { RetryAfterSeconds = a.RetryAfterSeconds };
        }
    }

    private static string Rename(string param, IReadOnlyList<(string Chat, string Api)> names)
    {
        foreach (var (chat, api) in names.OrderByDescending(n => n.Chat.Length))
        {
            if (param == chat) return api;
            if (param.StartsWith(chat, StringComparison.Ordinal) && param.Length > chat.Length && param[chat.Length] is '.' or '[')
                return api + param[chat.Length..];
        }
        // tools[i].function.x → tools[i].x (both translated APIs flatten the function object)
        if (param.StartsWith("tools[", StringComparison.Ordinal) && param.IndexOf("].function", StringComparison.Ordinal) is var k and > 0)
            return param[..(k + 1)] + param[(k + "].function".Length)..];
        return param;
    }
}
