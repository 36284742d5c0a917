using System.CommandLine;
using SharpInfer.Gguf;
using SharpInfer.Models;
using SharpInfer.Tokenization;

namespace SharpInfer.Cli.Commands;

/// <summary><c>sharpinfer tokenize -m model.gguf "text"</c>: prints the token ids as one JSON array, tokenized like
/// llama.cpp (BOS per the model's metadata, special tokens in the text parsed).</summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "GGUF model file (only its vocabulary is read)" };
        var text = new Argument<string>("text") { Description = "Text to tokenize" };
        var noSpecial = new Option<bool>("--no-special") { Description = "Do not add BOS/EOS" };
        var noParse = new Option<bool>("--no-parse-special") { Description = "Treat special-token text as plain text" };
        var cmd = new Command("tokenize", "Print the token ids of a text as a JSON array") { model, text, noSpecial, noParse };
        cmd.SetAction(r =>
        {
            using var g = GgufFile.Open(ModelFileCheck.Resolve(r.GetValue(model)));
            var tok = Tokenizer.FromGguf(g);
            var ids = tok.Encode(r.GetValue(text)!, addSpecial: !r.GetValue(noSpecial), parseSpecial: !r.GetValue(noParse));
            Console.Out.WriteLine("[" + string.Join(",", ids) + "]");
            return 0;
        });
        return cmd;
    }
}
