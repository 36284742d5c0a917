using System.Net;
using System.Text.Json.Nodes;

namespace SharpInfer.Tests.Server;

/// <summary>Details of the OpenAI routes that llama.cpp's server test suite checks and llama-server's clients rely
/// on: the over-long prompt's error (type and token counts, streamed or not) and the rejected
/// add_generation_prompt + continue_final_message pair.</summary>
public class LlamaServerCompatTests
{
    private static JsonObject LongChat(bool stream)
    {
        var messages = new JsonArray();
        for (int i = 0; i < 40; i++)
        {
            messages.Add(new JsonObject { ["role"] = "system", ["content"] = "Book" });
            messages.Add(new JsonObject { ["role"] = "user", ["content"] = "What is the best book" });
        }
        return new JsonObject { ["messages"] = messages, ["stream"] = stream };
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task OverLongPromptIsExceedContextSizeErrorWithCounts(bool stream)
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { Engine = o.Engine with { MaxModelLen = 128 } });
        var (status, json, _) = await s.PostAsync("v1/chat/completions", LongChat(stream));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        var error = json["error"]!.AsObject();
        Assert.Equal("exceed_context_size_error", error["type"]!.GetValue<string>());
        Assert.Equal("context_length_exceeded", error["code"]!.GetValue<string>());
        Assert.True(error["n_prompt_tokens"]!.GetValue<int>() > 128, json.ToJsonString());
        Assert.Equal(128, error["n_ctx"]!.GetValue<int>());
    }

    [Fact]
    public async Task AddGenerationPromptAndContinueFinalMessageTogetherAre400()
    {
        await using var s = await ServerHarness.StartAsync();
        var body = new JsonObject
        {
            ["max_tokens"] = 4,
            ["add_generation_prompt"] = true,
            ["continue_final_message"] = true,
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "user", ["content"] = "Hi" },
                new JsonObject { ["role"] = "assistant", ["content"] = "Hello" }),
        };
        var (status, json, _) = await s.PostAsync("v1/chat/completions", body);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("continue_final_message", json["error"]!["param"]!.GetValue<string>());
        body["add_generation_prompt"] = false;
        (status, json, _) = await s.PostAsync("v1/chat/completions", body);
        Assert.True(status == HttpStatusCode.OK, json.ToJsonString());
    }

    [Fact]
    public async Task AnyModelNameServesTheLoadedModelOnlyWhenAsked()
    {
        var body = new JsonObject
        {
            ["model"] = "gpt-3.5-turbo",
            ["max_tokens"] = 2,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" }),
        };
        await using (var strict = await ServerHarness.StartAsync())
        {
            var (status, _, _) = await strict.PostAsync("v1/chat/completions", body);
            Assert.Equal(HttpStatusCode.NotFound, status);
        }
        await using var any = await ServerHarness.StartAsync(configure: o => o with { AnyModelName = true });
        var (ok, json, _) = await any.PostAsync("v1/chat/completions", body);
        Assert.True(ok == HttpStatusCode.OK, json.ToJsonString());
        Assert.Equal(2, json["usage"]!["completion_tokens"]!.GetValue<int>());
    }
}
