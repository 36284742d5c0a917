using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using SharpInfer.Engine;
using SharpInfer.Tokenization;

namespace SharpInfer.Server.Api;

/// <summary>The fields every response and chunk of one request repeats.</summary>
internal sealed record ResponseMeta(string Id, string Object, long Created, string Model)
{
    /// <summary>The build, in llama-server's build-info shape (<c>b&lt;build&gt;-&lt;id&gt;</c>: its clients and tests read the
    /// leading <c>b</c>): <c>system_fingerprint</c> of every response, <c>build_info</c> of /props.</summary>
    public static readonly string Fingerprint = "b" + (typeof(ResponseMeta).Assembly.GetName().Version?.ToString(3) ?? "0") + "-sharpinfer";

    public void WriteHeader(Utf8JsonWriter w)
    {
        w.WriteString("id", Id);
        w.WriteString("object", Object);
        w.WriteNumber("created", Created);
        w.WriteString("model", Model);
        w.WriteString("system_fingerprint", Fingerprint);
    }
}

/// <summary>What one choice has produced so far.</summary>
internal sealed class ChoiceState
{
    public readonly StringBuilder Text = new();
    public readonly List<TokenLogProbs> LogProbs = [];
    public FinishReason? Finish;
    /// <summary>The engine's reason when it aborted the choice on its own (not the client's cancellation).</summary>
    public string? Error;
    public int CompletionTokens;
    /// <summary>Prompt tokens the prefix cache served (from the engine's outputs).</summary>
    public int CachedTokens;
    /// <summary>The engine's timings, from the choice's final output.</summary>
    public RequestTimings? Timings;
    public bool StartedStreaming;
    /// <summary>Turns the reply into content, reasoning and tool calls (chat requests with tools or reasoning).</summary>
    public SharpInfer.Engine.Tools.ChatOutputParser? Parser;
    /// <summary>The parser's events for the current output (reused).</summary>
    public readonly List<SharpInfer.Engine.Tools.ChatOutputEvent> Events = [];
    /// <summary>Tool calls streamed so far (the next one's index).</summary>
    public int ToolCalls;
    /// <summary>Characters of text (echoed prompt included) before the next token, for completions' text_offset.</summary>
    public int TextOffset;
}

/// <summary>Writers for the pieces of OpenAI's response objects.</summary>
internal static class ResponseJson
{
    /// <summary>UTF-8 text and quotes as they are (JSON-correct; no HTML-safe escaping, like OpenAI's responses).</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>OpenAI's usage object; <paramref name="cachedTokens"/> (prompt tokens served by the prefix cache) goes in
    /// <c>prompt_tokens_details.cached_tokens</c> as OpenAI and vLLM report it.</summary>
    public static void WriteUsage(Utf8JsonWriter w, int promptTokens, int completionTokens, int cachedTokens)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", promptTokens);
        w.WriteNumber("completion_tokens", completionTokens);
        w.WriteNumber("total_tokens", promptTokens + completionTokens);
        w.WriteStartObject("prompt_tokens_details");
        w.WriteNumber("cached_tokens", cachedTokens);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    public static void WriteFinish(Utf8JsonWriter w, FinishReason? finish)
    {
        if (finish is { } f) w.WriteString("finish_reason", f.ToApiString());
        else w.WriteNull("finish_reason");
    }

    /// <summary>A token's text as reported in log-probs (its UTF-8 piece; a partial character shows as U+FFFD).</summary>
    public static string TokenText(Tokenizer t, int id) => Encoding.UTF8.GetString(t.PieceBytes(id, renderSpecial: true));

    private static void WriteLogProb(Utf8JsonWriter w, string name, float lp)
    {
        // OpenAI reports impossible tokens as -9999.0; JSON has no infinities
        w.WriteNumber(name, float.IsFinite(lp) ? lp : -9999.0f);
    }

    private static void WriteBytes(Utf8JsonWriter w, Tokenizer t, int id)
    {
        w.WriteStartArray("bytes");
        foreach (var b in t.PieceBytes(id, renderSpecial: true)) w.WriteNumberValue(b);
        w.WriteEndArray();
    }

