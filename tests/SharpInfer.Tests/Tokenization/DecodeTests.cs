using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Tokenization;

/// <summary>Decoding follows llama.cpp's <c>llama_detokenize</c> / <c>llama_token_to_piece</c>; decode(encode(s))
/// gives s back wherever llama.cpp's own round trip holds.</summary>
public class DecodeTests
{
    public static TheoryData<string, int, string> Rows() => GoldenTokenizeTests.Rows();

    private static bool HasSpecial(Vocabulary v, IEnumerable<int> ids) =>
        ids.Any(id => (v.GetAttributes(id) & (TokenAttributes.Control | TokenAttributes.UserDefined | TokenAttributes.Unknown)) != 0);

    /// <summary>Texts HF-style clean-up changes (a space before ?!., or around an apostrophe).</summary>
    private static bool CleanupApplies(string s) =>
        new[] { " ?", " !", " .", " ,", " ' ", " 's", " 'm", " 're", " 've" }.Any(p => s.Contains(p, StringComparison.Ordinal));

    [Theory]
    [MemberData(nameof(Rows))]
    public void RoundTrips(string model, int line, string shortText)
    {
        var t = TokenizerModels.Get(model);
        var v = t.Vocabulary;
        string s = TokenizerModels.Golden(model)[line].Text;
        Assert.StartsWith(shortText.TrimEnd('…'), s);
        var withSpecial = t.Encode(s);
        var plain = t.Encode(s, addSpecial: false);

        if (v.Kind == VocabularyKind.SentencePiece)
        {
            if (HasSpecial(v, plain)) return; // a space is added after every special token: no round trip (see SpmSpecialTokens)
            // the leading space added on encoding is removed on decoding...
            Assert.Equal(s, t.Decode(plain));
            // ...but a BOS in front takes that removal (llama.cpp strips leading spaces of the first token only), also
            // when BOS is dropped with remove_special; a vocabulary without the space prefix (Gemma 3) adds and
            // removes none
            string lead = v.AddSpacePrefix ? " " : "";
            Assert.Equal(lead + s, t.Decode(withSpecial));
            Assert.Equal(lead + s, t.Decode(withSpecial, new DecodeOptions { RemoveSpecial = true }));
        }
        else
        {
            string bos = v.AddBos ? v.GetText(v.BosId) : "";
            // byte-level BPE is lossless
            Assert.Equal(bos + s, t.Decode(withSpecial, new DecodeOptions { RenderSpecial = true, CleanUpSpaces = false }));
            Assert.Equal(s, t.Decode(withSpecial, new DecodeOptions { RenderSpecial = true, CleanUpSpaces = false, RemoveSpecial = true }));
            if (!v.CleanSpaces || !CleanupApplies(s))
            {
                Assert.Equal(bos + s, t.Decode(withSpecial, renderSpecial: true));
                if (!HasSpecial(v, plain)) Assert.Equal(s, t.Decode(withSpecial));
            }
        }
    }

    [Fact]
    public void SpmSpecialTokens()
    {
        var t = TokenizerModels.Get("mistral-tiny");
        var ids = t.Encode("<s>[INST] Translate to French: good morning [/INST]");
        // special tokens render only on request; the text after a special token got a space prefix
        Assert.Equal(" [INST] Translate to French: good morning [/INST]", t.Decode(ids));
        Assert.Equal("<s><s> [INST] Translate to French: good morning [/INST]", t.Decode(ids, renderSpecial: true));
    }

    [Fact]
    public void Llama3CleansUpSpacesLikeLlamaCpp()
    {
        var t = TokenizerModels.Get("llama3-tiny");
        Assert.Equal("Hello, world! How are you? I'm fine.", t.Decode(t.Encode("Hello , world ! How are you ? I 'm fine .")));
        Assert.Equal("don 't, we'll 'll, they're, we've, it's", t.Decode(t.Encode("don 't , we'll 'll , they 're , we 've , it 's")));
        Assert.Equal("a'b", t.Decode(t.Encode("a ' b")));
        // Qwen's vocabulary does not clean up
        var q = TokenizerModels.Get("qwen3-tiny");
        Assert.Equal("Hello , world !", q.Decode(q.Encode("Hello , world !")));
    }

    [Fact]
    public void PiecesOfEachKind()
    {
        var spm = TokenizerModels.Get("mistral-tiny");
        Assert.Equal(" Hello"u8.ToArray(), spm.TokenBytes(22557));           // ▁ becomes a space
        Assert.Equal(new byte[] { 0xF0 }, spm.TokenBytes(spm.Vocabulary.GetId("<0xF0>"))); // byte token
        Assert.Equal("</s>"u8.ToArray(), spm.TokenBytes(2));
        Assert.Empty(spm.TokenBytes(2, renderSpecial: false));

        var q = TokenizerModels.Get("qwen3-tiny");
        var v = q.Vocabulary;
        Assert.Equal(" Hello"u8.ToArray(), q.TokenBytes(v.GetId("ĠHello"))); // GPT-2 characters back to bytes
        Assert.Equal("\n\n"u8.ToArray(), q.TokenBytes(v.GetId("ĊĊ")));
        Assert.Equal(new byte[] { 0xF0, 0x9F }, q.TokenBytes(v.GetId("ðŁ")));  // half of an emoji
        Assert.Equal("<|im_start|>"u8.ToArray(), q.TokenBytes(v.GetId("<|im_start|>")));
        Assert.Empty(q.TokenBytes(v.GetId("<|im_start|>"), renderSpecial: false));
        // user-defined tokens always render
        Assert.Equal("<think>"u8.ToArray(), q.TokenBytes(v.GetId("<think>"), renderSpecial: false));
    }

    [Fact]
    public void TokenToPieceLikeLlamaCpp()
    {
        var t = TokenizerModels.Get("mistral-tiny");
        Span<byte> buf = stackalloc byte[16];
        Assert.Equal(6, t.TokenToPiece(22557, buf));
        Assert.Equal(" Hello"u8.ToArray(), buf[..6].ToArray());
        Assert.Equal(5, t.TokenToPiece(22557, buf, lstrip: 1));
        Assert.Equal("Hello"u8.ToArray(), buf[..5].ToArray());
        Assert.Equal(-6, t.TokenToPiece(22557, buf[..3]));
        Assert.Equal(0, t.TokenToPiece(1, buf));
        Assert.Equal(3, t.TokenToPiece(1, buf, renderSpecial: true));
    }

    [Fact]
    public void InvalidUtf8BecomesReplacementCharacters()
    {
        var t = TokenizerModels.Get("stories260K");
        int B(int b) => t.Vocabulary.GetId($"<0x{b:X2}>");
        Assert.Equal("\uFFFDA", t.Decode([B(0xE4), B(0x41)]));
        Assert.Equal("\uFFFD", t.Decode([B(0xF0), B(0x9F)]));
        Assert.Equal("é", t.Decode([B(0xC3), B(0xA9)]));
    }

    [Fact]
    public void EncodeIntoCallerBuffers()
    {
        var t = TokenizerModels.Get("llama3-tiny");
        var expected = t.Encode("Hello world");
        var list = new List<int> { 42 };
        t.Encode("Hello world", list);
        Assert.Equal([42, .. expected], list);
        Span<int> small = stackalloc int[2];
        Assert.Equal(-expected.Length, t.Encode("Hello world", small));
        Span<int> big = stackalloc int[8];
        Assert.Equal(expected.Length, t.Encode("Hello world", big));
        Assert.Equal(expected, big[..expected.Length].ToArray());
    }
}
