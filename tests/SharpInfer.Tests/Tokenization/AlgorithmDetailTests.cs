using SharpInfer.Gguf;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Tokenization;

/// <summary>Exact details of llama.cpp's algorithms, on hand-made vocabularies where the expected ids can be worked
/// out by hand.</summary>
public class AlgorithmDetailTests
{
    // ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then 259...
    private static Tokenizer Spm(float abScore, float baScore, bool byteTokens = true, Func<GgufWriter, GgufWriter>? more = null)
    {
        var v = TinyVocab.Spm([("▁", -10, TokenType.Normal), ("a", -1, TokenType.Normal), ("b", -1, TokenType.Normal),
                               ("ab", abScore, TokenType.Normal), ("ba", baScore, TokenType.Normal), ("▁a", -20, TokenType.Normal)], byteTokens);
        if (more != null) v.With(more);
        return v.Tokenizer();
    }

    [Fact]
    public void SpmMergesTheHighestScoreFirstAndTheLeftmostOnTies()
    {
        // "▁aba": "ab" and "ba" score the same, so the leftmost ("ab") merges; "▁ab" and "aba" are not tokens
        Assert.Equal([1, 259, 262, 260], Spm(-5, -5).Encode("aba"));
        // "ba" scores higher: it merges first, then "▁a" (lowest score, but still a token) merges too
        Assert.Equal([1, 264, 263], Spm(-5, -4).Encode("aba"));
    }

    [Fact]
    public void SpmFallsBackToByteTokens()
    {
        // é is not a token: its two UTF-8 bytes become <0xC3> <0xA9>
        Assert.Equal([264, 3 + 0xC3, 3 + 0xA9], Spm(-5, -5).Encode("aé", addSpecial: false));
        // without byte tokens llama.cpp aborts; we emit the unknown token per byte instead ("▁a" is id 8 here)
        var noBytes = Spm(-5, -5, byteTokens: false);
        Assert.Equal([8, 0, 0], noBytes.Encode("aé", addSpecial: false));
    }

    [Fact]
    public void SpmSpacePrefixRules()
    {
        var t = Spm(-5, -5);
        // a space is prefixed at the start and after every special token, spaces become ▁
        Assert.Equal([1, 264, 1, 264, 259, 261], t.Encode("a<s>a b"));
        Assert.Equal([1, 264, 264], t.Encode("a a"));
        // metadata can turn the prefix off
        var off = Spm(-5, -5, more: w => w.Add("tokenizer.ggml.add_space_prefix", false));
        Assert.Equal([1, 262], off.Encode("ab"));
        Assert.Equal([1, 260, 264], off.Encode("a a")); // "a▁a": the ▁ joins the second a
        Assert.Equal("ab", off.Decode(off.Encode("ab", addSpecial: false)));
    }

    private static Tokenizer Bpe(string pre, string[] merges, params string[] tokens) =>
        TinyVocab.Bpe(pre, merges, tokens.Select(t => (t, TokenType.Normal))).Tokenizer();

    private static int Id(Tokenizer t, string text) => t.Vocabulary.GetId(text);

    [Fact]
    public void BpeMergesTheLowestRankFirst()
    {
        var t = Bpe("gpt2", ["a b", "b c", "ab c"], "ab", "bc", "abc");
        Assert.Equal([Id(t, "abc")], t.Encode("abc"));
        var t2 = Bpe("gpt2", ["b c", "a b", "ab c"], "ab", "bc", "abc");
        Assert.Equal([Id(t2, "a"), Id(t2, "bc")], t2.Encode("abc"));
    }

    [Fact]
    public void BpeTiesGoToTheLeftmostPair()
    {
        var t = Bpe("gpt2", ["a a"], "aa");
        Assert.Equal([Id(t, "aa"), Id(t, "a")], t.Encode("aaa"));
        Assert.Equal([Id(t, "aa"), Id(t, "aa")], t.Encode("aaaa"));
    }

    [Fact]
    public void BpeIgnoreMergesEmitsWholeWordTokens()
    {
        // llama-bpe sets ignore_merges: a word that is a token is used as is, merges or not
        var llama = Bpe("llama-bpe", [], "xyz");
        Assert.Equal([Id(llama, "xyz")], llama.Encode("xyz", addSpecial: false));
        var gpt2 = Bpe("gpt2", [], "xyz");
        Assert.Equal([Id(gpt2, "x"), Id(gpt2, "y"), Id(gpt2, "z")], gpt2.Encode("xyz"));
    }

    [Fact]
    public void BpeSymbolsThatAreNotTokensFallBackToTheirAsciiBytes()
    {
        // the merge result "ab" is not a token: llama.cpp emits the single-character tokens of its bytes...
        var t = Bpe("gpt2", ["a b"]);
        Assert.Equal([Id(t, "a"), Id(t, "b")], t.Encode("ab"));
        // ...and only of its printable ASCII bytes: é (C3 A9 = "Ã©") disappears
        var t2 = Bpe("gpt2", ["Ã ©"]);
        Assert.Equal([Id(t2, "x")], t2.Encode("éx"));
        Assert.Empty(t2.Encode("é"));
    }

    [Fact]
    public void BpeMergeEntriesSplitAtTheFirstSpaceAfterTheFirstCharacter()
    {
        // GPT-2 characters never include a plain space, but the rule is llama.cpp's: "a b c" is ("a", "b c")
        var t = Bpe("gpt2", ["a b c", "a b"], "ab");
        Assert.Equal([Id(t, "ab")], t.Encode("ab"));
    }

    [Fact]
    public void BpeNormalTokenOutsideTheByteAlphabetDecodesToLlamaCppsMarker()
    {
        // a normal token must be spelled in GPT-2's byte alphabet; llama.cpp renders any other character like this
        var t = Bpe("gpt2", [], "中x");
        Assert.Equal("[UNK_BYTE_0xe4b8ad中x]x", t.Decode([Id(t, "中x")]));
    }
}
