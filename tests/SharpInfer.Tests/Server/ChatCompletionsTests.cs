using System.Text;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using SharpInfer.Engine;
using SharpInfer.Sampling;
using SharpInfer.Server;

namespace SharpInfer.Tests.Server;

/// <summary>/v1/chat/completions through the official OpenAI .NET client (and raw HTTP where the client cannot
/// express a parameter), on TestServer and on a loopback socket.</summary>
public class ChatCompletionsTests
{
    private static ChatCompletionOptions Greedy(int maxTokens) => new() { Temperature = 0, MaxOutputTokenCount = maxTokens };

    /// <summary>The server's answer equals what the engine produces for the chat-templated prompt.</summary>
    private static async Task<(string Text, int[] Prompt, int Completion, FinishReason Finish)> Direct(ServerHarness s, JsonArray messages, int maxTokens)
    {
        var prompts = new PromptBuilder(s.Engine.Model);
        var (_, tokens) = prompts.Build(messages);
        var text = new StringBuilder();
        FinishReason finish = FinishReason.Abort;
        int completion = 0;
        await foreach (var o in s.Engine.AddRequest(new EngineRequest { PromptTokens = tokens, Sampling = SamplingParams.Greedy(maxTokens) },
                                                    TestContext.Current.CancellationToken))
        {
            text.Append(o.Text);
            completion = o.CompletionTokens;
            if (o.Finish is { } f) finish = f;
        }
        return (text.ToString(), tokens, completion, finish);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task NonStreamingChatMatchesTheEngineAndReportsUsage(bool loopback)
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen, loopback);
        var client = s.Chat();
        var result = await client.CompleteChatAsync([new SystemChatMessage("You are terse."), new UserChatMessage("Name a colour.")], Greedy(12),
                                                    TestContext.Current.CancellationToken);
        var c = result.Value;
        var expected = await Direct(s, new JsonArray(
            new JsonObject { ["role"] = "system", ["content"] = "You are terse." },
            new JsonObject { ["role"] = "user", ["content"] = "Name a colour." }), 12);
        Assert.Equal(expected.Text, c.Content[0].Text);
        Assert.Equal(ChatMessageRole.Assistant, c.Role);
        Assert.Equal(expected.Finish == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop, c.FinishReason);
        Assert.Equal(expected.Prompt.Length, c.Usage.InputTokenCount);
        Assert.Equal(expected.Completion, c.Usage.OutputTokenCount);
        Assert.Equal(c.Usage.InputTokenCount + c.Usage.OutputTokenCount, c.Usage.TotalTokenCount);
        Assert.StartsWith("chatcmpl-", c.Id);
        Assert.Equal(s.ModelId, c.Model);
        Assert.StartsWith("b", c.SystemFingerprint);   // llama-server's b<build>-<commit> form
        Assert.EndsWith("-sharpinfer", c.SystemFingerprint);
        Assert.True(c.CreatedAt > DateTimeOffset.UtcNow.AddHours(-1));
        // Qwen3's own template was used: the prompt holds its turn markers
        var rendered = new PromptBuilder(s.Engine.Model).Build(new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "x" })).Text;
        Assert.Contains("<|im_start|>user", rendered);
    }

    [Fact]
    public async Task StreamingChatConcatenatesToTheNonStreamingAnswerWithAFinalUsageChunk()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var client = s.Chat();
        ChatMessage[] messages = [new UserChatMessage("Tell me a story.")];
        var whole = (await client.CompleteChatAsync(messages, Greedy(10), TestContext.Current.CancellationToken)).Value;

        var options = Greedy(10);   // the client asks for stream_options.include_usage itself
        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        int updates = 0;
        string? id = null;
        await foreach (var u in client.CompleteChatStreamingAsync(messages, options, TestContext.Current.CancellationToken))
        {
            updates++;
            id ??= u.CompletionId;
            Assert.Equal(id, u.CompletionId);
            foreach (var part in u.ContentUpdate) text.Append(part.Text);
            finish ??= u.FinishReason;
            usage ??= u.Usage;
        }
        Assert.Equal(whole.Content[0].Text, text.ToString());
        Assert.Equal(whole.FinishReason, finish);
        Assert.NotNull(usage);
        Assert.Equal(whole.Usage.InputTokenCount, usage.InputTokenCount);
        Assert.Equal(whole.Usage.OutputTokenCount, usage.OutputTokenCount);
        Assert.True(updates >= 2);
    }

    [Fact]
    public async Task RawStreamHasRoleChunkDeltasFinishAndDone()
    {
        await using var s = await ServerHarness.StartAsync();
        using var res = await s.PostStreamAsync("v1/chat/completions", new JsonObject
        {
            ["model"] = s.ModelId,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Once upon a time" }),
            ["max_tokens"] = 6,
            ["temperature"] = 0,
            ["stream"] = true,
            ["ignore_eos"] = true,
        }, TestContext.Current.CancellationToken);
        Assert.Equal("text/event-stream", res.Content.Headers.ContentType?.MediaType);
        var (chunks, done) = await ServerHarness.ReadAllSseAsync(res, TestContext.Current.CancellationToken);
        Assert.True(done);
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c["object"]!.GetValue<string>()));
        Assert.All(chunks, c => Assert.False(c.ContainsKey("usage")));   // only with stream_options.include_usage
        var first = chunks[0]["choices"]![0]!["delta"]!.AsObject();
        Assert.Equal("assistant", first["role"]!.GetValue<string>());
        Assert.True(first.ContainsKey("content") && first["content"] is null, first.ToJsonString());   // null, not ""
        Assert.All(chunks[1..], c => Assert.False(c["choices"]![0]!["delta"]!.AsObject().ContainsKey("role")));
        var last = chunks[^1]["choices"]![0]!;
        Assert.Equal("length", last["finish_reason"]!.GetValue<string>());
        Assert.All(chunks[..^1], c => Assert.Null(c["choices"]![0]!["finish_reason"]));
        // the finish reason comes in a chunk of its own with an empty delta (OpenAI's and llama-server's shape), after
        // every piece of the text
        Assert.Empty(last["delta"]!.AsObject());
        var streamed = string.Concat(chunks.Select(c => c["choices"]![0]!["delta"]?["content"]?.GetValue<string>()));
        var whole = await s.PostOkAsync("v1/chat/completions", new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Once upon a time" }),
            ["max_tokens"] = 6,
            ["temperature"] = 0,
            ["ignore_eos"] = true,
        });
        Assert.Equal(whole["choices"]![0]!["message"]!["content"]!.GetValue<string>(), streamed);
    }

    [Fact]
    public async Task NChoicesAreIndexedAndDifferWithSeedsButAreReproducible()
    {
        await using var s = await ServerHarness.StartAsync();
        JsonObject Body(bool stream) => new()
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Lily and Tom" }),
            ["max_tokens"] = 16,
            ["temperature"] = 1.0,
            ["seed"] = 42,
            ["n"] = 3,
            ["stream"] = stream,
            ["ignore_eos"] = true,
        };
        var a = await s.PostOkAsync("v1/chat/completions", Body(false));
        var b = await s.PostOkAsync("v1/chat/completions", Body(false));
        var choices = a["choices"]!.AsArray();
        Assert.Equal([0, 1, 2], choices.Select(c => c!["index"]!.GetValue<int>()));
        var texts = choices.Select(c => c!["message"]!["content"]!.GetValue<string>()).ToArray();
        Assert.Equal(texts, b["choices"]!.AsArray().Select(c => c!["message"]!["content"]!.GetValue<string>()));   // same seed → same answers
        Assert.True(texts.Distinct().Count() > 1, "different derived seeds should give different samples");
        Assert.Equal(3 * 16, a["usage"]!["completion_tokens"]!.GetValue<int>());

        using var res = await s.PostStreamAsync("v1/chat/completions", Body(true), TestContext.Current.CancellationToken);
        var (chunks, done) = await ServerHarness.ReadAllSseAsync(res, TestContext.Current.CancellationToken);
        Assert.True(done);
        var streamed = new StringBuilder[3];
        for (int i = 0; i < 3; i++) streamed[i] = new StringBuilder();
        var finished = new HashSet<int>();
        foreach (var c in chunks)
        {
            var choice = c["choices"]![0]!;
            int index = choice["index"]!.GetValue<int>();
            streamed[index].Append(choice["delta"]?["content"]?.GetValue<string>());
            if (choice["finish_reason"] != null) finished.Add(index);
        }
        Assert.Equal(texts, streamed.Select(x => x.ToString()));
        Assert.Equal([0, 1, 2], finished.Order());
    }

    [Fact]
    public async Task StopSequenceEndsTheAnswerBeforeIt()
    {
        await using var s = await ServerHarness.StartAsync();
        var client = s.Chat();
        ChatMessage[] messages = [new UserChatMessage("Once upon a time")];
        var free = (await client.CompleteChatAsync(messages, Greedy(40), TestContext.Current.CancellationToken)).Value.Content[0].Text;
        Assert.True(free.Length > 12, free);
        // stop at a word that occurs in the free answer
        var word = free.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(2).First(w => w.Length >= 3);
        int cut = free.IndexOf(word, StringComparison.Ordinal);
        var options = Greedy(40);
        options.StopSequences.Add(word);
        var stopped = (await client.CompleteChatAsync(messages, options, TestContext.Current.CancellationToken)).Value;
        Assert.Equal(free[..cut], stopped.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
    }

    [Fact]
    public async Task LogprobsHaveTokensBytesAndSortedAlternatives()
    {
        await using var s = await ServerHarness.StartAsync();
        var client = s.Chat();
        var options = Greedy(8);
        options.IncludeLogProbabilities = true;
        options.TopLogProbabilityCount = 3;
        var c = (await client.CompleteChatAsync([new UserChatMessage("The dog")], options, TestContext.Current.CancellationToken)).Value;
        var lps = c.ContentTokenLogProbabilities;
        Assert.Equal(c.Usage.OutputTokenCount, lps.Count);
        Assert.Equal(c.Content[0].Text, string.Concat(lps.Select(l => l.Token)));
        foreach (var lp in lps)
        {
            Assert.True(lp.LogProbability <= 0);
            Assert.Equal(lp.Token, Encoding.UTF8.GetString(lp.Utf8Bytes!.Value.Span));
            Assert.Equal(3, lp.TopLogProbabilities.Count);
            var tops = lp.TopLogProbabilities.Select(t => t.LogProbability).ToArray();
            Assert.Equal(tops.OrderDescending(), tops);
            // greedy: the chosen token is the most likely one
            Assert.Equal(lp.TopLogProbabilities[0].Token, lp.Token);
            Assert.Equal(lp.TopLogProbabilities[0].LogProbability, lp.LogProbability, 5);
        }
    }

    [Fact]
    public async Task SamplingExtensionsAndLogitBiasAreApplied()
    {
        await using var s = await ServerHarness.StartAsync();
        var tokenizer = s.Engine.Model.Tokenizer;
        // a huge bias on one token makes greedy decoding pick it every time
        int forced = tokenizer.Encode("Once upon a time there was a dog", addSpecial: false)[^1];
        var json = await s.PostOkAsync("v1/chat/completions", new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hello" }),
            ["max_completion_tokens"] = 4,
            ["temperature"] = 0,
            ["logit_bias"] = new JsonObject { [forced.ToString()] = 100 },
            ["top_k"] = 5,
            ["min_p"] = 0.01,
            ["repetition_penalty"] = 1.0,
            ["user"] = "tester",
            ["logprobs"] = true,
        });
        var choice = json["choices"]![0]!;
        var tokens = choice["logprobs"]!["content"]!.AsArray().Select(t => t!["token"]!.GetValue<string>()).ToArray();
        var piece = Encoding.UTF8.GetString(tokenizer.PieceBytes(forced));
        Assert.Equal(Enumerable.Repeat(piece, 4), tokens);
        Assert.Equal(4, json["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.Equal("length", choice["finish_reason"]!.GetValue<string>());
    }
}
