using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using SharpInfer.Engine;
using SharpInfer.Engine.Tools;

namespace SharpInfer.Server.Api;

/// <summary>
/// The reply of one <c>/api/chat</c> or <c>/api/generate</c> request in Ollama's shapes, built from the chat path's
/// parsed events: streamed as NDJSON (one object per piece of content, thinking or tool call, then a final object with
/// <c>done: true</c>, the reason and the measured counts and durations) or collected into one object.
/// </summary>
internal sealed class OllamaOutput(OllamaRequest request, bool generate, string model, long startTimestamp, HttpContext ctx)
{
    private readonly StringBuilder _content = new();
    private readonly StringBuilder _thinking = new();
    private readonly List<ToolCall> _calls = [];
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private Utf8JsonWriter? _json;
    private long _submittedTimestamp;

    /// <summary>Ollama's <c>created_at</c>: RFC 3339 in UTC, with sub-second digits.</summary>
    public static string Now() => DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>The engine accepted the request: what came before counts as <c>load_duration</c>; a stream's headers go out.</summary>
    public async ValueTask StartedAsync()
    {
        _submittedTimestamp = Stopwatch.GetTimestamp();
        if (!request.Stream) return;
        ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        ctx.Response.StatusCode = StatusCodes.Status200OK;
        ctx.Response.ContentType = "application/x-ndjson";
        await ctx.Response.StartAsync(ctx.RequestAborted).ConfigureAwait(false);
    }

    public async ValueTask OnEventAsync(ChatOutputEvent e)
    {
        switch (e.Kind)
        {
            case ChatOutputKind.Content:
                if (string.IsNullOrEmpty(e.Text)) return;
                _content.Append(e.Text);
                if (request.Stream) await WriteLineAsync(w => Piece(w, content: e.Text, thinking: null, call: null)).ConfigureAwait(false);
                break;
            case ChatOutputKind.Reasoning:
                if (string.IsNullOrEmpty(e.Text) || !request.KeepThinking) return;
                _thinking.Append(e.Text);
                if (request.Stream) await WriteLineAsync(w => Piece(w, content: "", thinking: e.Text, call: null)).ConfigureAwait(false);
                break;
            default:
                _calls.Add(e.Call!);
                int index = _calls.Count - 1;
                if (request.Stream) await WriteLineAsync(w => Piece(w, content: "", thinking: null, call: (e.Call!, index))).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>The final object: streamed as the last line, or the whole reply when not streaming.</summary>
    public async ValueTask FinishAsync(ChatTurn.Result result, int[] promptTokens)
    {
        long end = Stopwatch.GetTimestamp();
        void Final(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            Header(w);
            bool whole = !request.Stream;
            if (generate)
            {
                w.WriteString("response", whole ? _content.ToString() : "");
                if (whole && _thinking.Length > 0) w.WriteString("thinking", _thinking.ToString());
            }
            else
            {
                w.WriteStartObject("message");
                w.WriteString("role", "assistant");
                w.WriteString("content", whole ? _content.ToString() : "");
                if (whole && _thinking.Length > 0) w.WriteString("thinking", _thinking.ToString());
                if (whole && _calls.Count > 0) WriteCalls(w, _calls.Select((c, i) => (c, i)));
                w.WriteEndObject();
            }
            w.WriteString("done_reason", result.Finish.ToApiString());
            w.WriteBoolean("done", true);
            if (generate)
            {
                // the conversation so far as token ids, for the next request's "context"
                w.WriteStartArray("context");
                foreach (var id in promptTokens) w.WriteNumberValue(id);
                foreach (var id in result.TokenIds) w.WriteNumberValue(id);
                w.WriteEndArray();
            }
            var t = result.Timings;
            w.WriteNumber("total_duration", Nanoseconds(Stopwatch.GetElapsedTime(startTimestamp, end)));
            w.WriteNumber("load_duration", Nanoseconds(Stopwatch.GetElapsedTime(startTimestamp, _submittedTimestamp)));
            w.WriteNumber("prompt_eval_count", promptTokens.Length);
            w.WriteNumber("prompt_eval_duration", Nanoseconds(TimeSpan.FromSeconds(t?.PrefillTime ?? 0)));
            w.WriteNumber("eval_count", result.CompletionTokens);
            w.WriteNumber("eval_duration", Nanoseconds(TimeSpan.FromSeconds(t?.DecodeTime ?? 0)));
            w.WriteEndObject();
        }
        if (request.Stream) await WriteLineAsync(Final).ConfigureAwait(false);
        else await JsonResponse.WriteAsync(ctx, Final).ConfigureAwait(false);
    }

    /// <summary>An error after the stream started: one more line, <c>{"error": "..."}</c>, as Ollama sends it.</summary>
    public ValueTask ErrorAsync(ApiException e) => WriteLineAsync(w => OllamaErrors.WriteErrorObject(w, e));

    /// <summary>Ollama's answer to a load (or unload) request: no generation, done at once.</summary>
    public static Task WriteLoadAsync(HttpContext ctx, bool generate, string model, string reason) =>
        JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("model", model);
            w.WriteString("created_at", Now());
            if (generate) w.WriteString("response", "");
            else
            {
                w.WriteStartObject("message");
                w.WriteString("role", "assistant");
                w.WriteString("content", "");
                w.WriteEndObject();
            }
            w.WriteString("done_reason", reason);
            w.WriteBoolean("done", true);
            w.WriteEndObject();
        });

