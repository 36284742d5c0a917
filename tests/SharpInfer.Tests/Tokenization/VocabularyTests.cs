using SharpInfer.Gguf;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Tokenization;

public class VocabularyTests
{
    private static Vocabulary V(string model) => TokenizerModels.Get(model).Vocabulary;

    private static string[] EogTexts(Vocabulary v) => v.EndOfGenerationIds.Select(v.GetText).ToArray();

    [Fact]
    public void Stories260K()
    {
        var v = V("stories260K");
        Assert.Equal(VocabularyKind.SentencePiece, v.Kind);
        Assert.Equal(512, v.Count);
        Assert.Equal((1, 2, 0), (v.BosId, v.EosId, v.UnknownId));
        // the file stores 0xFFFFFFFF for these: absent
        Assert.Equal((Vocabulary.None, Vocabulary.None), (v.PaddingId, v.SeparatorId));
        Assert.True(v.AddBos);
        Assert.False(v.AddEos);
        Assert.True(v.AddSpacePrefix);
        Assert.Equal(TokenType.Unknown, v.GetTokenType(0));
        Assert.True(v.IsControl(1) && v.IsControl(2));
        Assert.True(v.IsByte(v.GetId("<0x0A>")));
        Assert.Equal(["</s>"], EogTexts(v));
        Assert.True(v.IsEndOfGeneration(2));
        Assert.False(v.IsEndOfGeneration(1));
        Assert.False(v.IsEndOfGeneration(-1));
        Assert.False(v.IsEndOfGeneration(100_000));
    }

    [Fact]
    public void MistralSentencePiece()
    {
        var v = V("mistral-tiny");
        Assert.Equal(VocabularyKind.SentencePiece, v.Kind);
        Assert.Equal(32000, v.Count);
        Assert.Equal((1, 2, 0), (v.BosId, v.EosId, v.UnknownId));
        Assert.Equal("▁Hello", v.GetText(22557));
        Assert.Equal(-22557f, v.GetScore(22557));
        Assert.True(v.IsNormal(22557));
        Assert.Equal(["</s>"], EogTexts(v));
        Assert.Equal(PreTokenizerType.None, v.PreTokenizer);
    }

    [Fact]
    public void Llama3()
    {
        var v = V("llama3-tiny");
        Assert.Equal(VocabularyKind.BytePair, v.Kind);
        Assert.Equal(128256, v.Count);
        Assert.Equal("llama-bpe", v.PreTokenizerName);
        Assert.Equal(PreTokenizerType.Llama3, v.PreTokenizer);
        Assert.True(v.IgnoreMerges);
        Assert.True(v.CleanSpaces);
        Assert.True(v.AddBos);
        Assert.Equal("<|begin_of_text|>", v.GetText(v.BosId));
        Assert.Equal("<|end_of_text|>", v.GetText(v.EosId));
        Assert.Equal("<|eot_id|>", v.GetText(v.EotId));
        // This is Llama 3.0's vocabulary: id 128008 is a reserved token, there is no <|eom_id|>.
        Assert.Equal(Vocabulary.None, v.GetId("<|eom_id|>"));
        Assert.Equal(Vocabulary.None, v.EomId);
        Assert.Equal(["<|end_of_text|>", "<|eot_id|>"], EogTexts(v));
        Assert.True(v.IsControl(v.GetId("<|start_header_id|>")));
        Assert.False(v.IsEndOfGeneration(v.GetId("<|start_header_id|>")));
        Assert.False(v.IsEndOfGeneration(v.GetId("<|reserved_special_token_4|>")));
    }

    [Fact]
    public void Qwen3()
    {
        var v = V("qwen3-tiny");
        Assert.Equal(VocabularyKind.BytePair, v.Kind);
        Assert.Equal(151936, v.Count);
        Assert.Equal(PreTokenizerType.Qwen2, v.PreTokenizer);
        Assert.False(v.AddBos);
        Assert.False(v.CleanSpaces);
        Assert.False(v.IgnoreMerges);
        Assert.Equal("<|endoftext|>", v.GetText(v.BosId));
        Assert.Equal("<|im_end|>", v.GetText(v.EosId));
        Assert.Equal("<|im_end|>", v.GetText(v.EotId));
        Assert.Equal("<|fim_prefix|>", v.GetText(v.FimPrefixId));
        Assert.Equal("<|fim_pad|>", v.GetText(v.FimPadId));
        // llama.cpp also ends generation on the FIM pad / repo / file-separator tokens, and on any token spelled
        // "</s>" (its EOG text list has it), which Qwen's byte-level vocabulary happens to contain as a normal token
        Assert.Equal(["</s>", "<|endoftext|>", "<|im_end|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"], EogTexts(v));
        Assert.Equal(128247, v.GetId("</s>"));
        Assert.True(v.IsControl(128247));
        Assert.True(v.IsControl(v.GetId("<|im_start|>")));
        Assert.False(v.IsEndOfGeneration(v.GetId("<|im_start|>")));
        Assert.True(v.IsUserDefined(v.GetId("<think>")));
        // the FIM tokens are stored as user-defined; llama.cpp makes them control
        Assert.True(v.IsControl(v.FimPadId));
        Assert.False(v.IsEndOfGeneration(v.GetId("Hello")));
    }

