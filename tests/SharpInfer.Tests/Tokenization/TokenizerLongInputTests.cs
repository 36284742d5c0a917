using System.Text;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Tokenization;

/// <summary>Long and pathological inputs encode correctly (they round-trip). Speed itself is measured by
/// <c>sharpinfer bench tokenize</c>, never asserted here.</summary>
public class TokenizerLongInputTests
{
    /// <summary>Realistic mixed text: prose, code, numbers, JSON, CJK, accents, emoji.</summary>
    public static string Prompt(int chars, int seed)
    {
        string[] words =
        [
            "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "tokenizer", "inference", "engine", "llama",
            "Hello,", "world!", "don't", "we'll", "it's", "naïve", "café", "Straße", "привет", "мир", "日本語", "中文文本",
            "한국어", "🦙", "🚀", "😶‍🌫️", "12345", "3.14159", "0x1F", "{\"key\": [1, 2, 3]}", "def f(x):\n    return x*2\n",
            "\t", "\n\n", "  ", "—", "…", "(parenthesised)", "#include <stdio.h>", "https://example.com/a?b=c",
        ];
        string[] syllables = ["ka", "lo", "mi", "ren", "sto", "qua", "ith", "ur", "zel", "vo", "pre", "ang", "ße", "дру", "ния", "té"];
        var rng = new Random(seed);
        var sb = new StringBuilder(chars + 64);
        while (sb.Length < chars)
        {
            if (rng.Next(2) == 0)
            {
                sb.Append(words[rng.Next(words.Length)]);
            }
            else
            {
                // a made-up word, almost never seen before: defeats the word cache
                int n = rng.Next(1, 5);
                for (int i = 0; i < n; i++) sb.Append(syllables[rng.Next(syllables.Length)]);
            }
            if (rng.Next(3) == 0) sb.Append(rng.Next(100000));
            sb.Append(rng.Next(8) == 0 ? ", " : " ");
        }
        return sb.ToString(0, chars);
    }

    [Theory]
    [InlineData("qwen3-tiny")]
    [InlineData("llama3-tiny")]
    [InlineData("mistral-tiny")]
    public void Encodes10kCharacterPromptsThatRoundTrip(string model)
    {
        var vocab = TokenizerModels.Get(model).Vocabulary;
        for (int run = 0; run < 4; run++)
        {
            var t = Tokenizer.Create(vocab); // a fresh tokenizer: empty word cache
            string text = Prompt(10_000, seed: run);
            var ids = t.Encode(text);
            Assert.True(ids.Length > 1000);
            // and it is the right encoding: it decodes back (SentencePiece: with the space that follows BOS)
            string back = t.Decode(ids, new DecodeOptions { CleanUpSpaces = false });
            Assert.Equal(vocab.Kind == VocabularyKind.SentencePiece ? " " + text : text, back);
        }
    }

    public static TheoryData<string, string> Pathological()
    {
        var d = new TheoryData<string, string>();
        foreach (var m in TokenizerModels.Names)
            foreach (var kind in new[] { "a", "space", "newline", "digits", "emoji", "ab" })
                d.Add(m, kind);
        return d;
    }

    /// <summary>50,000 repetitions of one thing: one huge word (or SentencePiece fragment) still encodes and round-trips.</summary>
    [Theory]
    [MemberData(nameof(Pathological))]
    public void LongRunsRoundTrip(string model, string kind)
    {
        string text = kind switch
        {
            "a" => new string('a', 50_000),
            "space" => new string(' ', 50_000),
            "newline" => new string('\n', 50_000),
            "digits" => new string('7', 50_000),
            "emoji" => string.Concat(Enumerable.Repeat("🦙", 25_000)),
            _ => string.Concat(Enumerable.Repeat("ab", 25_000)),
        };
        var t = TokenizerModels.Get(model);
        var ids = t.Encode(text, addSpecial: false);
        Assert.NotEmpty(ids);
        Assert.Equal(text, t.Decode(ids, new DecodeOptions { CleanUpSpaces = false }));
    }
}
