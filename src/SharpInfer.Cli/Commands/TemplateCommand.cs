using System.CommandLine;
using System.Text.Json.Nodes;
using SharpInfer.Engine;
using SharpInfer.Gguf;
using SharpInfer.Models;
using SharpInfer.Tokenization;

namespace SharpInfer.Cli.Commands;

/// <summary>
/// <c>sharpinfer template -m model.gguf --messages conv.json</c>: prints the prompt the model's chat template renders
/// for a conversation, exactly (no newline added), and nothing else on stdout. Only the model's vocabulary and template
/// are read. With <c>--ids</c>, prints the prompt's token ids instead (one JSON array, chat BOS rule).
/// </summary>
internal static class TemplateCommand
{
    public static Command Create(CliIo io)
    {
        var model = new Option<string?>("--model", "-m") { Description = "GGUF model file (only its vocabulary and chat template are read)" };
        var messages = new Option<string>("--messages")
        {
            Description = "JSON file with the conversation: an array of {role, content} messages, or an object with \"messages\" (and \"tools\"), like an OpenAI request body; - reads stdin",
            Required = true,
        };
        var tools = new Option<string?>("--tools") { Description = "JSON file with an array of tool definitions" };
        var noGen = new Option<bool>("--no-generation-prompt") { Description = "Do not end the prompt with the assistant turn header" };
        var ids = new Option<bool>("--ids") { Description = "Print the prompt's token ids as a JSON array instead of its text" };
        var chat = new ChatTemplateOptions();
        var cmd = new Command("template", "Print the prompt a model's chat template renders for a conversation") { model, messages, tools, noGen, ids };
        chat.AddTo(cmd);
        cmd.SetAction(r => Run(new TemplateArgs
        {
            ModelPath = ModelFileCheck.Resolve(r.GetValue(model)),
            MessagesPath = r.GetValue(messages)!,
            ToolsPath = r.GetValue(tools),
            Variables = chat.Variables(r),
            AddGenerationPrompt = !r.GetValue(noGen),
            ChatTemplate = chat.TemplateSource(r),
            PrintIds = r.GetValue(ids),
        }, io));
        return cmd;
    }

    public sealed class TemplateArgs
    {
        public required string ModelPath { get; init; }
        public required string MessagesPath { get; init; }
        public string? ToolsPath { get; init; }
        public IReadOnlyDictionary<string, JsonNode?>? Variables { get; init; }
        public bool AddGenerationPrompt { get; init; } = true;
        /// <summary>Template source replacing the model's (null: the model's, or the fallback).</summary>
        public string? ChatTemplate { get; init; }
        public bool PrintIds { get; init; }
    }

    public static int Run(TemplateArgs a, CliIo io)
    {
        var (messages, tools) = ReadConversation(a.MessagesPath, a.ToolsPath, io.In);
        using var g = GgufFile.Open(a.ModelPath);
        var formatter = new ChatFormatter(Tokenizer.FromGguf(g), a.ChatTemplate ?? g.GetString("tokenizer.chat_template"));
        var request = new ChatFormatRequest
        {
            Messages = messages,
            Tools = tools,
            AddGenerationPrompt = a.AddGenerationPrompt,
            Variables = a.Variables,
        };
        if (a.PrintIds) io.Out.WriteLine("[" + string.Join(",", formatter.Format(request).TokenIds) + "]");
        else io.Out.Write(formatter.Render(request));
        io.Out.Flush();
        return 0;
    }

    /// <summary>Reads the conversation file (an array of messages, or an object with "messages" and optionally
    /// "tools") and the tools file; a tools file wins over tools in the conversation file.</summary>
    public static (JsonArray Messages, JsonArray? Tools) ReadConversation(string messagesPath, string? toolsPath, TextReader stdin)
    {
        var root = ChatTemplateOptions.ParseJsonFile(ChatTemplateOptions.ReadFile(messagesPath, "messages file", stdin), messagesPath, "messages file");
        JsonArray messages;
        JsonArray? tools = null;
        switch (root)
        {
            case JsonArray arr:
                messages = arr;
                break;
            case JsonObject obj when obj["messages"] is JsonArray arr:
                messages = arr;
                if (obj["tools"] is JsonArray t) tools = t;
                else if (obj["tools"] is not null)
                    throw new InvalidRequestException($"messages file '{messagesPath}': \"tools\" must be an array", "tools");
                break;
            default:
                throw new InvalidRequestException($"messages file '{messagesPath}' must hold an array of messages or an object with a \"messages\" array", "messages");
        }
        if (toolsPath != null)
        {
            var t = ChatTemplateOptions.ParseJsonFile(ChatTemplateOptions.ReadFile(toolsPath, "tools file"), toolsPath, "tools file");
            tools = t as JsonArray ?? (t is JsonObject o && o["tools"] is JsonArray inner ? inner
                : throw new InvalidRequestException($"tools file '{toolsPath}' must hold an array of tool definitions", "tools"));
        }
        return (messages, tools);
    }
}
