using System.Text;

namespace SharpInfer.Tokenization;

/// <summary>
/// Collects bytes and hands out only complete UTF-8 text: a trailing sequence that is a valid but unfinished
/// prefix (a lead byte and fewer continuation bytes than it announces) is held back until it completes. Bytes that
/// can no longer form a character become U+FFFD immediately (one per maximal invalid subsequence, as .NET's and
/// Unicode's decoders do), so no valid text is ever delayed by garbage. Reuses one buffer.
/// </summary>
internal sealed class Utf8Assembler
{
    private byte[] _buf = new byte[64];
    private int _len;

    public int PendingCount => _len;

    public void Push(byte b)
    {
        if (_len == _buf.Length) Array.Resize(ref _buf, _buf.Length * 2);
        _buf[_len++] = b;
    }

    public void Push(ReadOnlySpan<byte> bytes)
    {
        if (_len + bytes.Length > _buf.Length) Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + bytes.Length));
        bytes.CopyTo(_buf.AsSpan(_len));
        _len += bytes.Length;
    }

    /// <summary>The text of every complete character so far (string.Empty when none).</summary>
    public string TakeComplete() => Take(CompleteLength(_buf.AsSpan(0, _len)));

    /// <summary>Everything, an unfinished tail included (as U+FFFD).</summary>
    public string TakeAll() => Take(_len);

    public void Clear() => _len = 0;

    private string Take(int n)
    {
        if (n == 0) return string.Empty;
        string s = Encoding.UTF8.GetString(_buf, 0, n);
        _buf.AsSpan(n, _len - n).CopyTo(_buf);
        _len -= n;
        return s;
    }

    /// <summary>Length of the prefix that can be decoded now: all of it, unless it ends in an unfinished sequence.</summary>
    internal static int CompleteLength(ReadOnlySpan<byte> b)
    {
        int n = b.Length;
        int p = n - 1;
        while (p >= 0 && p > n - 4 && (b[p] & 0xC0) == 0x80) p--;
        if (p < 0) return n;
        byte lead = b[p];
        int need = lead switch { >= 0xC2 and <= 0xDF => 2, >= 0xE0 and <= 0xEF => 3, >= 0xF0 and <= 0xF4 => 4, _ => 0 };
        int have = n - p;
        if (need == 0 || have >= need) return n;
        if (have >= 2)
        {
            byte second = b[p + 1];
            bool ok = lead switch
            {
                0xE0 => second >= 0xA0,
                0xED => second <= 0x9F,
                0xF0 => second >= 0x90,
                0xF4 => second <= 0x8F,
                _ => true,
            };
            if (!ok) return n;
        }
        return p;
    }
}
