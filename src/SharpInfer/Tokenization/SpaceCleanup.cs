namespace SharpInfer.Tokenization;

/// <summary>
/// llama.cpp's clean-up of decoded text (Hugging Face's <c>clean_up_tokenization_spaces</c>), three passes over the
/// bytes, each reading the previous pass's output:
/// <list type="number">
/// <item>a space directly before <c>?</c>, <c>!</c>, <c>.</c> or <c>,</c> is removed;</item>
/// <item>" ' " becomes "'" (both spaces go; the right one, being gone, cannot start another match);</item>
/// <item>a space directly before <c>'s</c>, <c>'m</c>, <c>'re</c> or <c>'ve</c> is removed (not before 't, 'd, 'll).</item>
/// </list>
/// </summary>
internal static class SpaceCleanup
{
    /// <summary>Cleans <paramref name="text"/> in place; returns the new length.</summary>
    public static int Apply(Span<byte> text)
    {
        int n = text.Length;
        // 1: " ?" " !" " ." " ,"
        int w = 0;
        for (int r = 0; r < n; r++)
        {
            if (text[r] == ' ' && r + 1 < n && IsStop(text[r + 1])) continue;
            text[w++] = text[r];
        }
        n = w;
        // 2: " ' " -> "'"
        w = 0;
        for (int r = 0; r < n;)
        {
            if (text[r] == ' ' && r + 2 < n && text[r + 1] == '\'' && text[r + 2] == ' ')
            {
                text[w++] = (byte)'\'';
                r += 3;
                continue;
            }
            text[w++] = text[r++];
        }
        n = w;
        // 3: " 's" " 'm" " 're" " 've" -> without the space
        w = 0;
        for (int r = 0; r < n; r++)
        {
            if (text[r] == ' ' && r + 2 < n && text[r + 1] == '\'' && IsContraction(text[r + 2], r + 3 < n ? text[r + 3] : -1)) continue;
            text[w++] = text[r];
        }
        return w;
    }

    internal static bool IsStop(int b) => b is '?' or '!' or '.' or ',';

    /// <summary>Whether an apostrophe followed by <paramref name="x1"/>, <paramref name="x2"/> (-1: end of text)
    /// pulls the space before it away.</summary>
    internal static bool IsContraction(int x1, int x2) => x1 is 's' or 'm' || (x2 >= 0 && x2 == 'e' && x1 is 'r' or 'v');
}
