using System.Text.Json.Nodes;

namespace SharpInfer.Server.Api;

/// <summary>
/// Stored <c>/v1/responses</c> results for <c>previous_response_id</c> and <c>GET /v1/responses/{id}</c>, in memory
/// only and bounded three ways: an entry lives at most <see cref="ServerOptions.ResponsesTtl"/>, at most
/// <see cref="ServerOptions.ResponsesMaxEntries"/> are kept and their text totals at most
/// <see cref="ServerOptions.ResponsesMaxBytes"/> (oldest evicted first). A response that alone exceeds the byte
/// budget is not kept. Entries are immutable; a chained request copies the conversation it continues.
/// </summary>
internal sealed class ResponseStore(ServerOptions options, TimeProvider? time = null)
{
    /// <summary>One stored response: the chat messages of its whole conversation (input and output, instructions
    /// excluded, as OpenAI does not carry them over) and the response object as JSON text.</summary>
    public sealed record Entry(string Id, string ConversationJson, string ResponseJson, DateTimeOffset Expires)
    {
        /// <summary>Approximate memory (UTF-16 text).</summary>
        public long Bytes => 2L * (ConversationJson.Length + ResponseJson.Length);

        public JsonArray Conversation() => (JsonArray)JsonNode.Parse(ConversationJson)!;
    }

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly LinkedList<Entry> _order = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _byId = new(StringComparer.Ordinal);
    private long _bytes;

    public bool Enabled => options.ResponsesMaxEntries > 0 && options.ResponsesTtl > TimeSpan.Zero;

    public int Count
    {
        get
        {
            lock (_order) return _order.Count;
        }
    }

    public void Add(string id, JsonArray conversation, string responseJson)
    {
        if (!Enabled) return;
        var entry = new Entry(id, conversation.ToJsonString(), responseJson, _time.GetUtcNow() + options.ResponsesTtl);
        if (entry.Bytes > options.ResponsesMaxBytes) return;
        lock (_order)
        {
            EvictExpired();
            if (_byId.Remove(id, out var old)) Remove(old);
            while (_order.Count > 0 && (_order.Count >= options.ResponsesMaxEntries || _bytes + entry.Bytes > options.ResponsesMaxBytes))
                Remove(_order.First!);
            _byId[id] = _order.AddLast(entry);
            _bytes += entry.Bytes;
        }
    }

    public Entry? Get(string id)
    {
        lock (_order)
        {
            EvictExpired();
            return _byId.TryGetValue(id, out var node) ? node.Value : null;
        }
    }

    public bool Delete(string id)
    {
        lock (_order)
        {
            if (!_byId.Remove(id, out var node)) return false;
            _order.Remove(node);
            _bytes -= node.Value.Bytes;
            return true;
        }
    }

    /// <summary>Entries are added in expiry order (one TTL for all), so the expired ones are at the front.</summary>
    private void EvictExpired()
    {
        var now = _time.GetUtcNow();
        while (_order.First is { } first && first.Value.Expires <= now) Remove(first);
    }

    private void Remove(LinkedListNode<Entry> node)
    {
        _order.Remove(node);
        _byId.Remove(node.Value.Id);
        _bytes -= node.Value.Bytes;
    }
}
