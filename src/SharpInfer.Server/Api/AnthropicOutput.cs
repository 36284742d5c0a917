using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Engine.Tools;

namespace SharpInfer.Server.Api;

/// <summary>
/// The reply of one <c>/v1/messages</c> turn as Anthropic content blocks, built from the chat path's parsed events:
/// <c>thinking</c> (only when the request enabled thinking; its <c>signature</c> is empty, nothing is signed),
/// <c>text</c>, and <c>tool_use</c> (<c>input</c> is the call's arguments object). When streaming, each change is
/// also sent as Anthropic's events: <c>message_start</c>, <c>ping</c>, <c>content_block_start</c>/<c>_delta</c>/
/// <c>_stop</c>, <c>message_delta</c> (stop reason, output tokens) and <c>message_stop</c>.
/// </summary>
internal sealed class AnthropicOutput(AnthropicRequest request, string id, string model, int promptTokens, SseWriter? sse, CancellationToken ct)
{
    private sealed class Block(string type)
    {
        public string Type { get; } = type;
        public readonly StringBuilder Text = new();
        public ToolCall? Call;
    }

    private readonly List<Block> _blocks = [];
    private Block? _open;

    public string? StopReason { get; private set; }
    public string? StopSequence { get; private set; }
    public ChatTurn.Result? Result { get; private set; }

    public async ValueTask StartAsync()
    {
        await EmitAsync("message_start", w =>
        {
            w.WritePropertyName("message");
            WriteMessage(w);
        }).ConfigureAwait(false);
        await EmitAsync("ping", _ => { }).ConfigureAwait(false);
    }

