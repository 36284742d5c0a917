using System.Text.Json.Nodes;
using SharpInfer.Server;
using SharpInfer.Server.Api;

namespace SharpInfer.Tests.Server;

/// <summary>The in-memory store behind previous_response_id stays bounded: by age, by count and by bytes.</summary>
public class ResponseStoreTests
{
    private sealed class ManualClock : TimeProvider
    {
        public DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => Now;
    }

    private static JsonArray Conversation(string text) => new(new JsonObject { ["role"] = "user", ["content"] = text });

    private static ServerOptions Options(int entries = 1000, long bytes = 1L << 20, double ttlSeconds = 3600) =>
        new() { ResponsesMaxEntries = entries, ResponsesMaxBytes = bytes, ResponsesTtl = TimeSpan.FromSeconds(ttlSeconds) };

    [Fact]
    public void EntriesExpireAfterTheTtl()
    {
        var clock = new ManualClock();
        var store = new ResponseStore(Options(ttlSeconds: 60), clock);
        store.Add("a", Conversation("x"), "{}");
        clock.Now += TimeSpan.FromSeconds(59);
        Assert.NotNull(store.Get("a"));
        clock.Now += TimeSpan.FromSeconds(1);
        Assert.Null(store.Get("a"));
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public void TheOldestGoesFirstWhenTheCountOrTheBytesRunOut()
    {
        var store = new ResponseStore(Options(entries: 3));
        foreach (var id in new[] { "a", "b", "c", "d" }) store.Add(id, Conversation(id), "{}");
        Assert.Null(store.Get("a"));
        Assert.Equal(3, store.Count);

        var small = new ResponseStore(Options(bytes: 4000));
        var text = new string('x', 500);   // about 1.1 kB per entry as UTF-16
        foreach (var id in new[] { "a", "b", "c", "d", "e" }) small.Add(id, Conversation(text), "{}");
        Assert.Equal(3, small.Count);
        Assert.Null(small.Get("b"));
        Assert.NotNull(small.Get("e"));

        small.Add("huge", Conversation(new string('y', 5000)), "{}");   // alone over the budget: not kept, nothing evicted
        Assert.Null(small.Get("huge"));
        Assert.Equal(3, small.Count);
    }

    [Fact]
    public void ZeroEntriesOrTtlKeepsNothing()
    {
        var none = new ResponseStore(Options(entries: 0));
        none.Add("a", Conversation("x"), "{}");
        Assert.Null(none.Get("a"));
        var noTtl = new ResponseStore(Options(ttlSeconds: 0));
        noTtl.Add("a", Conversation("x"), "{}");
        Assert.Null(noTtl.Get("a"));
    }
}
