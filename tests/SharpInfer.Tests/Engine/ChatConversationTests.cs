using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Models;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Engine;

/// <summary>Multi-turn chat on the synthetic qwen3-tiny (real Qwen3 tokenizer and template, random weights).</summary>
public class ChatConversationTests
{
    internal static readonly SessionOptions Options = new() { Threads = 1, ContextLength = 512 };
    private static readonly SamplingParams Greedy = SamplingParams.Greedy(maxTokens: 12);

    internal static string ModelPath => TestModels.Get("qwen3-tiny", "f32");

    private static (List<int> Tokens, string Text) Drain(IEnumerable<GenerationEvent> events)
    {
        var ids = new List<int>();
        var text = new System.Text.StringBuilder();
        foreach (var ev in events)
        {
            if (ev.TokenId >= 0) ids.Add(ev.TokenId);
            text.Append(ev.Text);
        }
        return (ids, text.ToString());
    }

    private static int CommonPrefix(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        int n = 0;
        while (n < a.Count && n < b.Count && a[n] == b[n]) n++;
        return n;
    }

    /// <summary>Turn 2 processes exactly the part of its prompt after the longest run of full KV blocks it shares with
    /// what turn 1 computed (turn 1's prompt and every reply token fed back), reused through the engine's prefix
    /// cache, and generates what a fresh session gives for the same prompt.
    /// Without thinking, Qwen3's generation prompt ends with an empty &lt;think&gt; block that the template leaves out
    /// of earlier assistant turns, so the cache is only partly reusable; with thinking on, the whole first turn is.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SecondTurnProcessesOnlyWhatFollowsTheCachedPrefix(bool thinking)
    {
        using var model = Model.Load(ModelPath);
        using var session = new InferenceSession(model, Options);
        var vars = new Dictionary<string, JsonNode?> { ["enable_thinking"] = thinking };
        var chat = new ChatConversation(session, ChatFormatter.ForModel(model), "You are terse.", vars);

        var (reply1Ids, reply1) = Drain(chat.Send("Hi", Greedy, TestContext.Current.CancellationToken));
        var prompt1 = chat.LastPrompt!.TokenIds;
        Assert.Equal(prompt1.Length, session.LastTimings.PromptTokens);
        Assert.Equal(0, session.LastTimings.CachedPromptTokens);
        Assert.NotEmpty(reply1Ids);
        Assert.Equal(reply1, chat.LastReply);
        // turn 1 computed the prompt and every reply token that was fed back (all but the last one)
        var cached = prompt1.Concat(reply1Ids.Take(reply1Ids.Count - 1)).ToArray();
        int block = Options.KvBlockSize;

        var (reply2Ids, _) = Drain(chat.Send("How are you?", Greedy, TestContext.Current.CancellationToken));
        var prompt2 = chat.LastPrompt!.TokenIds;
        Assert.Equal(prompt2, chat.Formatter.Format(new ChatFormatRequest { Messages = new JsonArray([.. chat.Messages.Take(4).Select(m => m!.DeepClone())]), Variables = vars }).TokenIds);
        int common = CommonPrefix(prompt2, cached);
        // whole blocks, then token by token into turn 1's partly filled last block when the shared prefix reaches it;
        // never the last prompt token (its logits are needed)
        int shared = Math.Min(common, prompt2.Length - 1);
        int reusable = shared / block * block == cached.Length / block * block ? shared : shared / block * block;
        var t = session.LastTimings;
        Assert.Equal(prompt2.Length, t.PromptTokens);
        Assert.Equal(reusable, t.CachedPromptTokens);
        Assert.Equal(prompt2.Length - reusable, t.ProcessedPromptTokens);
        Assert.True(reusable > 0);
        if (thinking) Assert.True(common >= prompt1.Length, $"common prefix {common} < turn-1 prompt {prompt1.Length}");
        else Assert.True(common < prompt1.Length, $"common prefix {common} should stop inside turn 1's generation prompt ({prompt1.Length})");

        // history: system, user, assistant (the reply text), user, assistant
        var history = chat.Messages;
        Assert.Equal(["system", "user", "assistant", "user", "assistant"], history.Select(m => m!["role"]!.GetValue<string>()));
        Assert.Equal(reply1, history[2]!["content"]!.GetValue<string>());

        // greedy from scratch on the turn-2 prompt gives the same tokens
        using var fresh = new InferenceSession(model, Options);
        var (scratchIds, _) = Drain(fresh.Generate(prompt2, Greedy, TestContext.Current.CancellationToken));
        Assert.Equal(0, fresh.LastTimings.CachedPromptTokens);
        Assert.Equal(scratchIds, reply2Ids);
    }