    public async ValueTask OnEventAsync(ChatOutputEvent e)
    {
        switch (e.Kind)
        {
            case ChatOutputKind.Content or ChatOutputKind.Reasoning:
                if (string.IsNullOrEmpty(e.Text) || (e.Kind == ChatOutputKind.Reasoning && !request.Thinking)) return;
                string type = e.Kind == ChatOutputKind.Content ? "text" : "thinking";
                if (_open?.Type != type)
                {
                    await CloseOpenAsync().ConfigureAwait(false);
                    _open = new Block(type);
                    _blocks.Add(_open);
                    await StartBlockAsync(_open).ConfigureAwait(false);
                }
                _open.Text.Append(e.Text);
                int index = _blocks.Count - 1;
                await EmitAsync("content_block_delta", w =>
                {
                    w.WriteNumber("index", index);
                    w.WriteStartObject("delta");
                    w.WriteString("type", type == "text" ? "text_delta" : "thinking_delta");
                    w.WriteString(type, e.Text);
                    w.WriteEndObject();
                }).ConfigureAwait(false);
                break;
            default:
                await CloseOpenAsync().ConfigureAwait(false);
                var block = new Block("tool_use") { Call = e.Call };
                _blocks.Add(block);
                int at = _blocks.Count - 1;
                await StartBlockAsync(block).ConfigureAwait(false);
                await EmitAsync("content_block_delta", w =>
                {
                    w.WriteNumber("index", at);
                    w.WriteStartObject("delta");
                    w.WriteString("type", "input_json_delta");
                    w.WriteString("partial_json", block.Call!.Arguments);
                    w.WriteEndObject();
                }).ConfigureAwait(false);
                await EmitAsync("content_block_stop", w => w.WriteNumber("index", at)).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>Closes the open block, works out the stop reason, and sends <c>message_delta</c> and <c>message_stop</c>.</summary>
    public async ValueTask FinishAsync(ChatTurn.Result result, SharpInfer.Tokenization.Tokenizer tokenizer)
    {
        await CloseOpenAsync().ConfigureAwait(false);
        Result = result;
        (StopReason, StopSequence) = Stop(result, tokenizer);
        await EmitAsync("message_delta", w =>
        {
            w.WriteStartObject("delta");
            w.WriteString("stop_reason", StopReason);
            if (StopSequence is null) w.WriteNull("stop_sequence"); else w.WriteString("stop_sequence", StopSequence);
            w.WriteEndObject();
            w.WriteStartObject("usage");
            w.WriteNumber("output_tokens", result.CompletionTokens);
            w.WriteEndObject();
        }).ConfigureAwait(false);
        await EmitAsync("message_stop", _ => { }).ConfigureAwait(false);
    }

    /// <summary><c>max_tokens</c>, <c>tool_use</c>, <c>stop_sequence</c> (which one: the earliest found in the decoded
    /// output, since the engine drops the matched text), or <c>end_turn</c>.</summary>
    private (string, string?) Stop(ChatTurn.Result result, SharpInfer.Tokenization.Tokenizer tokenizer)
    {
        if (result.Finish == FinishReason.Length) return ("max_tokens", null);
        if (_blocks.Any(b => b.Call != null)) return ("tool_use", null);
        if (request.StopSequences.Count > 0)
        {
            string text = tokenizer.Decode(result.TokenIds);
            string? first = null;
            int firstAt = int.MaxValue;
            foreach (var s in request.StopSequences)
                if (s.Length > 0 && text.IndexOf(s, StringComparison.Ordinal) is var i and >= 0 && i < firstAt) (first, firstAt) = (s, i);
            if (first != null) return ("stop_sequence", first);
        }
        return ("end_turn", null);
    }

    public ValueTask ErrorAsync(ApiException e) => sse is null ? ValueTask.CompletedTask
        : sse.WriteAsync("error", w => AnthropicErrors.WriteErrorObject(w, e), ct);

    private ValueTask StartBlockAsync(Block block)
    {
        int index = _blocks.Count - 1;
        return EmitAsync("content_block_start", w =>
        {
            w.WriteNumber("index", index);
            w.WritePropertyName("content_block");
            WriteBlock(w, block, partial: true);
        });
    }

    private async ValueTask CloseOpenAsync()
    {
        if (_open is not { } block) return;
        _open = null;
        int index = _blocks.IndexOf(block);
        if (block.Type == "thinking")
            await EmitAsync("content_block_delta", w =>
            {
                w.WriteNumber("index", index);
                w.WriteStartObject("delta");
                w.WriteString("type", "signature_delta");
                w.WriteString("signature", "");
                w.WriteEndObject();
            }).ConfigureAwait(false);
        await EmitAsync("content_block_stop", w => w.WriteNumber("index", index)).ConfigureAwait(false);
    }

    private ValueTask EmitAsync(string type, Action<Utf8JsonWriter> fields)
    {
        if (sse is null) return ValueTask.CompletedTask;
        return sse.WriteAsync(type, w =>
        {
            w.WriteStartObject();
            w.WriteString("type", type);
            fields(w);
            w.WriteEndObject();
        }, ct);
    }

    private static void WriteBlock(Utf8JsonWriter w, Block b, bool partial)
    {
        w.WriteStartObject();
        w.WriteString("type", b.Type);
        switch (b.Type)
        {
            case "text":
                w.WriteString("text", partial ? "" : b.Text.ToString());
                break;
            case "thinking":
                w.WriteString("thinking", partial ? "" : b.Text.ToString());
                w.WriteString("signature", "");
                break;
            default:
                w.WriteString("id", b.Call!.Id);
                w.WriteString("name", b.Call.Name);
                w.WritePropertyName("input");
                if (partial) w.WriteRawValue("{}");
                else Input(b.Call.Arguments).WriteTo(w);
                break;
        }
        w.WriteEndObject();
    }

    /// <summary>A call's arguments as the <c>input</c> object (the parser releases compact JSON objects; anything else
    /// is kept under <c>"arguments"</c> rather than failing the reply).</summary>
    private static JsonNode Input(string arguments)
    {
        try
        {
            if (JsonNode.Parse(arguments) is JsonObject o) return o;
        }
        catch (JsonException) { }
        return new JsonObject { ["arguments"] = arguments };
    }

    /// <summary>The message object: whole when finished, the <c>message_start</c> shell (no content) before.</summary>
    public void WriteMessage(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("id", id);
        w.WriteString("type", "message");
        w.WriteString("role", "assistant");
        w.WriteString("model", model);
        w.WriteStartArray("content");
        if (Result != null)
            foreach (var b in _blocks) WriteBlock(w, b, partial: false);
        w.WriteEndArray();
        if (StopReason is null) w.WriteNull("stop_reason"); else w.WriteString("stop_reason", StopReason);
        if (StopSequence is null) w.WriteNull("stop_sequence"); else w.WriteString("stop_sequence", StopSequence);
        int cached = Result?.CachedTokens ?? 0;
        w.WriteStartObject("usage");
        w.WriteNumber("input_tokens", promptTokens - cached);
        w.WriteNumber("cache_creation_input_tokens", 0);
        w.WriteNumber("cache_read_input_tokens", cached);
        w.WriteNumber("output_tokens", Result?.CompletionTokens ?? 0);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
