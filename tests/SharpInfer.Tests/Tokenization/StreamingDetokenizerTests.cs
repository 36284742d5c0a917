using SharpInfer.Gguf;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Tokenization;

public class StreamingDetokenizerTests
{
    public static readonly string[] MultiByteTexts =
    [
        "héllo wörld, ça va? Ñandú über Straße",
        "日本語のテキストと中文文本，还有한국어",
        "🦙🚀 emoji 😶‍🌫️ with ZWJ and 👍🏽 skin tone",
        "Ελληνικά и кириллица — “quotes” … ½ ∑ ∞",
        "mixed: a😁b 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \t\n end ",
        "Hello , world ! It 's ' quoted ' text ?",
    ];

    public static TheoryData<string, string> ModelTexts()
    {
        var d = new TheoryData<string, string>();
        foreach (var m in TokenizerModels.Names)
            foreach (var s in MultiByteTexts.Concat(TokenizerModels.Golden(m).Select(g => g.Text)))
                d.Add(m, s);
        return d;
    }

    private static bool IsWellFormedUtf16(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (char.IsSurrogate(s[i])) return false;
        }
        return true;
    }

    private static (List<string> Chunks, string Text) Stream(Tokenizer t, int[] ids, DecodeOptions? o = null)
    {
        var s = new StreamingDetokenizer(t, o);
        var chunks = ids.Select(s.Push).ToList();
        chunks.Add(s.Flush());
        return (chunks, string.Concat(chunks));
    }

    [Theory]
    [MemberData(nameof(ModelTexts))]
    public void StreamEqualsDecodeAndNeverSplitsACharacter(string model, string text)
    {
        var t = TokenizerModels.Get(model);
        var ids = t.Encode(text);
        foreach (var o in new[] { DecodeOptions.Default, DecodeOptions.Pieces, new DecodeOptions { RenderSpecial = true, RemoveSpecial = true } })
        {
            var (chunks, joined) = Stream(t, ids, o);
            string expected = t.Decode(ids, o);
            Assert.Equal(expected, joined);
            Assert.DoesNotContain('\uFFFD', expected); // valid input decodes to valid text...
            foreach (var c in chunks)
            {
                Assert.True(IsWellFormedUtf16(c));
                Assert.DoesNotContain('\uFFFD', c); // ...and no chunk ever holds a broken character
            }
        }
    }

    [Fact]
    public void HoldsIncompleteBytesUntilTheCharacterCompletes()
    {
        var t = TokenizerModels.Get("stories260K");
        var ids = t.Encode("🦙", addSpecial: false);
        int B(int b) => t.Vocabulary.GetId($"<0x{b:X2}>");
        // ▁ then the four UTF-8 bytes of U+1F999 as byte tokens (stories260K has no token for it)
        Assert.Equal([410, B(0xF0), B(0x9F), B(0xA6), B(0x99)], ids);
        var s = new StreamingDetokenizer(t, DecodeOptions.Pieces);
        Assert.Equal(" ", s.Push(ids[0]));
        Assert.Equal("", s.Push(ids[1]));
        Assert.Equal("", s.Push(ids[2]));
        Assert.Equal("", s.Push(ids[3]));
        Assert.Equal("🦙", s.Push(ids[4]));
        Assert.Equal("", s.Flush());
    }

    [Fact]
    public void InvalidBytesBecomeReplacementAsSoonAsTheyCannotComplete()
    {
        var t = TokenizerModels.Get("stories260K");
        int B(int b) => t.Vocabulary.GetId($"<0x{b:X2}>");
        var s = new StreamingDetokenizer(t);
        Assert.Equal("", s.Push(B(0xE4)));
        Assert.Equal("", s.Push(B(0xB8)));
        Assert.Equal("\uFFFDA", s.Push(B(0x41)));       // E4 B8 then 'A': broken, and known to be broken now
        Assert.Equal("\uFFFD", s.Push(B(0xFF)));        // never valid
        Assert.Equal("", s.Push(B(0xF0)));
        Assert.Equal("\uFFFD", s.Flush());               // unfinished at the end
        int[] all = [B(0xE4), B(0xB8), B(0x41), B(0xFF), B(0xF0)];
        Assert.Equal("\uFFFDA\uFFFD\uFFFD", t.Decode(all));
    }

    [Fact]
    public void StripsTheLeadingSpaceOfASequenceLikeDecode()
    {
        var t = TokenizerModels.Get("mistral-tiny");
        var ids = t.Encode("Hello world", addSpecial: false);
        Assert.Equal("Hello world", Stream(t, ids).Text);
        Assert.Equal(" Hello world", Stream(t, ids, DecodeOptions.Pieces).Text);
    }

    [Fact]
    public void HoldsSpacesWhileCleanUpIsUndecided()
    {
        var t = TokenizerModels.Get("llama3-tiny");
        var ids = t.Encode("Hi !", addSpecial: false);
        var s = new StreamingDetokenizer(t);
        var chunks = ids.Select(s.Push).ToList();
        chunks.Add(s.Flush());
        Assert.Equal("Hi!", string.Concat(chunks));
        Assert.DoesNotContain(chunks, c => c.EndsWith(' '));
    }

    [Fact]
    public void RemoveSpecialDropsOnlyATrailingEos()
    {
        var t = TinyVocab.Spm([("▁a", -1, TokenType.Normal), ("b", -2, TokenType.Normal)])
            .With(w => w.Add("tokenizer.ggml.add_eos_token", true)).Tokenizer();
        var o = new DecodeOptions { RenderSpecial = true, RemoveSpecial = true };
        int[] ids = [1, 259, 2, 260, 2]; // <s> ▁a </s> b </s>
        Assert.Equal(" a</s>b", t.Decode(ids, o));
        Assert.Equal(t.Decode(ids, o), Stream(t, ids, o).Text);
        Assert.Equal([1, 259, 2], t.Encode("a"));
    }

    [Fact]
    public void ResetStartsANewSequence()
    {
        var t = TokenizerModels.Get("mistral-tiny");
        var s = new StreamingDetokenizer(t);
        int B(int b) => t.Vocabulary.GetId($"<0x{b:X2}>");
        s.Push(B(0xE4));
        s.Reset();
        Assert.Equal("Hello", s.Push(22557));
    }

    [Fact]
    public void AllocatesNothingWhileHoldingBytes()
    {
        var t = TokenizerModels.Get("stories260K");
        int B(int b) => t.Vocabulary.GetId($"<0x{b:X2}>");
        var s = new StreamingDetokenizer(t, DecodeOptions.Pieces);
        for (int round = 0; round < 200; round++) // the first rounds warm up the JIT (tiered compilation)
        {
            int f0 = B(0xF0), x9f = B(0x9F), xa6 = B(0xA6), x99 = B(0x99);
            long before = GC.GetAllocatedBytesForCurrentThread();
            string a = s.Push(f0), b = s.Push(x9f), c = s.Push(xa6);
            long held = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal("", a + b + c);
            Assert.Equal("🦙", s.Push(x99));
            if (round == 199) Assert.Equal(0, held);
        }
    }

    [Fact]
    public void AllocatesNothingWhileHoldingASpaceForCleanUp()
    {
        var t = TokenizerModels.Get("llama3-tiny");
        int space = t.Vocabulary.GetId("Ġ"), hi = t.Vocabulary.GetId("Hi");
        var s = new StreamingDetokenizer(t);
        for (int round = 0; round < 200; round++)
        {
            Assert.Equal("Hi", s.Push(hi));
            long before = GC.GetAllocatedBytesForCurrentThread();
            string held = s.Push(space);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal("", held);
            Assert.Equal(" ", s.Flush());
            if (round == 199) Assert.Equal(0, allocated);
        }
    }
}
