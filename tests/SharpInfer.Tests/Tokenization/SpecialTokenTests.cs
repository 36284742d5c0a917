using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Tokenization;

/// <summary>Special tokens written in text, as llama.cpp's <c>tokenizer_st_partition</c> finds them.</summary>
public class SpecialTokenTests
{
    [Fact]
    public void ControlTokensOnlyWithParseSpecial()
    {
        var t = TokenizerModels.Get("qwen3-tiny");
        int imStart = t.Vocabulary.GetId("<|im_start|>");
        Assert.Equal([imStart, 872], t.Encode("<|im_start|>user"));
        var spelled = t.Encode("<|im_start|>user", parseSpecial: false);
        Assert.DoesNotContain(imStart, spelled);
        Assert.Equal("<|im_start|>user", t.Decode(spelled));
    }

    [Fact]
    public void UserDefinedTokensAlways()
    {
        var t = TokenizerModels.Get("qwen3-tiny");
        int think = t.Vocabulary.GetId("<think>");
        Assert.True(t.Vocabulary.IsUserDefined(think));
        Assert.Equal([think, 13048, t.Vocabulary.GetId("</think>")], t.Encode("<think>Hi</think>", parseSpecial: false));
    }

    [Fact]
    public void UnknownTokenTextIsParsed()
    {
        var t = TokenizerModels.Get("stories260K");
        Assert.Equal(TokenType.Unknown, t.Vocabulary.GetTokenType(0));
        Assert.Equal([1, 0], t.Encode("<unk>"));
        Assert.NotEqual([1, 0], t.Encode("<unk>", parseSpecial: false));
    }

    [Fact]
    public void LongerTokensAreSearchedFirstEvenWhenTheyStartLater()
    {
        // llama.cpp takes the special tokens longest first, each one splitting all remaining text: "x><y" (4 bytes)
        // wins over "<x>" (3 bytes) in "<x><y>" although "<x>" starts earlier
        var v = TinyVocab.Spm([("<x>", 0, TokenType.Control), ("x><y", 0, TokenType.Control)]).Vocabulary();
        var frags = new List<Fragment>();
        SpecialTokenSplitter.Split(v, "<x><y>", parseSpecial: true, frags, []);
        Assert.Equal([Fragment.Text(0, 1), new Fragment(v.GetId("x><y"), 1, 4), Fragment.Text(5, 1)], frags);
        SpecialTokenSplitter.Split(v, "a<x>b<x>", parseSpecial: true, frags, []);
        int x = v.GetId("<x>");
        Assert.Equal([Fragment.Text(0, 1), new Fragment(x, 1, 3), Fragment.Text(4, 1), new Fragment(x, 5, 3)], frags);
    }

    [Fact]
    public void Phi3SpecialTokensSwallowTheWhitespaceAfterThem()
    {
        // llama.cpp gives Phi-3's special tokens (but not <s>, <unk>, <|endoftext|>) the rstrip attribute
        var t = TinyVocab.Spm([("<|user|>", 0, TokenType.Control), ("▁hi", -1, TokenType.Normal), ("hi", -2, TokenType.Normal)])
            .With(w => w.Add("general.name", "Phi-3-mini-4k-instruct")).Tokenizer();
        int user = t.Vocabulary.GetId("<|user|>");
        Assert.True((t.Vocabulary.GetAttributes(user) & TokenAttributes.RStrip) != 0);
        Assert.True((t.Vocabulary.GetAttributes(2) & TokenAttributes.RStrip) != 0);  // </s>
        Assert.False((t.Vocabulary.GetAttributes(1) & TokenAttributes.RStrip) != 0); // <s>
        Assert.Equal(t.Encode("<|user|>hi"), t.Encode("<|user|> \n\t hi"));
        Assert.NotEqual(t.Encode("<s>hi"), t.Encode("<s> \n hi"));
    }

    [Fact]
    public void MaskTokenSwallowsTheWhitespaceBeforeIt()
    {
        var t = TinyVocab.Bpe("jina-v2-de", [], [("<mask>", TokenType.Control)]).Tokenizer();
        Assert.True((t.Vocabulary.GetAttributes(t.Vocabulary.GetId("<mask>")) & TokenAttributes.LStrip) != 0);
        Assert.Equal(t.Encode("a<mask>"), t.Encode("a \t <mask>"));
    }

    [Fact]
    public void BosIsAddedOnlyWhenTheVocabularySaysSo()
    {
        Assert.Equal([128000, 9906], TokenizerModels.Get("llama3-tiny").Encode("Hello"));
        Assert.Equal([9906], TokenizerModels.Get("llama3-tiny").Encode("Hello", addSpecial: false));
        Assert.Equal([9707], TokenizerModels.Get("qwen3-tiny").Encode("Hello"));
        Assert.Equal([1], TokenizerModels.Get("mistral-tiny").Encode(""));
        Assert.Empty(TokenizerModels.Get("mistral-tiny").Encode("", addSpecial: false));
        Assert.Empty(TokenizerModels.Get("qwen3-tiny").Encode(""));
    }

    [Fact]
    public void LoneSurrogatesEncodeAsReplacementCharacters()
    {
        var t = TokenizerModels.Get("qwen3-tiny");
        Assert.Equal(t.Encode("a\uFFFDb"), t.Encode("a\uD800b"));
        Assert.Equal(t.Encode("a\uFFFD"), t.Encode("a\uDC00"));
    }

    [Fact]
    public void QwensNormalEndOfSentenceTokenBecomesSpecial()
    {
        // llama.cpp's end-of-generation rule marks any "</s>" control, so with parse_special it is one token
        var t = TokenizerModels.Get("qwen3-tiny");
        Assert.Equal([128247], t.Encode("</s>"));
        Assert.Equal(3, t.Encode("</s>", parseSpecial: false).Length);
        Assert.Equal("", t.Decode([128247]));
    }
}
