namespace SharpInfer.Tokenization;

/// <summary>
/// BPE merges keyed by symbol ids. Every string that can be a symbol — a token, a merge's left or right part, a
/// merge's result — gets an id: its token id when it is a token, otherwise an id past the vocabulary. A merge of
/// (left, right) has the rank of its first occurrence in <c>tokenizer.ggml.merges</c> (llama.cpp splits each entry
/// at the first space after its first character).
/// </summary>
internal sealed class BpeMergeTable
{
    private readonly Dictionary<long, (int Rank, int Result)> _merges;

    /// <summary>The symbol id of each byte's GPT-2 character, or -1 when that character is nowhere in the vocabulary
    /// or merges.</summary>
    public readonly int[] ByteSymbols = new int[256];
    /// <summary>Every byte and every merge result is a vocabulary token: then no byte of a word is ever dropped by the
    /// fallback for non-token symbols, and each token of the output covers at least one byte of the input.</summary>
    public bool EverySymbolIsAToken { get; }

    public BpeMergeTable(Vocabulary v)
    {
        var merges = v.Merges ?? [];
        _merges = new Dictionary<long, (int, int)>(merges.Length, PairComparer.Instance);
        var extra = new Dictionary<string, int>(StringComparer.Ordinal);
        var extraSpan = extra.GetAlternateLookup<ReadOnlySpan<char>>();
        int nextId = v.Count;
        char[] buf = new char[256];

        int Intern(ReadOnlySpan<char> s)
        {
            if (v.TryGetId(s, out int id)) return id;
            if (extraSpan.TryGetValue(s, out id)) return id;
            extra.Add(s.ToString(), nextId);
            return nextId++;
        }

        for (int rank = 0; rank < merges.Length; rank++)
        {
            string m = merges[rank];
            int sp = m.Length < 2 ? -1 : m.IndexOf(' ', 1);
            if (sp < 0) continue; // llama.cpp records an ("", "") pair, which never matches
            var left = m.AsSpan(0, sp);
            var right = m.AsSpan(sp + 1);
            if (right.IsEmpty) continue; // no symbol is empty
            int l = Intern(left), r = Intern(right);
            int total = left.Length + right.Length;
            if (buf.Length < total) buf = new char[total * 2];
            left.CopyTo(buf);
            right.CopyTo(buf.AsSpan(left.Length));
            int result = Intern(buf.AsSpan(0, total));
            _merges.TryAdd(Key(l, r), (rank, result));
        }

        Span<char> one = stackalloc char[1];
        for (int b = 0; b < 256; b++)
        {
            one[0] = ByteLevel.ByteToChar[b];
            ByteSymbols[b] = v.TryGetId(one, out int id) ? id : extraSpan.TryGetValue(one, out id) ? id : -1;
        }
        EverySymbolIsAToken = extra.Count == 0 && ByteSymbols.All(id => (uint)id < (uint)v.Count);
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    public bool TryGet(int left, int right, out int rank, out int result)
    {
        if (left >= 0 && right >= 0 && _merges.TryGetValue(Key(left, right), out var e))
        {
            rank = e.Rank;
            result = e.Result;
            return true;
        }
        rank = result = 0;
        return false;
    }

    /// <summary>long's own hash (low ^ high word) would put all pairs with the same left ^ right in one bucket.</summary>
    private sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long x, long y) => x == y;
        public int GetHashCode(long x) => (int)(((ulong)x * 0x9E3779B97F4A7C15UL) >> 32);
    }
}
