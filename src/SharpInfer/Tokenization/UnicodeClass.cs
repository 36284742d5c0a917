using System.Globalization;
using System.Runtime.CompilerServices;

namespace SharpInfer.Tokenization;

/// <summary>The general-category groups llama.cpp's pre-tokenizers test (<c>\p{L}</c>, <c>\p{N}</c>, <c>\p{P}</c>...).</summary>
internal enum CodepointClass : byte
{
    /// <summary>Unassigned (Cn).</summary>
    Undefined = 0,
    /// <summary>\p{N}: Nd, Nl, No.</summary>
    Number = 1,
    /// <summary>\p{L}: Lu, Ll, Lt, Lm, Lo.</summary>
    Letter = 2,
    /// <summary>\p{Z}: Zs, Zl, Zp.</summary>
    Separator = 3,
    /// <summary>\p{M}: Mn, Mc, Me.</summary>
    Mark = 4,
    /// <summary>\p{P}: Pc, Pd, Ps, Pe, Pi, Pf, Po.</summary>
    Punctuation = 5,
    /// <summary>\p{S}: Sm, Sc, Sk, So.</summary>
    Symbol = 6,
    /// <summary>\p{C} other than Cn: Cc, Cf, Cs, Co.</summary>
    Control = 7,
}

/// <summary>
/// Codepoint classification with llama.cpp's conventions: categories grouped as above (from .NET's Unicode
/// tables), and whitespace being exactly Unicode's White_Space property (U+0009–U+000D, U+0020, U+0085, U+00A0,
/// U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000) — not .NET's <c>char.IsWhiteSpace</c>, and not
/// the C# regex <c>\s</c>. Codepoints outside U+0000–U+10FFFF classify as <see cref="CodepointClass.Undefined"/>.
/// </summary>
internal static class UnicodeClass
{
    private const byte WhitespaceBit = 0x80;
    // One byte per BMP codepoint: class in the low bits, WhitespaceBit on top.
    private static readonly byte[] Bmp = BuildBmp();

    private static byte[] BuildBmp()
    {
        var t = new byte[0x10000];
        for (int cp = 0; cp < t.Length; cp++)
            t[cp] = (byte)((byte)FromCategory(CharUnicodeInfo.GetUnicodeCategory((char)cp)) | (IsWhitespaceSlow(cp) ? WhitespaceBit : 0));
        return t;
    }

    private static bool IsWhitespaceSlow(int cp) =>
        cp is >= 0x09 and <= 0x0D or 0x20 or 0x85 or 0xA0 or 0x1680 or >= 0x2000 and <= 0x200A
            or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    private static CodepointClass FromCategory(UnicodeCategory c) => c switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CodepointClass.Letter,
        UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => CodepointClass.Mark,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CodepointClass.Number,
        UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator => CodepointClass.Separator,
        UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
            or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation => CodepointClass.Punctuation,
        UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
            or UnicodeCategory.OtherSymbol => CodepointClass.Symbol,
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse => CodepointClass.Control,
        _ => CodepointClass.Undefined,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Bits(int cp)
    {
        if ((uint)cp < 0x10000) return Bmp[cp];
        if ((uint)cp > 0x10FFFF) return (byte)CodepointClass.Undefined;
        return (byte)FromCategory(CharUnicodeInfo.GetUnicodeCategory(cp)); // no supplementary codepoint is White_Space
    }

    public static CodepointClass Class(int cp) => (CodepointClass)(Bits(cp) & 0x7F);
    public static bool IsWhitespace(int cp) => (Bits(cp) & WhitespaceBit) != 0;
    public static bool IsLetter(int cp) => (Bits(cp) & 0x7F) == (byte)CodepointClass.Letter;
    public static bool IsNumber(int cp) => (Bits(cp) & 0x7F) == (byte)CodepointClass.Number;
    public static bool IsPunctuation(int cp) => (Bits(cp) & 0x7F) == (byte)CodepointClass.Punctuation;
}
