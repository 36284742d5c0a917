namespace SharpInfer.Sampling.Grammar;

/// <summary>Turns a range of Unicode code points into sequences of UTF-8 byte ranges (the classic split used by
/// regex engines), so the grammar automaton can run on bytes while character classes speak code points.</summary>
internal static class Utf8Ranges
{
    public const int MaxCodePoint = 0x10FFFF;

    /// <summary>Appends byte-range sequences (each element: lo, hi byte) that together match exactly the UTF-8
    /// encodings of the code points in [lo, hi], surrogates excluded.</summary>
    public static void Split(int lo, int hi, List<(byte Lo, byte Hi)[]> output)
    {
        if (lo > hi) return;
        if (lo <= 0xDFFF && hi >= 0xD800)
        {
            Split(lo, 0xD7FF, output);
            Split(0xE000, hi, output);
            return;
        }
        foreach (int boundary in (ReadOnlySpan<int>)[0x7F, 0x7FF, 0xFFFF])
            if (lo <= boundary && hi > boundary)
            {
                Split(lo, boundary, output);
                Split(boundary + 1, hi, output);
                return;
            }
        int n = Length(lo);
        for (int i = 1; i < n; i++)
        {
            int m = (1 << (6 * i)) - 1;
            if ((lo & ~m) != (hi & ~m))
            {
                if ((lo & m) != 0) { Split(lo, lo | m, output); Split((lo | m) + 1, hi, output); return; }
                if ((hi & m) != m) { Split(lo, (hi & ~m) - 1, output); Split(hi & ~m, hi, output); return; }
            }
        }
        Span<byte> a = stackalloc byte[4], b = stackalloc byte[4];
        Encode(lo, a);
        Encode(hi, b);
        var seq = new (byte, byte)[n];
        for (int i = 0; i < n; i++) seq[i] = (a[i], b[i]);
        output.Add(seq);
    }

    private static int Length(int cp) => cp <= 0x7F ? 1 : cp <= 0x7FF ? 2 : cp <= 0xFFFF ? 3 : 4;

    public static int Encode(int cp, Span<byte> dst)
    {
        switch (Length(cp))
        {
            case 1: dst[0] = (byte)cp; return 1;
            case 2: dst[0] = (byte)(0xC0 | (cp >> 6)); dst[1] = (byte)(0x80 | (cp & 0x3F)); return 2;
            case 3:
                dst[0] = (byte)(0xE0 | (cp >> 12)); dst[1] = (byte)(0x80 | ((cp >> 6) & 0x3F)); dst[2] = (byte)(0x80 | (cp & 0x3F));
                return 3;
            default:
                dst[0] = (byte)(0xF0 | (cp >> 18)); dst[1] = (byte)(0x80 | ((cp >> 12) & 0x3F));
                dst[2] = (byte)(0x80 | ((cp >> 6) & 0x3F)); dst[3] = (byte)(0x80 | (cp & 0x3F));
                return 4;
        }
    }
}
