using System.Text;
using SharpInfer.Engine;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Sampling;

/// <summary>Runs constrained requests on the random-weight qwen3-tiny (without a constraint its output is noise),
/// several at once so each sequence of a continuous batch is masked independently.</summary>
internal static class ConstrainedGeneration
{
    public static readonly Lazy<Model> Qwen = new(() => Model.Load(TestModels.Get("qwen3-tiny", "f32")));

    public sealed record Output(string Text, FinishReason Finish, int Tokens);

    public static async Task<Output[]> RunAsync(IReadOnlyList<ILogitsProcessorFactory> constraints, int maxTokens = 512, ulong seed = 1)
    {
        var model = Qwen.Value;
        using var engine = new LlmEngine(model, new EngineOptions { Threads = 2, MaxNumSeqs = 8 });
        var prompt = model.Tokenizer.Encode("Answer in JSON:");
        var tasks = constraints.Select((c, i) => Collect(engine.AddRequest(new EngineRequest
        {
            PromptTokens = prompt,
            Sampling = new SamplingParams { Temperature = 1f, Seed = seed + (ulong)i, MaxTokens = maxTokens, LogitsProcessor = c },
        }))).ToArray();
        return await Task.WhenAll(tasks);
    }

    private static async Task<Output> Collect(IAsyncEnumerable<RequestOutput> stream)
    {
        var text = new StringBuilder();
        int tokens = 0;
        FinishReason finish = default;
        await foreach (var o in stream)
        {
            text.Append(o.Text);
            tokens += o.TokenIds.Length;
            if (o.Finish is { } f) finish = f;
        }
        return new Output(text.ToString(), finish, tokens);
    }
}
