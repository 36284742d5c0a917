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

    public static bool IsWhiteSpace(ReadOnlySpan<char> s)
    {
        foreach (char c in s)
            if (!char.IsWhiteSpace(c)) return false;
        return true;
    }
}