    /// <summary>Chat's <c>"logprobs": {"content": [{token, logprob, bytes, top_logprobs}]}</c>.</summary>
    public static void WriteChatLogprobs(Utf8JsonWriter w, Tokenizer t, IEnumerable<TokenLogProbs> tokens)
    {
        w.WriteStartObject("logprobs");
        w.WriteStartArray("content");
        foreach (var lp in tokens)
        {
            w.WriteStartObject();
            w.WriteString("token", TokenText(t, lp.TokenId));
            WriteLogProb(w, "logprob", lp.LogProb);
            WriteBytes(w, t, lp.TokenId);
            w.WriteStartArray("top_logprobs");
            foreach (var top in lp.Top)
            {
                w.WriteStartObject();
                w.WriteString("token", TokenText(t, top.Id));
                WriteLogProb(w, "logprob", top.LogProb);
                WriteBytes(w, t, top.Id);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNull("refusal");
        w.WriteEndObject();
    }

    /// <summary>Legacy completions' <c>"logprobs": {tokens, token_logprobs, top_logprobs, text_offset}</c>; the
    /// chosen token is always among its top_logprobs entry (as vLLM does). Advances <paramref name="offset"/>.</summary>
    public static void WriteCompletionLogprobs(Utf8JsonWriter w, Tokenizer t, IReadOnlyList<TokenLogProbs> tokens, ref int offset)
    {
        w.WriteStartObject("logprobs");
        w.WriteStartArray("tokens");
        foreach (var lp in tokens) w.WriteStringValue(TokenText(t, lp.TokenId));
        w.WriteEndArray();
        w.WriteStartArray("token_logprobs");
        foreach (var lp in tokens) w.WriteNumberValue(float.IsFinite(lp.LogProb) ? lp.LogProb : -9999.0f);
        w.WriteEndArray();
        w.WriteStartArray("top_logprobs");
        foreach (var lp in tokens)
        {
            w.WriteStartObject();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var top in lp.Top)
            {
                var text = TokenText(t, top.Id);
                if (seen.Add(text)) WriteLogProb(w, text, top.LogProb);
            }
            var chosen = TokenText(t, lp.TokenId);
            if (seen.Add(chosen)) WriteLogProb(w, chosen, lp.LogProb);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("text_offset");
        foreach (var lp in tokens)
        {
            w.WriteNumberValue(offset);
            offset += TokenText(t, lp.TokenId).Length;
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}

/// <summary>Server-sent events: <c>data: {json}\n\n</c> per chunk (optionally after an <c>event:</c> line), flushed at once, and <c>data: [DONE]\n\n</c> at the end.</summary>
internal sealed class SseWriter
{
    private static readonly byte[] EventPrefix = "event: "u8.ToArray();
    private static readonly byte[] Prefix = "data: "u8.ToArray();
    private static readonly byte[] Suffix = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    private readonly HttpResponse _response;
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private readonly Utf8JsonWriter _json;

    public SseWriter(HttpContext context)
    {
        _response = context.Response;
        _json = new Utf8JsonWriter(_buffer, ResponseJson.WriterOptions);
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        _response.StatusCode = StatusCodes.Status200OK;
        _response.ContentType = "text/event-stream; charset=utf-8";
        _response.Headers.CacheControl = "no-cache";
        _response.Headers["X-Accel-Buffering"] = "no";
    }

    public ValueTask WriteAsync(Action<Utf8JsonWriter> write, CancellationToken ct) => WriteAsync(null, write, ct);

    /// <summary>One event; <paramref name="eventName"/> adds an <c>event:</c> line first (the Responses and Anthropic
    /// streams name each event).</summary>
    public async ValueTask WriteAsync(string? eventName, Action<Utf8JsonWriter> write, CancellationToken ct)
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        write(_json);
        _json.Flush();
        var pipe = _response.BodyWriter;
        if (eventName != null)
        {
            pipe.Write(EventPrefix);
            Encoding.UTF8.GetBytes(eventName, pipe);
            pipe.Write("\n"u8);
        }
        pipe.Write(Prefix);
        pipe.Write(_buffer.WrittenSpan);
        pipe.Write(Suffix);
        await pipe.FlushAsync(ct).ConfigureAwait(false);
    }

    public async ValueTask WriteDoneAsync(CancellationToken ct)
    {
        _response.BodyWriter.Write(Done);
        await _response.BodyWriter.FlushAsync(ct).ConfigureAwait(false);
    }

    public ValueTask WriteErrorAsync(ApiException e, CancellationToken ct) => WriteAsync(w => ApiErrors.WriteErrorObject(w, e), ct);
}

/// <summary>Writes a JSON response body.</summary>
internal static class JsonResponse
{
    public static async Task WriteAsync(HttpContext context, Action<Utf8JsonWriter> write, int status = StatusCodes.Status200OK)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        using (var w = new Utf8JsonWriter(context.Response.BodyWriter, ResponseJson.WriterOptions)) write(w);
        await context.Response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
