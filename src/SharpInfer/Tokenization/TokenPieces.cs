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
        var blob = new List<byte>(v.Count * 6);
        _offsets = new int[v.Count + 1];
        var tmp = new List<byte>(64);
        for (int id = 0; id < v.Count; id++)
        {
            _offsets[id] = blob.Count;
            tmp.Clear();
            Render(v, id, tmp);
            blob.AddRange(tmp);
        }
        _offsets[v.Count] = blob.Count;
        _blob = [.. blob];
    }

    public ReadOnlySpan<byte> this[int id] => _blob.AsSpan(_offsets[id], _offsets[id + 1] - _offsets[id]);

    private static void Render(Vocabulary v, int id, List<byte> dst)
    {
        var attr = v.Attrs[id];
        string text = v.Texts[id];
        if ((attr & (TokenAttributes.Unknown | TokenAttributes.Control | TokenAttributes.UserDefined)) != 0)
        {
            dst.AddRange(Encoding.UTF8.GetBytes(text));
        }
        else if ((attr & TokenAttributes.Normal) != 0)
        {
            if (v.Kind == VocabularyKind.SentencePiece) dst.AddRange(Encoding.UTF8.GetBytes(text.Replace('\u2581', ' ')));
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

    private static void ByteLevelDecode(string text, List<byte> dst)
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
                dst.AddRange("[UNK_BYTE_0x"u8);
                int len = new Rune(cp).EncodeToUtf8(utf8);
                foreach (byte x in utf8[..len]) dst.AddRange(Encoding.ASCII.GetBytes(x.ToString("x2")));
                dst.AddRange(Encoding.UTF8.GetBytes(text));
                dst.Add((byte)']');
            }
            i += n;
        }
    }
}
