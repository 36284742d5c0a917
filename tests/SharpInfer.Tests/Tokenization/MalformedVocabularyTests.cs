using SharpInfer.Gguf;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Tokenization;

/// <summary>Broken or unsupported tokenizer metadata must give a clear SharpInferException naming the problem.</summary>
public class MalformedVocabularyTests
{
    private static GgufArray Strings(params string[] s) => new(GgufValueType.String, s);
    private static GgufArray Floats(params float[] f) => new(GgufValueType.Float32, f);
    private static GgufArray Ints(params int[] i) => new(GgufValueType.Int32, i);

    private static TinyVocab Raw(Func<GgufWriter, GgufWriter> f)
    {
        var v = new TinyVocab();
        f(v.Writer);
        return v;
    }

    private static TinyVocab Spm3(Func<GgufWriter, GgufWriter>? more = null) => Raw(w =>
    {
        w.Add("tokenizer.ggml.model", "llama").Add("tokenizer.ggml.tokens", Strings("<unk>", "<s>", "</s>"));
        return more?.Invoke(w) ?? w;
    });

    public static TheoryData<string, Func<TinyVocab>, Type, string> Cases() => new()
    {
        { "no tokenizer", () => Raw(w => w.Add("general.architecture", "llama")), typeof(UnsupportedModelException), "tokenizer.ggml.model is missing" },
        { "unknown model", () => Raw(w => w.Add("tokenizer.ggml.model", "bert").Add("tokenizer.ggml.tokens", Strings("a"))),
            typeof(UnsupportedModelException), "tokenizer 'bert' is not supported" },
        { "no vocab", () => Raw(w => w.Add("tokenizer.ggml.model", "none")), typeof(UnsupportedModelException), "no vocabulary" },
        { "tokens missing", () => Raw(w => w.Add("tokenizer.ggml.model", "llama")), typeof(UnsupportedModelException), "tokenizer.ggml.tokens is missing" },
        { "tokens not strings", () => Raw(w => w.Add("tokenizer.ggml.model", "llama").Add("tokenizer.ggml.tokens", Ints(1, 2))),
            typeof(GgufFormatException), "should be an array of strings" },
        { "tokens not an array", () => Raw(w => w.Add("tokenizer.ggml.model", "llama").Add("tokenizer.ggml.tokens", "abc")),
            typeof(GgufFormatException), "should be an array" },
        { "tokens empty", () => Raw(w => w.Add("tokenizer.ggml.model", "llama").Add("tokenizer.ggml.tokens", Strings())),
            typeof(UnsupportedModelException), "is empty" },
        { "scores too short", () => Spm3(w => w.Add("tokenizer.ggml.scores", Floats(0, 0))), typeof(GgufFormatException), "'tokenizer.ggml.scores' has 2 entries but 'tokenizer.ggml.tokens' has 3" },
        { "scores too long", () => Spm3(w => w.Add("tokenizer.ggml.scores", Floats(0, 0, 0, 0))), typeof(GgufFormatException), "has 4 entries" },
        { "scores wrong type", () => Spm3(w => w.Add("tokenizer.ggml.scores", Strings("a", "b", "c"))), typeof(GgufFormatException), "FLOAT32 or INT32" },
        { "types too short", () => Spm3(w => w.Add("tokenizer.ggml.token_type", Ints(1))), typeof(GgufFormatException), "'tokenizer.ggml.token_type' has 1 entries" },
        { "types wrong type", () => Spm3(w => w.Add("tokenizer.ggml.token_type", Floats(1, 1, 1))), typeof(GgufFormatException), "array of INT32" },
        { "duplicate token", () => Raw(w => w.Add("tokenizer.ggml.model", "llama").Add("tokenizer.ggml.tokens", Strings("<unk>", "<s>", "</s>", "x", "x"))),
            typeof(UnsupportedModelException), "duplicate token in the vocabulary: 'x' has ids 3 and 4" },
        { "bos out of range", () => Spm3(w => w.Add("tokenizer.ggml.bos_token_id", 3u)), typeof(UnsupportedModelException), "bos_token_id = 3 is outside the vocabulary of 3 tokens" },
        { "eos out of range", () => Spm3(w => w.Add("tokenizer.ggml.eos_token_id", 70000u)), typeof(UnsupportedModelException), "eos_token_id = 70000" },
        { "eot negative", () => Spm3(w => w.Add("tokenizer.ggml.eot_token_id", -5)), typeof(UnsupportedModelException), "eot_token_id = -5" },
        { "bos id not a number", () => Spm3(w => w.Add("tokenizer.ggml.bos_token_id", "one")), typeof(GgufFormatException), "should be an integer" },
        { "add_bos without bos", () => Raw(w => w.Add("tokenizer.ggml.model", "gpt2").Add("tokenizer.ggml.pre", "qwen2")
                .Add("tokenizer.ggml.tokens", Strings("a", "b")).Add("tokenizer.ggml.merges", Strings("a b")).Add("tokenizer.ggml.add_bos_token", true)),
            typeof(UnsupportedModelException), "add_bos_token is true, but there is no BOS token" },
        { "add_eos without eos", () => Raw(w => w.Add("tokenizer.ggml.model", "gpt2").Add("tokenizer.ggml.pre", "qwen2")
                .Add("tokenizer.ggml.tokens", Strings("a", "b")).Add("tokenizer.ggml.merges", Strings("a b")).Add("tokenizer.ggml.add_eos_token", true)),
            typeof(UnsupportedModelException), "add_eos_token is true, but there is no EOS token" },
        { "merges missing", () => Raw(w => w.Add("tokenizer.ggml.model", "gpt2").Add("tokenizer.ggml.tokens", Strings("a", "b"))),
            typeof(UnsupportedModelException), "cannot find the tokenizer merges" },
        { "merges not strings", () => Raw(w => w.Add("tokenizer.ggml.model", "gpt2").Add("tokenizer.ggml.tokens", Strings("a", "b")).Add("tokenizer.ggml.merges", Ints(1))),
            typeof(GgufFormatException), "'tokenizer.ggml.merges' should be an array of strings" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void RejectsWithClearError(string name, Func<TinyVocab> build, Type exceptionType, string message)
    {
        var e = Assert.Throws(exceptionType, () => build().Tokenizer());
        Assert.IsAssignableFrom<SharpInferException>(e);
        Assert.Contains(message, e.Message);
        Assert.False(string.IsNullOrEmpty(name));
    }

    [Fact]
    public void ToleratesWhatLlamaCppTolerates()
    {
        // -1 / 0xFFFFFFFF mean "none"; an out-of-range padding id is ignored with a warning; an empty token gets a
        // placeholder text; unknown token types are "undefined"
        var v = Raw(w => w.Add("tokenizer.ggml.model", "llama").Add("tokenizer.ggml.tokens", Strings("<unk>", "<s>", "</s>", ""))
            .Add("tokenizer.ggml.token_type", Ints(2, 3, 3, 99))
            .Add("tokenizer.ggml.seperator_token_id", 0xFFFFFFFFu).Add("tokenizer.ggml.padding_token_id", 77u)
            .Add("tokenizer.ggml.eot_token_id", -1)).Vocabulary();
        Assert.Equal(Vocabulary.None, v.SeparatorId);
        Assert.Equal(Vocabulary.None, v.PaddingId);
        Assert.Equal(Vocabulary.None, v.EotId);
        Assert.Equal("[EMPTY_3]", v.GetText(3));
        Assert.Equal(TokenType.Undefined, v.GetTokenType(3));
        Assert.Contains(v.Warnings, w => w.Contains("padding_token_id = 77"));
    }

    [Fact]
    public void IntegerScoresAreAccepted()
    {
        var v = Spm3(w => w.Add("tokenizer.ggml.scores", Ints(0, -1, -2))).Vocabulary();
        Assert.Equal(-2f, v.GetScore(2));
    }

    [Fact]
    public void DecodingAnUnknownIdIsAClearError()
    {
        var t = TokenizerModels.Get("stories260K");
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Decode([5, 512]));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.TokenBytes(-1));
        var s = new StreamingDetokenizer(t);
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Push(99999));
    }
}
