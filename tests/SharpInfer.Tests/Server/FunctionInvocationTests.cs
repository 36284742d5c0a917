using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.AI;
using OpenAI;

namespace SharpInfer.Tests.Server;

/// <summary>
/// The official OpenAI .NET client through Microsoft.Extensions.AI (<c>AsIChatClient()</c> +
/// <c>UseFunctionInvocation()</c>) against the in-process server, on the random-weight qwen3-tiny: the forced call
/// (<see cref="ChatToolMode.RequireAny"/>) invokes a C# function with arguments that match the schema the library
/// generated for it, and the next request carries the function's result as a <c>tool</c> message.
/// </summary>
public class FunctionInvocationTests
{
    public enum Unit { Celsius, Fahrenheit }

    /// <summary>Records every request body the client sends.</summary>
    private sealed class Recorder(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        public readonly List<JsonObject> Bodies = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            if (request.Content != null)
            {
                var body = JsonNode.Parse(await request.Content.ReadAsStringAsync(ct))!.AsObject();
                lock (Bodies) Bodies.Add(body);
            }
            return await base.SendAsync(request, ct);
        }
    }

    [Fact]
    public async Task ForcedCallInvokesTheFunctionAndTheResultGoesBack()
    {
        await using var s = await ServerHarness.StartAsync(ServerModels.Qwen);
        var recorder = new Recorder(s.App.GetTestServer().CreateHandler());
        using var http = new HttpClient(recorder) { BaseAddress = s.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        var openAi = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions
        {
            Endpoint = new Uri(s.BaseAddress, "v1"),
            Transport = new HttpClientPipelineTransport(http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        });

        var invocations = new List<(Unit Unit, long Days)>();
        var forecast = AIFunctionFactory.Create((Unit unit, long days) =>
        {
            invocations.Add((unit, days));
            return $"sunny for {days} days, 21 degrees {unit}";
        }, "get_forecast", "The weather forecast.");

        IChatClient client = openAi.GetChatClient(s.ModelId).AsIChatClient()
            .AsBuilder()
            .UseFunctionInvocation(configure: f => f.MaximumIterationsPerRequest = 3)
            .Build();
        var options = new ChatOptions { Tools = [forecast], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 200, Seed = 4 };
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Weather next week?")], options,
                                                     TestContext.Current.CancellationToken);

        // the first request forced a call; the function ran with the model's (grammar-constrained) arguments
        Assert.True(invocations.Count > 0, "the function was not called; requests:\n" + string.Join("\n", recorder.Bodies.Select(b => b.ToJsonString())));
        var first = recorder.Bodies[0];
        Assert.Equal("required", first["tool_choice"]!.GetValue<string>());
        var schemaText = first["tools"]![0]!["function"]!["parameters"]!.ToJsonString();
        var call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().First();
        Assert.Equal("get_forecast", call.Name);
        using (var args = JsonDocument.Parse(JsonSerializer.Serialize(call.Arguments)))
            Assert.True(JsonSchema.FromText(schemaText).Evaluate(args.RootElement).IsValid, $"{args.RootElement} vs {schemaText}");
        Assert.Equal(invocations[0].Days, ((JsonElement)call.Arguments!["days"]!).GetInt64());

        // FunctionInvokingChatClient sends the result back (the assistant turn without "content", which the template must
        // take); it turns a required tool mode into auto after the first round (else a model forced to call would call
        // forever), so the second request lets the model answer
        Assert.True(recorder.Bodies.Count >= 2);
        var second = recorder.Bodies[1];
        Assert.NotEqual("required", second["tool_choice"]?.GetValue<string>());
        var messages = second["messages"]!.AsArray();
        var assistant = messages.Single(m => m!["role"]!.GetValue<string>() == "assistant")!;
        var sentCall = assistant["tool_calls"]![0]!;
        var tool = messages.Single(m => m!["role"]!.GetValue<string>() == "tool")!;
        Assert.Equal(sentCall["id"]!.GetValue<string>(), tool["tool_call_id"]!.GetValue<string>());
        Assert.Contains($"sunny for {invocations[0].Days} days", tool["content"]!.ToJsonString());
        Assert.Single(invocations);
    }
}
