using System.Text;
using System.Text.Json;
using SharpInfer.Engine;
using SharpInfer.Engine.Tools;

namespace SharpInfer.Server.Api;

/// <summary>
/// The output of one <c>/v1/responses</c> turn, built from the chat path's parsed events: a <c>reasoning</c> item for
/// <c>&lt;think&gt;</c> text (as vLLM: its text in <c>content</c> as <c>reasoning_text</c> parts, <c>summary</c>
/// empty, since no summary is generated), a <c>message</c> item with one <c>output_text</c> part for the answer, and one
/// <c>function_call</c> item per tool call. When streaming, each change is also sent as OpenAI's typed events, each with
/// its <c>sequence_number</c>.
/// </summary>
internal sealed class ResponsesOutput(ResponsesRequest request, string id, string model, SseWriter? sse, CancellationToken ct)
{
    private sealed class Item(string type, string id)
    {
        public string Type { get; } = type;
        public string Id { get; } = id;
        public readonly StringBuilder Text = new();
        public ToolCall? Call;
        public bool Done;
    }

    private readonly List<Item> _items = [];
    private readonly long _createdAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private Item? _open;
    private int _sequence;

    public string Id => id;
    public ChatTurn.Result? Result { get; private set; }
    public int PromptTokens { get; set; }
    public int ReasoningTokens { get; set; }

    public string Status => Result is null ? "in_progress" : Result.Finish == FinishReason.Length ? "incomplete" : "completed";

    private static string NewId(string prefix) => prefix + Guid.NewGuid().ToString("N");

    /// <summary>The turn being run (for <c>timings_per_token</c>'s counts).</summary>
    public ChatTurn? Turn { get; init; }
    private readonly long _start = System.Diagnostics.Stopwatch.GetTimestamp();
    private long _firstText;

    /// <summary>llama-server's <c>return_progress</c>: a <c>response.in_progress</c> event with <c>prompt_progress</c>.</summary>
    public ValueTask ProgressAsync(PromptProgress progress) => EmitAsync("response.in_progress", w =>
    {
        WriteResponse(w, "response");
        GenerationEndpoints.WriteProgress(w, progress);
    });

    /// <summary><c>timings_per_token</c>: llama-server's timings so far, measured from the request's arrival (the
    /// prompt's time runs to the first piece of text).</summary>
    private void WriteTimingsSoFar(Utf8JsonWriter w)
    {
        var (cached, generated) = Turn?.Progress ?? (0, 0);
        if (_firstText == 0) _firstText = System.Diagnostics.Stopwatch.GetTimestamp();
        LlamaCompletionJson.WriteTimings(w, cached, PromptTokens - cached, System.Diagnostics.Stopwatch.GetElapsedTime(_start, _firstText).TotalMilliseconds,
                                         generated, System.Diagnostics.Stopwatch.GetElapsedTime(_firstText).TotalMilliseconds);
    }

    /// <summary><c>response.created</c> and <c>response.in_progress</c>.</summary>
    public async ValueTask StartAsync()
    {
        await EmitAsync("response.created", w => WriteResponse(w, "response")).ConfigureAwait(false);
        await EmitAsync("response.in_progress", w => WriteResponse(w, "response")).ConfigureAwait(false);
    }