    /// <summary>Reset forgets the history; the first prompt again hits the prefix cache and gives the same reply.</summary>
    [Fact]
    public void ResetForgetsHistoryButKeepsTheSystemPrompt()
    {
        using var model = Model.Load(ModelPath);
        using var session = new InferenceSession(model, Options);
        var chat = new ChatConversation(session, ChatFormatter.ForModel(model), "Sys");
        var (first, _) = Drain(chat.Send("Hi", Greedy, TestContext.Current.CancellationToken));
        var firstPrompt = chat.LastPrompt!.TokenIds;
        Drain(chat.Send("Again", Greedy, TestContext.Current.CancellationToken));
        Assert.Equal(5, chat.Messages.Count);

        chat.Reset();
        var only = Assert.Single(chat.Messages);
        Assert.Equal("system", only!["role"]!.GetValue<string>());
        Assert.Null(chat.LastPrompt);

        var (again, _) = Drain(chat.Send("Hi", Greedy, TestContext.Current.CancellationToken));
        Assert.Equal(firstPrompt, chat.LastPrompt!.TokenIds);
        Assert.Equal((firstPrompt.Length - 1) / Options.KvBlockSize * Options.KvBlockSize, session.LastTimings.CachedPromptTokens);
        Assert.Equal(first, again);
    }

    [Fact]
    public void APromptThatDoesNotFitIsRejectedBeforeJoiningTheHistory()
    {
        using var model = Model.Load(ModelPath);
        using var session = new InferenceSession(model, Options with { ContextLength = 32 });
        var chat = new ChatConversation(session, ChatFormatter.ForModel(model));
        var e = Assert.Throws<ContextLengthExceededException>(() => chat.Send(string.Join(' ', Enumerable.Repeat("word", 40)), Greedy, TestContext.Current.CancellationToken));
        Assert.Equal(32, e.ContextLength);
        Assert.Empty(chat.Messages);
        Assert.Throws<InvalidRequestException>(() => chat.Send("hi", Greedy with { TopP = 0 }, TestContext.Current.CancellationToken));
        Assert.Empty(chat.Messages);
        var (ids, _) = Drain(chat.Send("hi", SamplingParams.Greedy(4), TestContext.Current.CancellationToken));
        Assert.NotEmpty(ids);
        Assert.Equal(2, chat.Messages.Count);
    }

    [Fact]
    public void ACancelledReplyStillJoinsTheHistory()
    {
        using var model = Model.Load(ModelPath);
        using var session = new InferenceSession(model, Options);
        var chat = new ChatConversation(session, ChatFormatter.ForModel(model));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var events = new List<GenerationEvent>();
        foreach (var ev in chat.Send("Hi", Greedy, cts.Token))
        {
            events.Add(ev);
            if (events.Count == 3) cts.Cancel();
        }
        Assert.Equal(FinishReason.Abort, events[^1].Finish);
        Assert.Equal(FinishReason.Abort, chat.LastFinish);
        Assert.Equal(3, events.Count(ev => ev.TokenId >= 0));
        Assert.Equal(string.Concat(events.Select(ev => ev.Text)), chat.Messages[1]!["content"]!.GetValue<string>());
    }
}
