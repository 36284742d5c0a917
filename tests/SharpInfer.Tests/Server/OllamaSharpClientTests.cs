using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using Microsoft.Extensions.AI;
using OllamaSharp;
using OllamaSharp.Models;
using OllamaSharp.Models.Chat;

namespace SharpInfer.Tests.Server;

/// <summary>
/// OllamaSharp, the .NET Ollama client, unchanged against the server: chat (whole and streamed), generate, embed,
/// tags, show, a tool call, and Microsoft.Extensions.AI's <see cref="IChatClient"/> over it. Each answer is checked
/// against what the OpenAI routes give for the same prompt and sampling, and token counts against the tokenizer.
/// </summary>
public class OllamaSharpClientTests
{
    private static OllamaApiClient Client(ServerHarness s) => new(s.Http, s.ModelId);

    private static RequestOptions Greedy(int numPredict) => new() { Temperature = 0, RepeatPenalty = 1.0f, NumPredict = numPredict };

    private static async Task<JsonObject> OpenAiChatAsync(ServerHarness s, string user, int maxTokens, JsonObject? extra = null)
    {
        var body = new JsonObject { ["messages"] = OllamaApiTests.Conversation(user, null), ["max_tokens"] = maxTokens, ["temperature"] = 0 };
        foreach (var (k, v) in extra ?? []) body[k] = v?.DeepClone();
        return await s.PostOkAsync("v1/chat/completions", body);
    }

    private static async Task<(string Text, ChatDoneResponseStream Done, int Pieces)> CollectAsync(IAsyncEnumerable<ChatResponseStream?> stream)
    {
        var text = new StringBuilder();
        ChatDoneResponseStream? done = null;
        int pieces = 0;
        await foreach (var r in stream)
        {
            if (r is null) continue;
            text.Append(r.Message.Content);
            pieces++;
            if (r is ChatDoneResponseStream d) done = d;
        }
        return (text.ToString(), Assert.IsType<ChatDoneResponseStream>(done), pieces);
    }

    [Fact]
    public async Task ChatWholeAndStreamedMatchChatCompletions()
    {
        await using var s = await ServerHarness.StartAsync();
        var client = Client(s);
        var expected = await OpenAiChatAsync(s, "Once upon a time", 12);
        string expectedText = expected["choices"]![0]!["message"]!["content"]!.GetValue<string>();

        var request = new ChatRequest { Model = s.ModelId, Messages = [new Message { Role = OllamaSharp.Models.Chat.ChatRole.User, Content = "Once upon a time" }], Options = Greedy(12), Stream = false };
        var (whole, wholeDone, _) = await CollectAsync(client.ChatAsync(request, TestContext.Current.CancellationToken));
        Assert.Equal(expectedText, whole);
        Assert.Equal(expected["usage"]!["prompt_tokens"]!.GetValue<int>(), wholeDone.PromptEvalCount);
        Assert.Equal(expected["usage"]!["completion_tokens"]!.GetValue<int>(), wholeDone.EvalCount);
        Assert.Equal(expected["choices"]![0]!["finish_reason"]!.GetValue<string>(), wholeDone.DoneReason);
        Assert.True(wholeDone.TotalDuration > 0 && wholeDone.EvalDuration <= wholeDone.TotalDuration);

        request.Stream = true;
        var (streamed, done, pieces) = await CollectAsync(client.ChatAsync(request, TestContext.Current.CancellationToken));
        Assert.Equal(expectedText, streamed);
        Assert.True(pieces > 2);
        Assert.Equal(wholeDone.EvalCount, done.EvalCount);
        Assert.Equal(wholeDone.PromptEvalCount, done.PromptEvalCount);
    }

    [Fact]
    public async Task GenerateMatchesCompletionsAndCountsTheTokenizersTokens()
    {
        await using var s = await ServerHarness.StartAsync();
        var client = Client(s);
        var text = new StringBuilder();
        GenerateDoneResponseStream? done = null;
        var request = new GenerateRequest { Model = s.ModelId, Prompt = "Once upon a time", Raw = true, Options = Greedy(10) };
        await foreach (var r in client.GenerateAsync(request, TestContext.Current.CancellationToken))
        {
            text.Append(r?.Response);
            if (r is GenerateDoneResponseStream d) done = d;
        }
        var completion = await s.PostOkAsync("v1/completions", new JsonObject { ["prompt"] = "Once upon a time", ["max_tokens"] = 10, ["temperature"] = 0 });
        Assert.Equal(completion["choices"]![0]!["text"]!.GetValue<string>(), text.ToString());
        Assert.NotNull(done);
#pragma warning disable CS0618 // context is deprecated by Ollama but still sent, and checked here
        var promptIds = s.Engine.Model.Tokenizer.Encode("Once upon a time", addSpecial: true, parseSpecial: true);
        Assert.Equal(promptIds.Length, done.PromptEvalCount);
        Assert.Equal(10, done.EvalCount);
        Assert.Equal(promptIds, done.Context!.Take(promptIds.Length).Select(x => (int)x));
        Assert.Equal(text.ToString(), s.Engine.Model.Tokenizer.Decode(done.Context!.Skip(promptIds.Length).Select(x => (int)x).ToArray()));
#pragma warning restore CS0618
    }

