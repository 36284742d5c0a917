using System.Text;
using System.Text.RegularExpressions;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Tokenization;

/// <summary>
/// The hand-written splitters must split exactly like llama.cpp's regexes. Reference: .NET's backtracking regex
/// engine running llama.cpp's patterns with its "matches and the gaps between them" semantics, stage after stage.
/// On text without surrogates .NET's \p{L}, \p{N} and \s are the same sets as llama.cpp's classes (\s = Unicode
/// White_Space), so the two must agree on every input.
/// </summary>
public class PreTokenizerTests
{
    private const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    private const string Llama3 = @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    // llama.cpp's rewrite of o200k's regex for std::regex (case classes by ASCII range, no \p{M}); on real codepoints
    // .NET's classes give the same sets as llama.cpp's collapsed text (a non-ASCII letter is neither a-z nor A-Z)
    private const string Gpt4o = @"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Qwen2 = @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private static readonly Dictionary<PreTokenizerType, string[]> Stages = new()
    {
        [PreTokenizerType.Gpt2] = [Gpt2],
        [PreTokenizerType.Llama3] = [Llama3],
        [PreTokenizerType.Qwen2] = [Qwen2],
        [PreTokenizerType.Gpt4o] = [Gpt4o],
        [PreTokenizerType.StarCoder] = [@"\p{N}", Gpt2],
        [PreTokenizerType.Default] = [@"[\p{P}\$\+<=>\^~\|]+", Gpt2, @"\p{N}+", "[0-9][0-9][0-9]"],
    };

    private static List<string> RegexSplit(PreTokenizerType type, string text)
    {
        var pieces = new List<string> { text };
        foreach (var pattern in Stages[type])
        {
            var re = new Regex(pattern, RegexOptions.CultureInvariant);
            var next = new List<string>();
            foreach (var p in pieces)
            {
                int at = 0;
                foreach (Match m in re.Matches(p))
                {
                    if (m.Index > at) next.Add(p[at..m.Index]);
                    if (m.Length > 0) next.Add(m.Value);
                    at = m.Index + m.Length;
                }
                if (at < p.Length) next.Add(p[at..]);
            }
            pieces = next;
        }
        return pieces.Where(p => p.Length > 0).ToList();
    }

    private static List<string> OurSplit(PreTokenizerType type, string text)
    {
        var cps = new List<int>();
        for (int i = 0; i < text.Length; i += char.IsSurrogatePair(text, i) ? 2 : 1) cps.Add(char.ConvertToUtf32(text, i));
        var lens = new List<int>();
        PreTokenizer.Split(type, cps.ToArray(), lens, []);
        var result = new List<string>();
        int at = 0;
        foreach (int len in lens)
        {
            var sb = new StringBuilder();
            for (int k = at; k < at + len; k++) sb.Append(char.ConvertFromUtf32(cps[k]));
            result.Add(sb.ToString());
            at += len;
        }
        return result;
    }

    // letters, marks, numbers of every kind, apostrophes and contraction letters, punctuation, symbols, every
    // kind of whitespace, controls, format characters, unassigned and private-use codepoints
    private const string Alphabet = "aZéЖ中ʰÉǅ\u0301\u0903" + "05٣½Ⅻ" + "''''sStTrReEvVmMlLdD" + ".,!?-_([/" + "$+^|<=>~`©" +
                                    "    \t\n\n\r\r\u000B\u000C\u0085\u00A0\u3000\u2028\u2009\u001F" + "\u0001\u200D\u0378\uE000";

    public static TheoryData<Enum> Types() => [PreTokenizerType.Gpt2, PreTokenizerType.Llama3, PreTokenizerType.Qwen2, PreTokenizerType.StarCoder, PreTokenizerType.Default, PreTokenizerType.Gpt4o];

    [Theory]
    [MemberData(nameof(Types))]
    public void AgreesWithTheRegexOnRandomText(Enum typeValue)
    {
        var type = (PreTokenizerType)typeValue;
        var rng = new Random(7 + (int)type);
        for (int trial = 0; trial < 4000; trial++)
        {
            var sb = new StringBuilder();
            int len = rng.Next(0, 24);
            for (int i = 0; i < len; i++) sb.Append(Alphabet[rng.Next(Alphabet.Length)]);
            string text = sb.ToString();
            var expected = RegexSplit(type, text);
            var actual = OurSplit(type, text);
            Assert.True(expected.SequenceEqual(actual),
                $"{type} on \"{Escape(text)}\": expected [{string.Join("|", expected.Select(Escape))}] got [{string.Join("|", actual.Select(Escape))}]");
        }
    }

    private static string Escape(string s) => string.Concat(s.Select(c => c is >= ' ' and < '\u007F' ? c.ToString() : $"\\u{(int)c:X4}"));

    [Theory]
    [InlineData(PreTokenizerType.Llama3, "Hello world's 12345  x\n\n y", "Hello| world|'s| |123|45| | x|\n\n| y")]
    [InlineData(PreTokenizerType.Qwen2, "I'M 2024!!\r\n ok", "I|'M| |2|0|2|4|!!\r\n| ok")]
    [InlineData(PreTokenizerType.Gpt2, "I'M 2024!!\r\n ok", "I|'|M| 2024|!!|\r\n| ok")]
    [InlineData(PreTokenizerType.StarCoder, "abc 123 def", "abc| |1|2|3| def")]
    [InlineData(PreTokenizerType.Default, "x=12345;y", "x|=|123|45|;|y")]
    // supplementary-plane letters and emoji: by codepoint, not by UTF-16 unit
    [InlineData(PreTokenizerType.Llama3, " 𝔘𝔫𝔦 🦙🦙.cpp", " 𝔘𝔫𝔦| 🦙🦙.|cpp")]
    [InlineData(PreTokenizerType.Qwen2, "a😁b 𐐀𐐨", "a|😁b| 𐐀𐐨")] // an emoji is the optional non-letter before letters
    // o200k: case-aware words with their contraction and a leading non-letter, 3-digit groups, "/" and newlines after
    // punctuation; a non-ASCII capital counts as lower case too, so "ÉCOLE" breaks after the É
    [InlineData(PreTokenizerType.Gpt4o, "HelloWORLD isn't ABCdef 12345 a//\n\nb", "Hello|WORLD| isn't| ABCdef| |123|45| a|//\n\n|b")]
    [InlineData(PreTokenizerType.Gpt4o, "ÉCOLE école!x", "É|COLE| école|!x")]
    // a combining mark is not a letter here: it ends the word and leads the next one
    [InlineData(PreTokenizerType.Gpt4o, "ka\u0301ka", "ka|\u0301ka")]
    public void SplitsLikeLlamaCpp(Enum typeValue, string text, string expected)
    {
        var type = (PreTokenizerType)typeValue;
        Assert.Equal(expected.Split('|'), OurSplit(type, text));
    }
}
