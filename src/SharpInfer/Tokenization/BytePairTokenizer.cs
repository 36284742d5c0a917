using System.Collections.Concurrent;
using System.Text;

namespace SharpInfer.Tokenization;

/// <summary>
/// llama.cpp's byte-level BPE tokenizer (<c>tokenizer.ggml.model = gpt2</c>). Each run of raw text is split into
/// words by the vocabulary's pre-tokenizer (<see cref="PreTokenizer"/>); each word's UTF-8 bytes become GPT-2
/// characters, one symbol per byte; then the adjacent pair with the lowest merge rank is merged, repeatedly (ties:
/// leftmost). With <see cref="Vocabulary.IgnoreMerges"/> a word that is itself a token is emitted directly. A final
/// symbol that is not a token falls back to the single-character tokens of its ASCII bytes (as llama.cpp does).
/// Results are cached per word.
/// </summary>
internal sealed class BytePairTokenizer : Tokenizer
{
    private const int MaxCachedWordChars = 48;
    private const int MaxCacheEntries = 200_000;

    private readonly BpeMergeTable _merges;
    private readonly int[] _asciiTokens = new int[128];
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheSpan;
    private int _cacheCount;

    public BytePairTokenizer(Vocabulary v) : base(v)
    {
        _merges = new BpeMergeTable(v);
        _cacheSpan = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
        Span<char> one = stackalloc char[1];
        for (int b = 0; b < 128; b++)
        {
            one[0] = (char)b;
            _asciiTokens[b] = v.TryGetId(one, out int id) ? id : Vocabulary.None;
        }
    }

    private protected override bool EveryByteGivesATokenCore => _merges.EverySymbolIsAToken;

    private protected override void EncodeFragments(string text, List<Fragment> fragments, List<int> output, EncodeScratch s, int limit)
    {
        foreach (var f in fragments)
        {
            if (output.Count > limit) return;
            if (f.IsText) EncodeText(text.AsSpan(f.Start, f.Length), output, s, limit);
            else output.Add(f.TokenId);
        }
    }

    private void EncodeText(ReadOnlySpan<char> text, List<int> output, EncodeScratch s, int limit)
    {
        var cps = EncodeScratch.Grow(ref s.Codepoints, text.Length);
        var starts = EncodeScratch.Grow(ref s.CharStarts, text.Length + 1);
        int n = 0;
        for (int i = 0; i < text.Length;)
        {
            starts[n] = i;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                cps[n++] = char.ConvertToUtf32(text[i], text[i + 1]);
                i += 2;
            }
            else
            {
                cps[n++] = text[i++];
            }
        }
        starts[n] = text.Length;

        PreTokenizer.Split(Vocabulary.PreTokenizer, cps.AsSpan(0, n), s.Pieces, s.PiecesAlt);
        int c = 0;
        foreach (int len in s.Pieces)
        {
            if (output.Count > limit) return;   // words are encoded independently: the count so far only grows
            EncodeWord(text[starts[c]..starts[c + len]], output, s);
            c += len;
        }
    }

    private void EncodeWord(ReadOnlySpan<char> word, List<int> output, EncodeScratch s)
    {
        if (_cacheSpan.TryGetValue(word, out var cached))
        {
            output.AddRange(cached);
            return;
        }
        int before = output.Count;
        MergeWord(word, output, s);
        if (word.Length <= MaxCachedWordChars)
        {
            if (Interlocked.Increment(ref _cacheCount) > MaxCacheEntries)
            {
                _cache.Clear();
                Interlocked.Exchange(ref _cacheCount, 0);
            }
            _cache.TryAdd(word.ToString(), output.GetRange(before, output.Count - before).ToArray());
        }
    }

    private void MergeWord(ReadOnlySpan<char> word, List<int> output, EncodeScratch s)
    {
        var bytes = EncodeScratch.Grow(ref s.Bytes, Encoding.UTF8.GetMaxByteCount(word.Length));
        int nb = Encoding.UTF8.GetBytes(word, bytes);
        var v = Vocabulary;

        if (v.IgnoreMerges)
        {
            var chars = EncodeScratch.Grow(ref s.Chars, nb);
            for (int i = 0; i < nb; i++) chars[i] = ByteLevel.ByteToChar[bytes[i]];
            if (v.TryGetId(chars.AsSpan(0, nb), out int whole))
            {
                output.Add(whole);
                return;
            }
        }

        s.EnsureSymbols(nb);
        int[] start = s.SymStart, len = s.SymLength, prev = s.SymPrev, next = s.SymNext, sym = s.SymId;
        for (int i = 0; i < nb; i++)
        {
            start[i] = i;
            len[i] = 1;
            prev[i] = i - 1;
            next[i] = i + 1 == nb ? -1 : i + 1;
            sym[i] = _merges.ByteSymbols[bytes[i]];
        }

        var queue = s.BpeQueue;
        queue.Clear();
        for (int i = 1; i < nb; i++) TryAddBigram(i - 1, i, s);
        while (queue.TryPop(out var bg))
        {
            int left = bg.Left, right = bg.Right;
            if (len[left] == 0 || len[right] == 0 || len[left] + len[right] != bg.Size) continue;
            sym[left] = bg.Result;
            len[left] += len[right];
            len[right] = 0;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            TryAddBigram(prev[left], left, s);
            TryAddBigram(left, next[left], s);
        }

        for (int i = 0; i != -1 && nb > 0; i = next[i])
        {
            int id = sym[i];
            if ((uint)id < (uint)v.Count)
            {
                output.Add(id);
                continue;
            }
            for (int j = start[i]; j < start[i] + len[i]; j++)
            {
                byte b = bytes[j];
                if (b is >= 0x21 and <= 0x7E && _asciiTokens[b] >= 0) output.Add(_asciiTokens[b]);
            }
        }
    }

    private void TryAddBigram(int left, int right, EncodeScratch s)
    {
        if (left < 0 || right < 0) return;
        if (!_merges.TryGet(s.SymId[left], s.SymId[right], out int rank, out int result)) return;
        var bg = new BpeBigram(left, right, rank, s.SymLength[left] + s.SymLength[right], result);
        s.BpeQueue.Push(bg);
    }
}
