namespace SharpInfer.Tokenization;

/// <summary>
/// GPT-2's reversible byte-to-unicode alphabet: printable Latin-1 bytes (0x21–0x7E, 0xA1–0xAC, 0xAE–0xFF) stand for
/// themselves, the 68 others map in order to U+0100, U+0101, ... so every byte is a visible character
/// (space is 'Ġ' U+0120, newline 'Ċ' U+010A).
/// </summary>
internal static class ByteLevel
{
    /// <summary>The character standing for each byte.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();
    /// <summary>Inverse: index by character (below <see cref="CharLimit"/>), -1 for characters that stand for no byte.</summary>
    public static readonly short[] CharToByte = BuildCharToByte();
    public const int CharLimit = 0x144;

    private static bool StandsForItself(int b) => b is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
            map[b] = StandsForItself(b) ? (char)b : (char)(256 + n++);
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var inv = new short[CharLimit];
        Array.Fill(inv, (short)-1);
        for (int b = 0; b < 256; b++) inv[ByteToChar[b]] = (short)b;
        return inv;
    }

    /// <summary>The byte a codepoint stands for, or -1.</summary>
    public static int ToByte(int codepoint) => (uint)codepoint < CharLimit ? CharToByte[codepoint] : -1;
}
