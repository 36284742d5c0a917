using System.Globalization;
using System.Text;

namespace SharpInfer.Gguf;

/// <summary>
/// Quotes text read from a model file (metadata keys and strings, tensor names) for an error message. The file is
/// untrusted: a name with CR/LF would forge extra log lines, escape sequences would drive the terminal, and a 100 KB
/// string would flood the log. So control and format characters are escaped (<c>\n</c>, <c>\x1B</c>, <c>\u202E</c>)
/// and the text is cut at <see cref="MaxChars"/> characters with "…" and the full length.
/// </summary>
internal static class FileText
{
    /// <summary>Characters of the original text kept in a quote.</summary>
    public const int MaxChars = 80;

    /// <summary>The text in single quotes, escaped and truncated: <c>'blk.0.attn\r\nq'</c>.</summary>
    public static string Quote(string? text) => text is null ? "(null)" : $"'{Escape(text)}'";

    /// <summary>The text escaped and truncated, without quotes.</summary>
    public static string Escape(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int keep = Math.Min(text.Length, MaxChars);
        // never cut a surrogate pair in half
        if (keep < text.Length && keep > 0 && char.IsHighSurrogate(text[keep - 1])) keep--;
        var sb = new StringBuilder(keep + 24);
        for (int i = 0; i < keep; i++)
        {
            char c = text[i];
            switch (c)
            {
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\\': sb.Append("\\\\"); break;
                case '\'': sb.Append("\\'"); break;
                default:
                    if (NeedsEscape(text, i)) sb.Append(c <= 0xFF ? $"\\x{(int)c:X2}" : $"\\u{(int)c:X4}");
                    else sb.Append(c);
                    break;
            }
        }
        if (keep < text.Length) sb.Append("…(").Append(text.Length.ToString(CultureInfo.InvariantCulture)).Append(" chars)");
        return sb.ToString();
    }

    private static bool NeedsEscape(string s, int i)
    {
        char c = s[i];
        if (char.IsSurrogate(c))
        {
            // a well-formed pair is printable; a lone half (not from a strict UTF-8 decode, but possible elsewhere) is not
            bool paired = char.IsHighSurrogate(c) ? i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])
                                                  : i > 0 && char.IsHighSurrogate(s[i - 1]);
            return !paired;
        }
        return char.GetUnicodeCategory(c) is UnicodeCategory.Control or UnicodeCategory.Format
            or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator;
    }
}