    public async ValueTask OnEventAsync(ChatOutputEvent e)
    {
        switch (e.Kind)
        {
            case ChatOutputKind.Content or ChatOutputKind.Reasoning:
                if (string.IsNullOrEmpty(e.Text)) return;
                string type = e.Kind == ChatOutputKind.Content ? "message" : "reasoning";
                if (_open?.Type != type)
                {
                    await CloseOpenAsync().ConfigureAwait(false);
                    await OpenAsync(type).ConfigureAwait(false);
                }
                var item = _open!;
                item.Text.Append(e.Text);
                int index = _items.Count - 1;
                await EmitAsync(type == "message" ? "response.output_text.delta" : "response.reasoning_text.delta", w =>
                {
                    WriteItemRef(w, item, index);
                    w.WriteNumber("content_index", 0);
                    w.WriteString("delta", e.Text);
                    if (type == "message") EmptyArray(w, "logprobs");
                    if (request.TimingsPerToken) WriteTimingsSoFar(w);
                }).ConfigureAwait(false);
                break;
            default:
                await CloseOpenAsync().ConfigureAwait(false);
                var call = new Item("function_call", NewId("fc_")) { Call = e.Call };
                _items.Add(call);
                int at = _items.Count - 1;
                await EmitAsync("response.output_item.added", w => WriteAdded(w, call, at)).ConfigureAwait(false);
                await EmitAsync("response.function_call_arguments.delta", w =>
                {
                    WriteItemRef(w, call, at);
                    w.WriteString("delta", call.Call!.Arguments);
                }).ConfigureAwait(false);
                await EmitAsync("response.function_call_arguments.done", w =>
                {
                    WriteItemRef(w, call, at);
                    w.WriteString("name", call.Call!.Name);
                    w.WriteString("arguments", call.Call!.Arguments);
                }).ConfigureAwait(false);
                call.Done = true;
                await EmitAsync("response.output_item.done", w => WriteDone(w, call, at)).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>Closes the open item and sends <c>response.completed</c> (or <c>response.incomplete</c> when the
    /// token limit ended the output).</summary>
    public async ValueTask FinishAsync(ChatTurn.Result result)
    {
        await CloseOpenAsync().ConfigureAwait(false);
        Result = result;
        // with llama-server's timings beside the response, as its final event carries them
        await EmitAsync(Status == "incomplete" ? "response.incomplete" : "response.completed", w =>
        {
            WriteResponse(w, "response");
            TimingsJson.Write(w, [result.Timings], speculative: false);
        }).ConfigureAwait(false);
    }

    /// <summary>The <c>error</c> event of a stream that failed after it started.</summary>
    public ValueTask ErrorAsync(ApiException e) => EmitAsync("error", w =>
    {
        if (e.Code is null) w.WriteNull("code"); else w.WriteString("code", e.Code);
        w.WriteString("message", e.Message);
        if (e.Param is null) w.WriteNull("param"); else w.WriteString("param", e.Param);
    });

    private async ValueTask OpenAsync(string type)
    {
        var item = new Item(type, NewId(type == "message" ? "msg_" : "rs_"));
        _items.Add(item);
        _open = item;
        int index = _items.Count - 1;
        await EmitAsync("response.output_item.added", w => WriteAdded(w, item, index)).ConfigureAwait(false);
        if (type == "message")
            await EmitAsync("response.content_part.added", w =>
            {
                WriteItemRef(w, item, index);
                w.WriteNumber("content_index", 0);
                w.WritePropertyName("part");
                WriteTextPart(w, "output_text", "");
            }).ConfigureAwait(false);
    }

    private async ValueTask CloseOpenAsync()
    {
        if (_open is not { } item) return;
        _open = null;
        int index = _items.IndexOf(item);
        string text = item.Text.ToString();
        string part = item.Type == "message" ? "output_text" : "reasoning_text";
        await EmitAsync(item.Type == "message" ? "response.output_text.done" : "response.reasoning_text.done", w =>
        {
            WriteItemRef(w, item, index);
            w.WriteNumber("content_index", 0);
            w.WriteString("text", text);
            if (item.Type == "message") EmptyArray(w, "logprobs");
        }).ConfigureAwait(false);
        if (item.Type == "message")
            await EmitAsync("response.content_part.done", w =>
            {
                WriteItemRef(w, item, index);
                w.WriteNumber("content_index", 0);
                w.WritePropertyName("part");
                WriteTextPart(w, part, text);
            }).ConfigureAwait(false);
        item.Done = true;
        await EmitAsync("response.output_item.done", w => WriteDone(w, item, index)).ConfigureAwait(false);
    }

    private ValueTask EmitAsync(string type, Action<Utf8JsonWriter> fields)
    {
        if (sse is null) return ValueTask.CompletedTask;
        int sequence = _sequence++;
        return sse.WriteAsync(type, w =>
        {
            w.WriteStartObject();
            w.WriteString("type", type);
            w.WriteNumber("sequence_number", sequence);
            fields(w);
            w.WriteEndObject();
        }, ct);
    }

    private static void EmptyArray(Utf8JsonWriter w, string name)
    {
        w.WriteStartArray(name);
        w.WriteEndArray();
    }

    private static void WriteItemRef(Utf8JsonWriter w, Item item, int index)
    {
        w.WriteString("item_id", item.Id);
        w.WriteNumber("output_index", index);
    }

    private static void WriteAdded(Utf8JsonWriter w, Item item, int index)
    {
        w.WriteNumber("output_index", index);
        w.WritePropertyName("item");
        WriteItem(w, item, partial: true);
    }

    private static void WriteDone(Utf8JsonWriter w, Item item, int index)
    {
        w.WriteNumber("output_index", index);
        w.WritePropertyName("item");
        WriteItem(w, item, partial: false);
    }

    private static void WriteTextPart(Utf8JsonWriter w, string type, string text)
    {
        w.WriteStartObject();
        w.WriteString("type", type);
        w.WriteString("text", text);
        if (type == "output_text")
        {
            w.WriteStartArray("annotations");
            w.WriteEndArray();
            w.WriteStartArray("logprobs");
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    /// <summary>One output item; <paramref name="partial"/>: as announced by <c>output_item.added</c> (no content yet).</summary>
    private static void WriteItem(Utf8JsonWriter w, Item item, bool partial)
    {
        w.WriteStartObject();
        w.WriteString("id", item.Id);
        w.WriteString("type", item.Type);
        switch (item.Type)
        {
            case "message":
                w.WriteString("status", partial ? "in_progress" : "completed");
                w.WriteString("role", "assistant");
                w.WriteStartArray("content");
                if (!partial) WriteTextPart(w, "output_text", item.Text.ToString());
                w.WriteEndArray();
                break;
            case "reasoning":
                w.WriteStartArray("summary");
                w.WriteEndArray();
                w.WriteStartArray("content");
                if (!partial) WriteTextPart(w, "reasoning_text", item.Text.ToString());
                w.WriteEndArray();
                break;
            default:
                var c = item.Call!;
                w.WriteString("status", partial ? "in_progress" : "completed");
                w.WriteString("call_id", c.Id);
                w.WriteString("name", c.Name);
                w.WriteString("arguments", partial ? "" : c.Arguments);
                break;
        }
        w.WriteEndObject();
    }

    /// <summary>The response object (<c>object: "response"</c>) as it stands; <paramref name="name"/> is the property
    /// it goes in (null: a top-level value).</summary>
    public void WriteResponse(Utf8JsonWriter w, string? name = null)
    {
        if (name != null) w.WritePropertyName(name);
        var b = request.Body;
        w.WriteStartObject();
        w.WriteString("id", id);
        w.WriteString("object", "response");
        w.WriteNumber("created_at", _createdAt);
        w.WriteString("status", Status);
        w.WriteBoolean("background", false);
        w.WriteNull("error");
        if (Status == "incomplete")
        {
            w.WriteStartObject("incomplete_details");
            w.WriteString("reason", "max_output_tokens");
            w.WriteEndObject();
        }
        else w.WriteNull("incomplete_details");
        if (request.Instructions is null) w.WriteNull("instructions"); else w.WriteString("instructions", request.Instructions);
        if (b.Long("max_output_tokens") is { } max) w.WriteNumber("max_output_tokens", max); else w.WriteNull("max_output_tokens");
        w.WriteString("model", model);
        w.WriteStartArray("output");
        foreach (var item in _items)
            if (item.Done) WriteItem(w, item, partial: false);
        w.WriteEndArray();
        w.WriteBoolean("parallel_tool_calls", b.Bool("parallel_tool_calls") ?? false);
        if (request.PreviousResponseId is null) w.WriteNull("previous_response_id"); else w.WriteString("previous_response_id", request.PreviousResponseId);
        w.WriteStartObject("reasoning");
        w.WriteNull("effort");
        w.WriteNull("summary");
        w.WriteEndObject();
        w.WriteBoolean("store", request.Store);
        w.WriteNumber("temperature", b.Number("temperature") ?? 1.0);
        w.WritePropertyName("text");
        if (b.Object("text") is { } text && text["format"] is not null) text.WriteTo(w);
        else
        {
            w.WriteStartObject();
            w.WriteStartObject("format");
            w.WriteString("type", "text");
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WritePropertyName("tool_choice");
        if (b["tool_choice"] is { } choice) choice.WriteTo(w); else w.WriteStringValue("auto");
        w.WritePropertyName("tools");
        if (b.Array("tools") is { } tools) tools.WriteTo(w);
        else
        {
            w.WriteStartArray();
            w.WriteEndArray();
        }
        w.WriteNumber("top_p", b.Number("top_p") ?? 1.0);
        w.WriteString("truncation", "disabled");
        if (b.String("user") is { } user) w.WriteString("user", user); else w.WriteNull("user");
        w.WritePropertyName("metadata");
        if (b.Object("metadata") is { } metadata) metadata.WriteTo(w);
        else
        {
            w.WriteStartObject();
            w.WriteEndObject();
        }
        if (Result is { } r)
        {
            w.WriteStartObject("usage");
            w.WriteNumber("input_tokens", PromptTokens);
            w.WriteStartObject("input_tokens_details");
            w.WriteNumber("cached_tokens", r.CachedTokens);
            w.WriteEndObject();
            w.WriteNumber("output_tokens", r.CompletionTokens);
            w.WriteStartObject("output_tokens_details");
            w.WriteNumber("reasoning_tokens", ReasoningTokens);
            w.WriteEndObject();
            w.WriteNumber("total_tokens", PromptTokens + r.CompletionTokens);
            w.WriteEndObject();
        }
        else w.WriteNull("usage");
        w.WriteEndObject();
    }

    /// <summary>The reasoning text of the output (for usage's reasoning_tokens).</summary>
    public string ReasoningText() => string.Concat(_items.Where(i => i.Type == "reasoning").Select(i => i.Text.ToString()));

    /// <summary>The output as chat messages (one assistant message: reasoning, text and calls), appended to the stored
    /// conversation so a later <c>previous_response_id</c> continues it.</summary>
    public System.Text.Json.Nodes.JsonObject AsChatMessage()
    {
        var m = new System.Text.Json.Nodes.JsonObject { ["role"] = "assistant" };
        var text = string.Concat(_items.Where(i => i.Type == "message").Select(i => i.Text.ToString()));
        var reasoning = ReasoningText();
        m["content"] = text.Length == 0 && _items.Any(i => i.Call != null) ? null : text;
        if (reasoning.Length > 0) m["reasoning_content"] = reasoning;
        var calls = new System.Text.Json.Nodes.JsonArray();
        foreach (var i in _items.Where(i => i.Call != null))
            calls.Add((System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject
            {
                ["id"] = i.Call!.Id,
                ["type"] = "function",
                ["function"] = new System.Text.Json.Nodes.JsonObject { ["name"] = i.Call.Name, ["arguments"] = i.Call.Arguments },
            });
        if (calls.Count > 0) m["tool_calls"] = calls;
        return m;
    }
}
