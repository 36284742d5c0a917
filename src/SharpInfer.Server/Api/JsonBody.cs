using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace SharpInfer.Server.Api;

/// <summary>A request's JSON object with typed accessors that answer 400 naming the field when a value has the
/// wrong type or range. Absent and <c>null</c> fields read as null (OpenAI treats them alike).</summary>
internal sealed class JsonBody(JsonObject root, JsonElement? source = null)
{
    public JsonObject Root { get; } = root;

    /// <summary>The parsed document behind <see cref="Root"/> (for a request body): size checks read it without
    /// materializing nodes or strings.</summary>
    public JsonElement? Source { get; } = source;

    private static readonly JsonDocumentOptions ParseOptions = new() { MaxDepth = JsonBodyLimits.MaxDepth, AllowDuplicateProperties = false };

    /// <summary>Reads the body (at most <paramref name="maxBytes"/>, else 413) and parses a JSON object (else 400).
    /// A large body (<see cref="LargeBodies"/>) waits for a decoding slot and is held once: the bytes are read into one
    /// buffer of the announced size and parsed in place, strings stay undecoded until a handler reads them.</summary>
    /// <param name="maxArrayLength">Longest array accepted anywhere in the body (checked by a scan of the bytes before the
    /// document is built: its index costs 12 bytes per value, so a list of millions of token ids would cost hundreds of
    /// megabytes to parse only to be refused).</param>
    public static async Task<JsonBody> ReadAsync(HttpRequest request, long maxBytes, CancellationToken ct, int maxArrayLength = int.MaxValue)
    {
        if (request.ContentLength > maxBytes)
        {
            await DrainAsync(request, ct).ConfigureAwait(false);
            throw TooLarge(maxBytes);
        }
        IDisposable? slot = null;
        try
        {
            if (request.ContentLength >= LargeBodies.Threshold) slot = await EnterLargeAsync(request, ct).ConfigureAwait(false);
            // one buffer of the announced size (+1 to notice a body longer than announced), else grown by doubling
            var buffer = new byte[(int)Math.Min(Math.Min(request.ContentLength ?? 16384, maxBytes), System.Array.MaxLength - 1) + 1];
            int length = 0;
            var stream = request.Body;
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length > maxBytes)
                    {
                        await DrainAsync(request, ct).ConfigureAwait(false);
                        throw TooLarge(maxBytes);
                    }
                    if (slot is null && length >= LargeBodies.Threshold) slot = await EnterLargeAsync(request, ct).ConfigureAwait(false);
                    if (buffer.Length >= System.Array.MaxLength) throw TooLarge(System.Array.MaxLength - 1);
                    System.Array.Resize(ref buffer, (int)Math.Min(Math.Min((long)buffer.Length * 2, maxBytes + 1), System.Array.MaxLength));
                }
                int n = await stream.ReadAsync(buffer.AsMemory(length), ct).ConfigureAwait(false);
                if (n == 0) break;
                length += n;
            }
            if (length > maxBytes)
            {
                await DrainAsync(request, ct).ConfigureAwait(false);
                throw TooLarge(maxBytes);
            }
            if (length == 0) throw ApiException.BadRequest("The request body is empty; expected a JSON object.");
            JsonArrayLimit.Check(buffer.AsSpan(0, length), maxArrayLength);
            return Parse(buffer.AsMemory(0, length));
        }
        finally
        {
            slot?.Dispose();
        }
    }

    /// <summary>Takes a large-body decoding slot and arranges for the memory to be given back once answered.</summary>
    private static async Task<IDisposable> EnterLargeAsync(HttpRequest request, CancellationToken ct)
    {
        var slot = await LargeBodies.EnterAsync(ct).ConfigureAwait(false);
        request.HttpContext.Response.OnCompleted(() =>
        {
            LargeBodies.Touch();
            return Task.CompletedTask;
        });
        return slot;
    }

    /// <summary>Parses a body already read: the document refers to <paramref name="utf8"/> instead of copying it.</summary>
    internal static JsonBody Parse(ReadOnlyMemory<byte> utf8)
    {
        JsonElement root;
        try
        {
            // not disposed: the nodes below keep referring to the document (its pooled index is then simply collected)
            root = JsonDocument.Parse(utf8, ParseOptions).RootElement;
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"We could not parse the JSON body of your request: {e.Message}");
        }
        if (root.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest("The request body must be a JSON object.");
        JsonUnicodeCheck.Validate(root);
        var obj = JsonObject.Create(root, new JsonNodeOptions { PropertyNameCaseInsensitive = false })!;
        try
        {
            _ = obj.Count;   // materializes the properties: a duplicate name fails here, not in a handler
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest($"We could not parse the JSON body of your request: {e.Message}");
        }
        catch (InvalidOperationException)
        {
            throw ApiException.BadRequest("A property name of the request body is not valid Unicode.", null, JsonUnicodeCheck.Code);
        }
        return new JsonBody(obj, root);
    }

    /// <summary>Bodies up to this size are read and discarded before a 413 is sent: a client still writing its body
    /// when the server answers and closes would otherwise see a connection reset instead of the error.</summary>
    private const long DrainLimit = 4L << 20;

    private static async Task DrainAsync(HttpRequest request, CancellationToken ct)
    {
        if (request.ContentLength > DrainLimit) return;   // too big to be worth reading: the connection just closes
        var limit = request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>();
        if (limit is { IsReadOnly: false }) limit.MaxRequestBodySize = DrainLimit;
        var scratch = ArrayPool<byte>.Shared.Rent(16384);
        try
        {
            long total = 0;
            int n;
            while (total <= DrainLimit && (n = await request.Body.ReadAsync(scratch, ct).ConfigureAwait(false)) > 0) total += n;
        }
        catch (Exception e) when (e is BadHttpRequestException or IOException or OperationCanceledException) { }
        finally { ArrayPool<byte>.Shared.Return(scratch); }
    }

    private static ApiException TooLarge(long max) =>
        new(StatusCodes.Status413PayloadTooLarge, $"The request body is larger than the limit of {max} bytes.", ApiErrorTypes.InvalidRequest, null, "request_too_large");

    public JsonNode? this[string name] => Root.TryGetPropertyValue(name, out var v) ? v : null;

    public bool Has(string name) => this[name] is not null;

    public static string Describe(JsonNode? v) => v switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "an array",
        JsonValue jv => jv.GetValueKind() switch
        {
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => "null",
        },
        _ => "a value",
    };

    private static ApiException Type(string name, string expected, JsonNode? v) =>
        ApiException.BadRequest($"'{name}' must be {expected}, got {Describe(v)}.", name);

    public string? String(string name)
    {
        var v = this[name];
        if (v is null) return null;
        if (v is JsonValue jv && jv.GetValueKind() == JsonValueKind.String) return jv.GetValue<string>();
        throw Type(name, "a string", v);
    }

    public bool? Bool(string name)
    {
        var v = this[name];
        if (v is null) return null;
        if (v is JsonValue jv && jv.GetValueKind() is JsonValueKind.True or JsonValueKind.False) return jv.GetValue<bool>();
        throw Type(name, "a boolean", v);
    }

    public double? Number(string name)
    {
        var v = this[name];
        if (v is null) return null;
        if (v is JsonValue jv && jv.GetValueKind() == JsonValueKind.Number) return jv.GetValue<double>();
        throw Type(name, "a number", v);
    }

    public float? Float(string name, double min, double max)
    {
        var d = Number(name);
        if (d is null) return null;
        if (!(d >= min && d <= max))
            throw ApiException.BadRequest($"'{name}' must be between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)}, got {d.Value.ToString(CultureInfo.InvariantCulture)}.", name);
        return (float)d.Value;
    }

    public long? Long(string name)
    {
        var v = this[name];
        if (v is null) return null;
        return AsLong(v, name);
    }

    public int? Int(string name, long min = int.MinValue, long max = int.MaxValue)
    {
        var l = Long(name);
        if (l is null) return null;
        if (l < min || l > max)
            throw ApiException.BadRequest($"'{name}' must be between {min} and {max}, got {l}.", name);
        return (int)l.Value;
    }

    private const double TwoPow63 = 9223372036854775808.0;
    private const double TwoPow63Negative = -9223372036854775808.0;

    /// <summary>An integral JSON number (5 and 5.0 are integers, 5.5 is not) in the range of a long.</summary>
    public static long AsLong(JsonNode v, string name)
    {
        if (v is JsonValue jv && jv.GetValueKind() == JsonValueKind.Number)
        {
            if (jv.TryGetValue<long>(out var l)) return l;
            if (jv.TryGetValue<double>(out var d) && Math.Floor(d) == d)
            {
                // 2^63 is exactly (double)long.MaxValue, so the upper bound must be strict: a cast would saturate it.
                if (d >= TwoPow63Negative && d < TwoPow63) return (long)d;
                throw ApiException.BadRequest($"'{name}' is out of range: {v.ToJsonString()} does not fit in a 64-bit signed integer.", name);
            }
        }
        throw ApiException.BadRequest($"'{name}' must be an integer, got {Describe(v)}{(v is JsonValue ? " " + v.ToJsonString() : "")}.", name);
    }

    public JsonObject? Object(string name)
    {
        var v = this[name];
        if (v is null) return null;
        return v as JsonObject ?? throw Type(name, "an object", v);
    }

    public JsonArray? Array(string name)
    {
        var v = this[name];
        if (v is null) return null;
        return v as JsonArray ?? throw Type(name, "an array", v);
    }

    /// <summary><c>stop</c>: a string, a list of strings, or null.</summary>
    public IReadOnlyList<string> StringOrList(string name)
    {
        var v = this[name];
        switch (v)
        {
            case null: return [];
            case JsonValue jv when jv.GetValueKind() == JsonValueKind.String:
                return [jv.GetValue<string>()];
            case JsonArray arr:
                var list = new List<string>(arr.Count);
                foreach (var item in arr)
                {
                    if (item is JsonValue s && s.GetValueKind() == JsonValueKind.String) list.Add(s.GetValue<string>());
                    else throw ApiException.BadRequest($"'{name}' must be a string or a list of strings, got a list containing {Describe(item)}.", name);
                }
                return list;
            default:
                throw Type(name, "a string or a list of strings", v);
        }
    }
}
