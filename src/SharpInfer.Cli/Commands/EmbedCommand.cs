using System.CommandLine;
using System.Text.Json;
using SharpInfer.Engine;
using SharpInfer.Engine.Pooling;
using SharpInfer.Models;

namespace SharpInfer.Cli.Commands;

/// <summary><c>sharpinfer embed -m model.gguf -p TEXT [-p TEXT …]</c>: prints the texts' embeddings as OpenAI's list
/// JSON (llama-embedding's <c>--embd-output-format json</c>), tokenized as llama.cpp does (BOS / EOS per the vocabulary,
/// special tokens parsed), pooled with <c>--pooling</c> (default: the model's pooling_type, else mean) and
/// normalized with <c>--embd-normalize</c> (default 2, Euclidean).</summary>
internal static class EmbedCommand
{
    public static Command Create(CliIo io)
    {
        var model = new Option<string?>("--model", "-m") { Description = "GGUF model file" };
        var prompts = new Option<string[]>("--prompt", "-p") { Description = "Text to embed (repeatable)", Required = true, AllowMultipleArgumentsPerToken = false };
        var pooling = new Option<string?>("--pooling") { Description = "none, mean, cls, last or rank (default: the model's pooling_type, else mean)" };
        var normalize = new Option<int>("--embd-normalize") { Description = "-1 none, 0 max absolute (int16 range), 2 Euclidean, p > 2 p-norm", DefaultValueFactory = _ => 2 };
        var dimensions = new Option<int?>("--dimensions") { Description = "Keep the first N values (Matryoshka), then normalize" };
        var threads = new Option<int>("--threads", "-t") { Description = "Compute threads", DefaultValueFactory = _ => Runtime.ComputePool.DefaultThreads };
        var cmd = new Command("embed", "Print the embeddings of texts as JSON") { model, prompts, pooling, normalize, dimensions, threads };
        cmd.SetAction(r =>
        {
            using var m = Model.Load(ModelFileCheck.Resolve(r.GetValue(model)));
            var texts = r.GetValue(prompts)!;
            using var engine = new LlmEngine(m, new EngineOptions
            {
                Threads = r.GetValue(threads),
                MaxNumSeqs = Math.Max(1, Math.Min(texts.Length, 16)),
                Pooling = r.GetValue(pooling) is { } pl ? PoolingTypes.Parse(pl) : null,
            });
            var p = new PoolingParams { Normalize = r.GetValue(normalize), Dimensions = r.GetValue(dimensions) };
            var results = engine.PoolManyAsync([.. texts.Select(t => m.Tokenizer.Encode(t))], p, engine.Options.MaxNumSeqs).GetAwaiter().GetResult();
            using var buffer = new MemoryStream();
            using var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteString("pooling", results.Length > 0 ? results[0].Type.Name() : engine.DefaultPooling.Name());
            w.WriteStartArray("data");
            for (int i = 0; i < results.Length; i++)
            {
                // one entry per vector: per text, or per token when the pooling is none
                foreach (var v in results[i].Vectors)
                {
                    w.WriteStartObject();
                    w.WriteString("object", "embedding");
                    w.WriteNumber("index", i);
                    w.WriteStartArray("embedding");
                    foreach (var x in v) w.WriteNumberValue(x);
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.Flush();
            io.Out.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
            return 0;
        });
        return cmd;
    }
}
