using SharpInfer.Gguf;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Tokenization;

/// <summary>Builds small GGUF files holding only tokenizer metadata, for tests of exact algorithm details and of
/// malformed metadata.</summary>
public sealed class TinyVocab
{
    internal readonly GgufWriter Writer = new();

    internal static TinyVocab Spm(IEnumerable<(string Text, float Score, TokenType Type)> tokens, bool byteTokens = true)
    {
        var list = new List<(string, float, TokenType)> { ("<unk>", 0, TokenType.Unknown), ("<s>", 0, TokenType.Control), ("</s>", 0, TokenType.Control) };
        if (byteTokens)
            for (int b = 0; b < 256; b++) list.Add(($"<0x{b:X2}>", 0, TokenType.Byte));
        list.AddRange(tokens);
        var v = new TinyVocab();
        v.Writer.Add("tokenizer.ggml.model", "llama")
            .Add("tokenizer.ggml.tokens", new GgufArray(GgufValueType.String, list.Select(t => t.Item1).ToArray()))
            .Add("tokenizer.ggml.scores", new GgufArray(GgufValueType.Float32, list.Select(t => t.Item2).ToArray()))
            .Add("tokenizer.ggml.token_type", new GgufArray(GgufValueType.Int32, list.Select(t => (int)t.Item3).ToArray()));
        return v;
    }

    /// <summary>A byte-level BPE vocabulary: the 256 byte characters, then <paramref name="extra"/> tokens; merges as given.</summary>
    internal static TinyVocab Bpe(string? pre, IEnumerable<string> merges, IEnumerable<(string Text, TokenType Type)> extra)
    {
        var texts = new List<string>();
        var types = new List<int>();
        for (int b = 0; b < 256; b++)
        {
            texts.Add(ByteChar(b).ToString());
            types.Add((int)TokenType.Normal);
        }
        foreach (var (t, ty) in extra)
        {
            texts.Add(t);
            types.Add((int)ty);
        }
        var v = new TinyVocab();
        v.Writer.Add("tokenizer.ggml.model", "gpt2");
        if (pre != null) v.Writer.Add("tokenizer.ggml.pre", pre);
        v.Writer.Add("tokenizer.ggml.tokens", new GgufArray(GgufValueType.String, texts.ToArray()))
            .Add("tokenizer.ggml.token_type", new GgufArray(GgufValueType.Int32, types.ToArray()))
            .Add("tokenizer.ggml.merges", new GgufArray(GgufValueType.String, merges.ToArray()));
        return v;
    }

    /// <summary>GPT-2's character for a byte.</summary>
    public static char ByteChar(int b)
    {
        if (b is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF) return (char)b;
        int n = 0;
        for (int x = 0; x < b; x++)
            if (!(x is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF)) n++;
        return (char)(256 + n);
    }

    internal TinyVocab With(Func<GgufWriter, GgufWriter> f)
    {
        f(Writer);
        return this;
    }

    internal T Open<T>(Func<GgufFile, T> use)
    {
        var path = TestPaths.NewTempFile();
        Writer.Write(path);
        try
        {
            using var g = GgufFile.Open(path);
            return use(g);
        }
        finally
        {
            File.Delete(path);
        }
    }

    internal Vocabulary Vocabulary() => Open(SharpInfer.Tokenization.Vocabulary.FromGguf);
    internal Tokenizer Tokenizer() => Open(SharpInfer.Tokenization.Tokenizer.FromGguf);
}
