using System.Buffers.Text;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Unicode;

namespace SharpInfer.Server.Api;

/// <summary>
/// Reads a JSON string in its raw, still escaped form inside the parsed document: whether it decodes to valid Unicode
/// and how many UTF-8 bytes it decodes to, without decoding it (a 15 MiB prompt would otherwise become a 30 MB string
/// just to be measured and refused).
/// </summary>
internal static class JsonRawString
{
    /// <summary>The bytes between the quotes of a string element.</summary>
    public static ReadOnlySpan<byte> Contents(JsonElement e)
    {
        var raw = JsonMarshal.GetRawUtf8Value(e);
        return raw.Length >= 2 && raw[0] == (byte)'"' && raw[^1] == (byte)'"' ? raw[1..^1] : raw;
    }

    /// <summary>The UTF-8 length of a string element once decoded, or null when it is not valid Unicode.</summary>
    public static long? Utf8Length(JsonElement e) => TryMeasure(Contents(e), out long n) ? n : null;

    /// <summary>Checks the raw contents of a JSON string (escapes included, quotes excluded): false when it holds invalid
    /// UTF-8 or an escaped lone surrogate; else <paramref name="utf8Length"/> is its length once unescaped.</summary>
    public static bool TryMeasure(ReadOnlySpan<byte> raw, out long utf8Length)
    {
        utf8Length = 0;
        while (true)
        {
            int esc = raw.IndexOf((byte)'\\');
            // escapes are ASCII, so cutting at one never splits a multi-byte sequence
            var plain = esc < 0 ? raw : raw[..esc];
            if (!Utf8.IsValid(plain)) return false;
            utf8Length += plain.Length;
            if (esc < 0) return true;
            raw = raw[esc..];
            if (raw.Length < 2) return false;
            if (raw[1] != (byte)'u')
            {
                utf8Length += 1;   // \" \\ \/ \b \f \n \r \t
                raw = raw[2..];
                continue;
            }
            if (!TryHex(raw, out int cp)) return false;
            raw = raw[6..];
            if (char.IsLowSurrogate((char)cp)) return false;
            if (char.IsHighSurrogate((char)cp))
            {
                if (raw.Length < 6 || raw[0] != (byte)'\\' || raw[1] != (byte)'u' || !TryHex(raw, out int low) || !char.IsLowSurrogate((char)low))
                    return false;
                raw = raw[6..];
                utf8Length += 4;
                continue;
            }
            utf8Length += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
        }
    }

    private static bool TryHex(ReadOnlySpan<byte> escape, out int value)
    {
        value = 0;
        return escape.Length >= 6 && Utf8Parser.TryParse(escape.Slice(2, 4), out value, out int used, 'X') && used == 4;
    }

    internal static string Describe(long bytes) => bytes.ToString("N0", CultureInfo.InvariantCulture);
}
