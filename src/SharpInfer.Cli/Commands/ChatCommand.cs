using System.CommandLine;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Models;
using SharpInfer.Sampling;

namespace SharpInfer.Cli.Commands;

/// <summary>
/// <c>sharpinfer chat -m model.gguf</c>: a multi-turn conversation on the terminal. Each input line is a user
/// message; the reply streams to stdout and ends with a newline. Prompts, the banner and per-turn statistics go to
/// stderr (prompts and banner only when stdin is a terminal), so with piped input stdout holds exactly one answer
/// per message line. <c>/reset</c> forgets the conversation, <c>/exit</c> (or end of input) quits.
/// </summary>
internal static class ChatCommand
{
    public static Command Create(CliIo io)
    {
        var common = new CommonOptions();
        var system = new Option<string?>("--system", "--system-prompt") { Description = "System message that starts the conversation (kept by /reset)" };
        var sampling = new SamplingOptions(defaultMaxTokens: -1);
        var chat = new ChatTemplateOptions();
        var cmd = new Command("chat", "Chat with a model on the terminal (one message per line; /reset, /exit)");
        common.AddTo(cmd);
        cmd.Options.Add(system);
        sampling.AddTo(cmd);
        chat.AddTo(cmd);
        cmd.SetAction(r => Run(new ChatArgs
        {
            ModelPath = common.ModelPath(r),
            Session = common.Session(r),
            Sampling = sampling.Params(r),
            SystemPrompt = r.GetValue(system),
            Variables = chat.Variables(r),
            ChatTemplate = chat.TemplateSource(r),
        }, io));
        return cmd;
    }

    public sealed class ChatArgs
    {
        public required string ModelPath { get; init; }
        public SessionOptions Session { get; init; } = new();
        public required SamplingParams Sampling { get; init; }
        public string? SystemPrompt { get; init; }
        public IReadOnlyDictionary<string, JsonNode?>? Variables { get; init; }
        /// <summary>Template source replacing the model's (null: the model's, or the fallback).</summary>
        public string? ChatTemplate { get; init; }
    }

    /// <summary>Runs the chat loop until <c>/exit</c> or the end of <see cref="CliIo.In"/>. Returns 0, or 1 when a
    /// turn failed (its error is on stderr; with piped input an empty line keeps stdout one line per message).</summary>
    public static int Run(ChatArgs a, CliIo io)
    {
        using var model = LoadProgress.LoadModel(a.ModelPath, io.Error, a.Session.Precision, a.Session.Isa);
        using var session = new InferenceSession(model, a.Session);
        var formatter = ChatFormatter.ForModel(model, a.ChatTemplate);
        var conversation = new ChatConversation(session, formatter, a.SystemPrompt, a.Variables);
        a.Sampling.Validate(model.Config.VocabSize);
        var err = io.Error;
        var output = io.Out;
        if (io.Interactive)
        {
            string template = formatter.Template.FallbackKind is { } k ? $"built-in {k} template" : a.ChatTemplate != null ? "template from file" : "the model's chat template";
            err.WriteLine($"sharpinfer chat: {Path.GetFileName(model.Path)}, {template}, context {session.ContextLength} tokens");
            err.WriteLine("Type a message and press Enter. /reset starts over, /exit quits, Ctrl+C stops a reply.");
        }

        CancellationTokenSource? turn = null;
        ConsoleCancelEventHandler? onCancel = null;
        if (io.Interactive && io.HandlesCancelKey)
        {
            onCancel = (_, e) =>
            {
                var t = Volatile.Read(ref turn);
                if (t == null) return;  // not generating: let Ctrl+C end the program
                e.Cancel = true;
                t.Cancel();
            };
            Console.CancelKeyPress += onCancel;
        }
        int exit = 0;
        try
        {
            while (true)
            {
                if (io.Interactive) { err.Write("> "); err.Flush(); }
                string? line = io.In.ReadLine();
                if (line == null)
                {
                    if (io.Interactive) err.WriteLine();
                    break;
                }
                string command = line.Trim();
                if (command.Length == 0) continue;
                if (command is "/exit" or "/quit") break;
                if (command == "/reset")
                {
                    conversation.Reset();
                    if (io.Interactive) err.WriteLine("(conversation cleared)");
                    continue;
                }

                IEnumerable<GenerationEvent> reply;
                using var cts = new CancellationTokenSource();
                try
                {
                    reply = conversation.Send(line, a.Sampling, cts.Token);
                }
                catch (SharpInferException e)
                {
                    err.WriteLine($"error: {e.Message}" + (e is ContextLengthExceededException ? " (/reset starts a new conversation)" : ""));
                    if (!io.Interactive) { output.WriteLine(); output.Flush(); }
                    exit = 1;
                    continue;
                }
                Volatile.Write(ref turn, cts);
                try
                {
                    foreach (var ev in reply)
                        if (ev.Text.Length > 0) { output.Write(ev.Text); output.Flush(); }
                }
                finally
                {
                    Volatile.Write(ref turn, null);
                }
                output.WriteLine();
                output.Flush();
                WriteStats(conversation, err);
            }
        }
        finally
        {
            if (onCancel != null) Console.CancelKeyPress -= onCancel;
        }
        return exit;
    }

    private static void WriteStats(ChatConversation c, TextWriter err)
    {
        var t = c.LastTimings;
        string finish = c.LastFinish switch
        {
            FinishReason.Length => ", stopped at the token limit",
            FinishReason.Abort => ", interrupted",
            _ => "",
        };
        err.WriteLine($"[prompt: {t.ProcessedPromptTokens} tokens processed, {t.CachedPromptTokens} cached, {t.PromptTokensPerSecond:F1} tokens/s | " +
                      $"reply: {t.GeneratedTokens} tokens, {t.GenerationTokensPerSecond:F1} tokens/s{finish}]");
        err.Flush();
    }
}