    [Fact]
    public async Task EmbedEqualsTheOpenAiEmbedding()
    {
        await using var s = await ServerHarness.StartAsync();
        var client = Client(s);
        var result = await client.EmbedAsync(new EmbedRequest { Model = s.ModelId, Input = ["hello there", "a cat"] }, TestContext.Current.CancellationToken);
        var openAi = await s.PostOkAsync("v1/embeddings", new JsonObject { ["input"] = new JsonArray("hello there", "a cat") });
        Assert.Equal(2, result.Embeddings.Count);
        for (int i = 0; i < 2; i++)
        {
            var expected = openAi["data"]![i]!["embedding"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray();
            Assert.Equal(expected.Length, result.Embeddings[i].Length);
            for (int j = 0; j < expected.Length; j++) Assert.Equal(expected[j], result.Embeddings[i][j], 5);
        }
        Assert.Equal(openAi["usage"]!["prompt_tokens"]!.GetValue<int>(), result.PromptEvalCount);
    }

    [Fact]
    public async Task TagsShowAndPsDescribeTheModel()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var client = Client(s);
        Assert.True(await client.IsRunningAsync(TestContext.Current.CancellationToken));
        var local = Assert.Single(await client.ListLocalModelsAsync(TestContext.Current.CancellationToken));
        Assert.Equal(s.ModelId + ":latest", local.Name);
        Assert.Equal(s.Engine.Model.File.FileSize, local.Size);
        Assert.Equal("gguf", local.Details.Format);
        Assert.Equal("qwen3", local.Details.Family);
        Assert.Equal("F32", local.Details.QuantizationLevel);

        var show = await client.ShowModelAsync(new ShowModelRequest { Model = local.Name }, TestContext.Current.CancellationToken);
        Assert.Equal(s.Host.Prompts!.Formatter.Template.Source, show.Template);
        Assert.Equal("qwen3", show.Info.Architecture);
        Assert.Equal(s.Engine.Model.File.Tensors.Sum(t => t.ElementCount), show.Info.ParameterCount);
        Assert.Contains("tools", show.Capabilities!.Select(c => c.ToString()!.ToLowerInvariant()));

        var running = Assert.Single(await client.ListRunningModelsAsync(TestContext.Current.CancellationToken));
        Assert.Equal(s.Engine.MaxModelLen, running.ContextLength);
        Assert.False(string.IsNullOrEmpty((await client.GetVersionAsync(TestContext.Current.CancellationToken)).ToString()));
    }

    [Fact]
    public async Task ToolCallComesBackAsAParsedCall()
    {
        await using var s = await ServerHarness.StartAsync();
        var client = Client(s);
        var tool = new Tool
        {
            Function = new Function
            {
                Name = "get_weather",
                Description = "Weather of a city",
                Parameters = new Parameters
                {
                    Properties = new Dictionary<string, Property> { ["city"] = new() { Type = "string", Description = "the city" } },
                    Required = ["city"],
                },
            },
        };
        var request = new ChatRequest
        {
            Model = s.ModelId,
            Messages = [new Message { Role = OllamaSharp.Models.Chat.ChatRole.User, Content = "Weather in Paris?" }],
            Tools = [tool],
            // the generic tool reply's call shape (stories260K's template has no tool syntax): the random model calls
            Format = JsonSerializer.SerializeToElement(OllamaApiTests.ToolCallFormat()),
            Options = new RequestOptions { Temperature = 0, NumPredict = 200 },
            Stream = false,
        };
        var calls = new List<Message.ToolCall>();
        await foreach (var r in client.ChatAsync(request, TestContext.Current.CancellationToken))
            calls.AddRange(r?.Message.ToolCalls ?? []);
        var call = Assert.Single(calls);
        Assert.Equal("get_weather", call.Function!.Name);
        var args = JsonSerializer.SerializeToElement(call.Function.Arguments);
        Assert.True(JsonSchema.FromText(OllamaApiTests.WeatherParameters).Evaluate(args).IsValid, args.ToString());
    }

    [Fact]
    public async Task ChatClientOverOllamaSharpUsesOllamasDefaults()
    {
        await using var s = await ServerHarness.StartAsync();
        IChatClient chat = Client(s);
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 10 };
        var response = await chat.GetResponseAsync([new(Microsoft.Extensions.AI.ChatRole.User, "Once upon a time")], options, TestContext.Current.CancellationToken);
        // no repeat_penalty given: Ollama's default 1.1 over the last 64 tokens applies
        var expected = await OpenAiChatAsync(s, "Once upon a time", 10, new JsonObject { ["repetition_penalty"] = 1.1, ["repeat_last_n"] = 64 });
        Assert.Equal(expected["choices"]![0]!["message"]!["content"]!.GetValue<string>(), response.Text);
        Assert.Equal(expected["usage"]!["prompt_tokens"]!.GetValue<long>(), response.Usage!.InputTokenCount);
        Assert.Equal(expected["usage"]!["completion_tokens"]!.GetValue<long>(), response.Usage.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);

        var streamed = new StringBuilder();
        await foreach (var update in chat.GetStreamingResponseAsync([new(Microsoft.Extensions.AI.ChatRole.User, "Once upon a time")], options, TestContext.Current.CancellationToken))
            streamed.Append(update.Text);
        Assert.Equal(response.Text, streamed.ToString());
    }
}
