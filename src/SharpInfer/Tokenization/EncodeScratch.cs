namespace SharpInfer.Tokenization;

/// <summary>Reusable working memory for one <c>Encode</c> call (one cached per thread).</summary>
internal sealed class EncodeScratch
{
    [ThreadStatic] private static EncodeScratch? t_cached;

    public readonly List<Fragment> Fragments = [];
    public readonly List<Fragment> FragmentsAlt = [];
    public readonly List<int> Output = [];
    public readonly List<int> Pieces = [];
    public readonly List<int> PiecesAlt = [];

    // symbols of the merge loops
    public int[] SymStart = new int[64];
    public int[] SymLength = new int[64];
    public int[] SymPrev = new int[64];
    public int[] SymNext = new int[64];
    public int[] SymId = new int[64];

    public int[] Codepoints = new int[64];
    public int[] CharStarts = new int[65];
    public char[] Chars = new char[64];
    public byte[] Bytes = new byte[64];

    public readonly BigramHeap<SpmBigram, SpmBigram.Order> SpmQueue = new();
    public readonly BigramHeap<BpeBigram, BpeBigram.Order> BpeQueue = new();

    public static EncodeScratch Rent()
    {
        var s = t_cached;
        if (s is null) return new EncodeScratch();
        t_cached = null;
        return s;
    }

    public static void Return(EncodeScratch s)
    {
        s.SpmQueue.Clear();
        s.BpeQueue.Clear();
        // don't keep huge buffers alive forever
        const int Keep = 1 << 20;
        if (s.SymStart.Length > Keep || s.Chars.Length > Keep || s.Codepoints.Length > Keep || s.Bytes.Length > 4 * Keep) return;
        t_cached = s;
    }

    public void EnsureSymbols(int n)
    {
        if (SymStart.Length >= n) return;
        int m = Math.Max(n, SymStart.Length * 2);
        SymStart = new int[m]; SymLength = new int[m]; SymPrev = new int[m]; SymNext = new int[m]; SymId = new int[m];
    }

    public static T[] Grow<T>(ref T[] a, int n)
    {
        if (a.Length < n) a = new T[Math.Max(n, a.Length * 2)];
        return a;
    }
}

/// <summary>A candidate SentencePiece merge of symbols Left and Right, whose texts had Size chars together.</summary>
internal readonly record struct SpmBigram(int Left, int Right, float Score, int Size)
{
    /// <summary>Higher score first, then leftmost (llama.cpp's <c>llm_bigram_spm::comparator</c>).</summary>
    public readonly struct Order : IComparer<SpmBigram>
    {
        public int Compare(SpmBigram a, SpmBigram b) => a.Score > b.Score ? -1 : a.Score < b.Score ? 1 : a.Left.CompareTo(b.Left);
    }
}

/// <summary>A candidate BPE merge of symbols Left and Right (Size bytes together) into symbol Result.</summary>
internal readonly record struct BpeBigram(int Left, int Right, int Rank, int Size, int Result)
{
    /// <summary>Lower rank first, then leftmost (llama.cpp's <c>llm_bigram_bpe::comparator</c>).</summary>
    public readonly struct Order : IComparer<BpeBigram>
    {
        public int Compare(BpeBigram a, BpeBigram b) => a.Rank != b.Rank ? a.Rank.CompareTo(b.Rank) : a.Left.CompareTo(b.Left);
    }
}
