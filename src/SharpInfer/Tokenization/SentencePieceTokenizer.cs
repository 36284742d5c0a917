using System.Text;

namespace SharpInfer.Tokenization;

/// <summary>
/// llama.cpp's SentencePiece-style tokenizer (<c>tokenizer.ggml.model = llama</c>). Each run of raw text is
/// prefixed with a space when it starts the input or follows a special token (if
/// <see cref="Vocabulary.AddSpacePrefix"/>), spaces become ▁, and the text is split into codepoints; then the
/// adjacent pair whose concatenation is a token with the highest score is merged, repeatedly (ties: the leftmost
/// pair). Each final piece is its token, or — when it is not a token — one <c>&lt;0xXX&gt;</c> byte token per UTF-8 byte.
/// </summary>
internal sealed class SentencePieceTokenizer : Tokenizer
{
    private const char Escape = '\u2581'; // ▁
    private readonly int[] _byteTokens = new int[256];

    public SentencePieceTokenizer(Vocabulary v) : base(v)
    {
        Span<char> single = stackalloc char[1];
        for (int b = 0; b < 256; b++)
        {
            int id = v.GetId($"<0x{b:X2}>");
            if (id < 0 && b < 0x80)
            {
                single[0] = (char)b;
                v.TryGetId(single, out id);
                if (id < 0) id = Vocabulary.None;
            }
            _byteTokens[b] = id;
        }
    }

    /// <summary>A codepoint that is not a token becomes byte tokens, or the unknown token per byte; with neither, bytes
    /// are dropped.</summary>
    private protected override bool EveryByteGivesATokenCore => Vocabulary.UnknownId >= 0 || _byteTokens.All(t => t >= 0);

    private protected override void EncodeFragments(string text, List<Fragment> fragments, List<int> output, EncodeScratch s, int limit)
    {
        bool prevSpecial = true;
        foreach (var f in fragments)
        {
            // a fragment is merged as a whole, so the count can only be checked between fragments (the byte bound
            // of EncodeAtMost keeps each fragment small)
            if (output.Count > limit) return;
            if (!f.IsText)
            {
                output.Add(f.TokenId);
                prevSpecial = true;
                continue;
            }
            bool prefix = Vocabulary.AddSpacePrefix && prevSpecial;
            int n = f.Length + (prefix ? 1 : 0);
            var chars = EncodeScratch.Grow(ref s.Chars, n);
            int w = 0;
            if (prefix) chars[w++] = Escape;
            foreach (char c in text.AsSpan(f.Start, f.Length)) chars[w++] = c == ' ' ? Escape : c;
            EncodeEscaped(chars.AsSpan(0, n), output, s);
            prevSpecial = false;
        }
    }

    private void EncodeEscaped(ReadOnlySpan<char> text, List<int> output, EncodeScratch s)
    {
        s.EnsureSymbols(text.Length);
        int[] start = s.SymStart, len = s.SymLength, prev = s.SymPrev, next = s.SymNext;
        int count = 0;
        for (int i = 0; i < text.Length;)
        {
            int l = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            start[count] = i;
            len[count] = l;
            prev[count] = count - 1;
            i += l;
            next[count] = i == text.Length ? -1 : count + 1;
            count++;
        }
        if (count == 0) return;

        var queue = s.SpmQueue;
        queue.Clear();
        for (int i = 1; i < count; i++) TryAddBigram(text, i - 1, i, s);

        while (queue.TryPop(out var bg))
        {
            int left = bg.Left, right = bg.Right;
            if (len[left] == 0 || len[right] == 0 || len[left] + len[right] != bg.Size) continue;
            len[left] += len[right];
            len[right] = 0;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            TryAddBigram(text, prev[left], left, s);
            TryAddBigram(text, left, next[left], s);
        }

        Span<byte> utf8 = stackalloc byte[8];
        for (int i = 0; i != -1; i = next[i])
        {
            var piece = text.Slice(start[i], len[i]);
            if (Vocabulary.TryGetId(piece, out int id)) { output.Add(id); continue; }
            // only single codepoints can fail to be tokens (merges always form tokens)
            int nb = Encoding.UTF8.GetBytes(piece, utf8);
            for (int j = 0; j < nb; j++)
            {
                int t = _byteTokens[utf8[j]];
                // llama.cpp aborts when a byte has no token; we fall back to the unknown token (or drop the byte)
                if (t < 0) t = Vocabulary.UnknownId;
                if (t >= 0) output.Add(t);
            }
        }
    }

    private void TryAddBigram(ReadOnlySpan<char> text, int left, int right, EncodeScratch s)
    {
        if (left < 0 || right < 0) return;
        int size = s.SymLength[left] + s.SymLength[right];
        if (!Vocabulary.TryGetId(text.Slice(s.SymStart[left], size), out int id)) return;
        s.SpmQueue.Push(new SpmBigram(left, right, Vocabulary.Scores[id], size));
    }
}