    public static long Nanoseconds(TimeSpan t) => t.Ticks * 100;

    private void Header(Utf8JsonWriter w)
    {
        w.WriteString("model", model);
        w.WriteString("created_at", Now());
    }

    private void Piece(Utf8JsonWriter w, string content, string? thinking, (ToolCall Call, int Index)? call)
    {
        w.WriteStartObject();
        Header(w);
        if (generate)
        {
            w.WriteString("response", content);
            if (thinking != null) w.WriteString("thinking", thinking);
        }
        else
        {
            w.WriteStartObject("message");
            w.WriteString("role", "assistant");
            w.WriteString("content", content);
            if (thinking != null) w.WriteString("thinking", thinking);
            if (call is { } c) WriteCalls(w, [c]);
            w.WriteEndObject();
        }
        w.WriteBoolean("done", false);
        w.WriteEndObject();
    }

    /// <summary><c>tool_calls</c> in Ollama's shape: the arguments as an object, not a string.</summary>
    private static void WriteCalls(Utf8JsonWriter w, IEnumerable<(ToolCall Call, int Index)> calls)
    {
        w.WriteStartArray("tool_calls");
        foreach (var (c, i) in calls)
        {
            w.WriteStartObject();
            w.WriteString("id", c.Id);
            w.WriteStartObject("function");
            w.WriteNumber("index", i);
            w.WriteString("name", c.Name);
            w.WritePropertyName("arguments");
            Arguments(c.Arguments).WriteTo(w);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>A call's arguments as an object (the parser releases JSON objects; anything else is kept as a string
    /// under <c>"arguments"</c> rather than failing the reply).</summary>
    private static JsonNode Arguments(string arguments)
    {
        try
        {
            if (JsonNode.Parse(arguments) is JsonObject o) return o;
        }
        catch (JsonException) { }
        return new JsonObject { ["arguments"] = arguments };
    }

    private async ValueTask WriteLineAsync(Action<Utf8JsonWriter> write)
    {
        _buffer.ResetWrittenCount();
        if (_json is null) _json = new Utf8JsonWriter(_buffer, ResponseJson.WriterOptions);
        else _json.Reset(_buffer);
        write(_json);
        _json.Flush();
        var pipe = ctx.Response.BodyWriter;
        pipe.Write(_buffer.WrittenSpan);
        pipe.Write("\n"u8);
        await pipe.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
    }
}
