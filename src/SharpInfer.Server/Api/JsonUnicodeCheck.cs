using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpInfer.Server.Api;

/// <summary>Checks once, right after parsing, that every string and property name of a request decodes to valid
/// UTF-16. The JSON reader accepts invalid UTF-8 bytes and lone surrogate escapes (<c>"\ud800"</c>) and only fails
/// when a handler first reads the string, which used to surface as a 500; here it becomes a 400 naming the field.
/// The check scans the raw bytes of the parsed document (<see cref="JsonRawString"/>): no string is decoded and no
/// node is created, so a 15 MiB prompt or a list of millions of token ids costs no memory to check. Only when a bad
/// string is found are the nodes walked, to name its field.</summary>
internal static class JsonUnicodeCheck
{
    public const string Code = "invalid_unicode";

    public static void Validate(JsonElement root)
    {
        if (IsValid(root)) return;
        Walk(JsonObject.Create(root));   // throws, naming the field
        throw ApiException.BadRequest("The request body contains a string that is not valid Unicode.", null, Code);
    }

    private static bool IsValid(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                    if (!JsonRawString.TryMeasure(JsonMarshal.GetRawUtf8PropertyName(p), out _) || !IsValid(p.Value)) return false;
                return true;
            case JsonValueKind.Array:
                foreach (var item in e.EnumerateArray())
                    if (!IsValid(item)) return false;
                return true;
            case JsonValueKind.String:
                return JsonRawString.TryMeasure(JsonRawString.Contents(e), out _);
            default:
                return true;
        }
    }

    private static void Walk(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                // Enumerating materializes the properties; a property name that cannot be decoded fails here.
                List<JsonNode?> children;
                try { children = [.. obj.Select(p => p.Value)]; }
                catch (InvalidOperationException) { throw Invalid(obj, "a property name"); }
                foreach (var child in children) Walk(child);
                break;
            case JsonArray arr:
                foreach (var item in arr) Walk(item);
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                try { _ = v.GetValue<string>(); }
                catch (InvalidOperationException) { throw Invalid(v, "a string"); }
                break;
        }
    }

    private static ApiException Invalid(JsonNode node, string what)
    {
        string param = FieldPath(node);
        return ApiException.BadRequest(
            $"'{param}' contains {what} that is not valid Unicode (invalid UTF-8 bytes or a lone surrogate escape).", param, Code);
    }

    /// <summary>The JSON path without its "$." root, in the style of the other errors: <c>messages[0].content</c>.</summary>
    private static string FieldPath(JsonNode node)
    {
        string path = node.GetPath();
        if (path.StartsWith("$.", StringComparison.Ordinal)) return path[2..];
        return path == "$" ? "body" : path.TrimStart('$');
    }
}
