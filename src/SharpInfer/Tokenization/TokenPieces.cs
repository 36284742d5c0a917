using System.Text;

namespace SharpInfer.Tokenization;

/// <summary>
/// Every token's bytes as llama.cpp's <c>token_to_piece</c> renders them with special tokens shown (its
/// <c>cache_token_to_piece</c>), stored in one blob. Control, unknown and user-defined tokens: their text.
/// Normal tokens: SentencePiece replaces ▁ by a space; byte-level BPE maps each character back to its byte
/// (a character outside GPT-2's alphabet becomes "[UNK_BYTE_0x..]" as in llama.cpp). Byte tokens (<c>&lt;0xXX&gt;</c>):
/// that byte. Unused and undefined tokens: nothing.
/// </summary>
internal sealed class TokenPieces
{
    private readonly byte[] _blob;
    private readonly int[] _offsets;

    public TokenPieces(Vocabulary v)
    {
        var blob = new Blob(v.Count * 8);
        _offsets = new int[v.Count + 1];
        for (int id = 0; id < v.Count; id++)
        {
            _offsets[id] = blob.Length;
            Render(v, id, blob);
        }
        _offsets[v.Count] = blob.Length;
        _blob = blob.ToArray();
    }

    public ReadOnlySpan<byte> this[int id] => _blob.AsSpan(_offsets[id], _offsets[id + 1] - _offsets[id]);

    /// <summary>A growable byte buffer.</summary>
    private sealed class Blob(int capacity)
    {
        private byte[] _data = new byte[Math.Max(16, capacity)];
        public int Length { get; private set; }

        public Span<byte> Reserve(int n)
        {
            if (Length + n > _data.Length) Array.Resize(ref _data, Math.Max(_data.Length * 2, Length + n));
            return _data.AsSpan(Length, n);
        }

        public void Commit(int n) => Length += n;

        public void Add(byte b)
        {
            Reserve(1)[0] = b;
            Length++;
        }

        public void Add(ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(Reserve(bytes.Length));
            Length += bytes.Length;
        }

        public void AddUtf8(ReadOnlySpan<char> text) => Commit(Encoding.UTF8.GetBytes(text, Reserve(Encoding.UTF8.GetMaxByteCount(text.Length))));

        public byte[] ToArray() => _data.AsSpan(0, Length).ToArray();
    }

    private static void Render(Vocabulary v, int id, Blob dst)
    {
        var attr = v.Attrs[id];
        string text = v.Texts[id];
        if ((attr & (TokenAttributes.Unknown | TokenAttributes.Control | TokenAttributes.UserDefined)) != 0)
        {
            dst.AddUtf8(text);
        }
        else if ((attr & TokenAttributes.Normal) != 0)
        {
            if (v.Kind == VocabularyKind.SentencePiece) dst.AddUtf8(text.Replace('\u2581', ' '));
            else ByteLevelDecode(text, dst);
        }
        else if ((attr & TokenAttributes.Byte) != 0)
        {
            dst.Add(ParseByteToken(text));
        }
    }

    /// <summary>The byte of a <c>&lt;0xXX&gt;</c> token: the hex digits at positions 3–4, parsed like C's strtol
    /// (stops at the first non-hex character; nothing parsed gives 0).</summary>
    internal static byte ParseByteToken(string text)
    {
        int value = 0;
        for (int i = 3; i < Math.Min(5, text.Length); i++)
        {
            int d = HexDigit(text[i]);
            if (d < 0) break;
            value = value * 16 + d;
        }
        return (byte)value;

        static int HexDigit(char c) => c switch
        {
            >= '0' and <= '9' => c - '0',
            >= 'a' and <= 'f' => c - 'a' + 10,
            >= 'A' and <= 'F' => c - 'A' + 10,
            _ => -1,
        };
    }

    private static void ByteLevelDecode(string text, Blob dst)
    {
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < text.Length;)
        {
            int cp = char.ConvertToUtf32(text, i);
            int n = char.IsSurrogatePair(text, i) ? 2 : 1;
            int b = ByteLevel.ToByte(cp);
            if (b >= 0)
            {
                dst.Add((byte)b);
            }
            else
            {
                // llama.cpp's marker for a character outside GPT-2's alphabet: its UTF-8 in hex, then the whole token
                dst.Add("[UNK_BYTE_0x"u8);
                int len = new Rune(cp).EncodeToUtf8(utf8);
                foreach (byte x in utf8[..len]) dst.AddUtf8(x.ToString("x2"));
                dst.AddUtf8(text);
                dst.Add((byte)']');
            }
            i += n;
        }
    }
}