    [Fact]
    public void GptOssO200kHarmony()
    {
        var v = V("gpt-oss-tiny");
        Assert.Equal(VocabularyKind.BytePair, v.Kind);
        Assert.Equal(201088, v.Count);
        Assert.Equal("gpt-4o", v.PreTokenizerName);
        Assert.Equal(PreTokenizerType.Gpt4o, v.PreTokenizer);
        Assert.False(v.IsPreTokenizerFallback);
        Assert.False(v.AddBos);
        Assert.False(v.CleanSpaces);
        // harmony ends a turn with <|end|> but generation with <|return|> (final answer) or <|call|> (tool call)
        Assert.Equal(["<|endoftext|>", "<|return|>", "<|call|>"], EogTexts(v));
        Assert.False(v.IsEndOfGeneration(v.GetId("<|end|>")));
    }

    [Fact]
    public void EndOfGenerationFromTextsAndIds()
    {
        // eom/eot/eos by metadata or by text; a normal-typed <|eot_id|> becomes control
        var v = TinyVocab.Spm([("<|eot_id|>", 0, TokenType.Normal), ("<|eom_id|>", 0, TokenType.Control), ("<end_of_turn>", 0, TokenType.Control),
                               ("hello", -1, TokenType.Normal), ("<|im_start|>", 0, TokenType.Control)]).Vocabulary();
        int eot = v.GetId("<|eot_id|>"), eom = v.GetId("<|eom_id|>"), eoturn = v.GetId("<end_of_turn>");
        Assert.Equal(eot, v.EotId);
        Assert.Equal(eom, v.EomId);
        Assert.True(v.IsControl(eot));
        Assert.Equal(new[] { 2, eot, eom, eoturn }.Order(), v.EndOfGenerationIds);
        Assert.False(v.IsEndOfGeneration(v.GetId("<|im_start|>")));
        Assert.False(v.IsEndOfGeneration(v.GetId("hello")));
    }

    [Fact]
    public void EotIdFromMetadataIsEndOfGeneration()
    {
        var v = TinyVocab.Spm([("<|stop|>", 0, TokenType.Control), ("x", -1, TokenType.Normal)])
            .With(w => w.Add("tokenizer.ggml.eot_token_id", 259u).Add("tokenizer.ggml.eos_token_id", 260u)).Vocabulary();
        Assert.Equal(259, v.EotId);
        Assert.Equal(260, v.EosId);
        Assert.Equal([2, 259, 260], v.EndOfGenerationIds); // </s> (id 2) by its text
        Assert.Contains(v.Warnings, w => w.Contains("not in the end-of-generation set"));
    }

    [Fact]
    public void HarmonyEndIsNotEndOfGeneration()
    {
        var v = TinyVocab.Spm([("<|return|>", 0, TokenType.Control), ("<|call|>", 0, TokenType.Control), ("<|end|>", 0, TokenType.Control),
                               ("<|channel|>", 0, TokenType.Control)]).Vocabulary();
        int end = v.GetId("<|end|>");
        Assert.False(v.IsEndOfGeneration(end));
        Assert.True(v.IsUserDefined(end));
        Assert.True(v.IsEndOfGeneration(v.GetId("<|return|>")));
        Assert.True(v.IsUserDefined(v.GetId("<|channel|>")));
        // <|end|> is also the auto-detected EOT; llama.cpp adds EOT to the set before applying this exception, so
        // <|end|> stays the EOT id but does not end generation
        Assert.Equal(end, v.EotId);
    }

    [Fact]
    public void UnusedControlTokens()
    {
        var v = TinyVocab.Spm([("<unused0>", 0, TokenType.Control)]).Vocabulary();
        int id = v.GetId("<unused0>");
        Assert.True(v.IsUnused(id) && v.IsControl(id));
    }

    [Fact]
    public void BpeDefaultsAndPreTokenizerNames()
    {
        var known = TinyVocab.Bpe("smollm", [], []).Vocabulary();
        Assert.Equal(PreTokenizerType.StarCoder, known.PreTokenizer);
        Assert.False(known.CleanSpaces);
        Assert.False(known.IsPreTokenizerFallback);

        var missing = TinyVocab.Bpe(null, [], []).Vocabulary();
        Assert.Equal(PreTokenizerType.Default, missing.PreTokenizer);
        Assert.True(missing.CleanSpaces);
        // llama.cpp's BPE default BOS/EOS is id 11 when the keys are missing
        Assert.Equal((11, 11), (missing.BosId, missing.EosId));
        Assert.Contains(11, missing.EndOfGenerationIds);
        Assert.False(missing.AddBos);

        var unknown = TinyVocab.Bpe("some-new-model", [], []).Vocabulary();
        Assert.Equal(PreTokenizerType.Llama3, unknown.PreTokenizer);
        Assert.True(unknown.IsPreTokenizerFallback);
        Assert.False(unknown.CleanSpaces);
        Assert.Contains(unknown.Warnings, w => w.Contains("some-new-model"));

        Assert.Equal(PreTokenizerType.Gpt2, TinyVocab.Bpe("gpt2", [], []).Vocabulary().PreTokenizer);
        Assert.Equal(PreTokenizerType.Gpt2, TinyVocab.Bpe("gpt-2", [], []).Vocabulary().PreTokenizer);
        Assert.Equal(PreTokenizerType.Qwen2, TinyVocab.Bpe("deepseek-r1-qwen", [], []).Vocabulary().PreTokenizer);
    }

    [Fact]
    public void GetIdAndAccessorsCheckRange()
    {
        var v = V("stories260K");
        Assert.Equal(Vocabulary.None, v.GetId("no such token at all"));
        Assert.True(v.TryGetId("<s>".AsSpan(), out int bos));
        Assert.Equal(1, bos);
        Assert.Throws<ArgumentOutOfRangeException>(() => v.GetText(512));
        Assert.Throws<ArgumentOutOfRangeException>(() => v.IsControl(-1));
    }
}
