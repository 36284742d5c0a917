using System.CommandLine;
using System.Text.Json;
using SharpInfer.Engine;
using SharpInfer.Models;
using SharpInfer.Sampling;

namespace SharpInfer.Cli.Commands;

/// <summary>
/// <c>sharpinfer run</c>: generates a continuation of a prompt and streams it to stdout; prompt and generation
/// speed go to stderr. With <c>--json</c>, prints exactly one JSON object on stdout instead.
/// </summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var prompt = new Option<string>("--prompt", "-p") { Description = "Prompt text (special tokens such as <|im_start|> are parsed)", DefaultValueFactory = _ => "Once upon a time" };
        var sampling = new SamplingOptions(defaultMaxTokens: 128);
        var json = new Option<bool>("--json") { Description = "Print one JSON object (prompt_ids, generated_ids, text, timings) instead of streaming" };
        var logprobs = new Option<int?>("--logprobs") { Description = "With --json: include the top N log-probs of every generated token" };
        var noPrompt = new Option<bool>("--no-display-prompt") { Description = "Do not echo the prompt before the continuation" };
        var cmd = new Command("run", "Generate text from a prompt");
        common.AddTo(cmd);
        cmd.Options.Add(prompt);
        sampling.AddTo(cmd);
        foreach (var o in new Option[] { json, logprobs, noPrompt, GrammarOptions.GrammarFile, GrammarOptions.JsonSchema })
            cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var p = GrammarOptions.Apply(r, sampling.Params(r) with { Logprobs = r.GetValue(json) ? r.GetValue(logprobs) : null });
            return Run(common.ModelPath(r), common.Session(r), r.GetValue(prompt)!, p, r.GetValue(json), !r.GetValue(noPrompt), Console.Out, Console.Error);
        });
        return cmd;
    }

    public static int Run(string modelPath, SessionOptions options, string prompt, SamplingParams sampling, bool json, bool echoPrompt,
                          TextWriter stdout, TextWriter stderr)
    {
        using var model = LoadProgress.LoadModel(modelPath, stderr, options.Precision, options.Isa);
        sampling = GrammarOptions.Bind(sampling, model);
        using var session = new InferenceSession(model, options);
        var promptIds = model.Tokenizer.Encode(prompt, addSpecial: true, parseSpecial: true);
        var generated = new List<int>();
        var tops = new List<TokenLogProb[]>();
        var text = new System.Text.StringBuilder();
        FinishReason finish = FinishReason.Length;
        if (!json && echoPrompt) { stdout.Write(prompt); stdout.Flush(); }
        foreach (var ev in session.Generate(promptIds, sampling))
        {
            if (ev.TokenId >= 0)
            {
                generated.Add(ev.TokenId);
                if (ev.TopLogProbs != null) tops.Add(ev.TopLogProbs);
            }
            text.Append(ev.Text);
            if (!json && ev.Text.Length > 0) { stdout.Write(ev.Text); stdout.Flush(); }
            if (ev.Finish is { } f) finish = f;
        }
        var t = session.LastTimings;
        if (json)
        {
            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer, CliJson.WriterOptions))
                WriteJson(w, promptIds, generated, text.ToString(), sampling.Logprobs != null ? tops : null, finish, t, model, options);
            stdout.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
            stdout.Flush();
        }
        else stdout.WriteLine();
        stderr.WriteLine();
        stderr.WriteLine($"prompt: {t.ProcessedPromptTokens} tokens in {t.PromptMs:F1} ms ({t.PromptTokensPerSecond:F1} tokens/s)" +
                         (t.CachedPromptTokens > 0 ? $", {t.CachedPromptTokens} cached" : ""));
        stderr.WriteLine($"generation: {t.GeneratedTokens} tokens, {t.DecodePasses} decode passes in {t.GenerationMs:F1} ms ({t.GenerationTokensPerSecond:F1} tokens/s); finish: {finish.ToApiString()}");
        return 0;
    }

    private static void WriteJson(Utf8JsonWriter w, int[] promptIds, List<int> generated, string text, List<TokenLogProb[]>? tops,
                                  FinishReason finish, GenerationTimings t, Model model, SessionOptions options)
    {
        w.WriteStartObject();
        w.WriteStartArray("prompt_ids");
        foreach (var id in promptIds) w.WriteNumberValue(id);
        w.WriteEndArray();
        w.WriteStartArray("generated_ids");
        foreach (var id in generated) w.WriteNumberValue(id);
        w.WriteEndArray();
        w.WriteString("text", text);
        w.WriteString("finish_reason", finish.ToApiString());
        if (tops != null)
        {
            w.WriteStartArray("top_logprobs");
            foreach (var step in tops)
            {
                w.WriteStartArray();
                foreach (var tp in step)
                {
                    w.WriteStartArray();
                    w.WriteNumberValue(tp.Id);
                    CliJson.WriteNumberOrNull(w, tp.LogProb);
                    w.WriteEndArray();
                }
                w.WriteEndArray();
            }
            w.WriteEndArray();
        }
        w.WriteStartObject("timings");
        w.WriteNumber("prompt_n", t.ProcessedPromptTokens);
        w.WriteNumber("prompt_cached", t.CachedPromptTokens);
        CliJson.WriteNumberOrNull(w, "prompt_ms", Math.Round(t.PromptMs, 3));
        CliJson.WriteNumberOrNull(w, "prompt_per_second", Math.Round(t.PromptTokensPerSecond, 3));
        w.WriteNumber("predicted_n", t.GeneratedTokens);
        CliJson.WriteNumberOrNull(w, "predicted_ms", Math.Round(t.GenerationMs, 3));
        CliJson.WriteNumberOrNull(w, "predicted_per_second", Math.Round(t.GenerationTokensPerSecond, 3));
        w.WriteNumber("threads", options.Threads);
        if (options.Speculative != null)
        {
            w.WriteNumber("draft_n", t.DraftTokens);
            w.WriteNumber("draft_n_accepted", t.DraftAccepted);
        }
        w.WriteEndObject();
        w.WriteString("model", Path.GetFileName(model.Path));
        w.WriteEndObject();
    }
}
