namespace SharpInfer.Engine.Tools;

internal static class MarkerText
{
    /// <summary>Length of the longest suffix of <paramref name="text"/> that is a proper prefix of
    /// <paramref name="marker"/>: text that may still become the marker and must be held back.</summary>
    public static int PartialSuffix(ReadOnlySpan<char> text, string marker)
    {
        for (int n = Math.Min(text.Length, marker.Length - 1); n > 0; n--)
            if (text[^n..].SequenceEqual(marker.AsSpan(0, n))) return n;
        return 0;
    }

    /// <summary>Splits <paramref name="s"/> (the buffer's text) at the first <paramref name="marker"/>. Found: returns
    /// true, <paramref name="before"/> is the text before it and the buffer keeps only the text after it. Not found:
    /// returns false, <paramref name="before"/> is all the text that cannot be the start of the marker and the buffer
    /// keeps the rest (a possible partial marker).</summary>
    public static bool CutAt(string s, System.Text.StringBuilder buffer, string marker, out string before)
    {
        int at = s.IndexOf(marker, StringComparison.Ordinal);
        if (at >= 0)
        {
            before = s[..at];
            buffer.Clear().Append(s, at + marker.Length, s.Length - at - marker.Length);
            return true;
        }
        int keep = PartialSuffix(s, marker);
        before = s[..^keep];
        buffer.Remove(0, s.Length - keep);
        return false;
    }

    public static bool IsWhiteSpace(ReadOnlySpan<char> s)
    {
        foreach (char c in s)
            if (!char.IsWhiteSpace(c)) return false;
        return true;
    }
}
