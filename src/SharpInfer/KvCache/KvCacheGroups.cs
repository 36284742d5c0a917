namespace SharpInfer.KvCache;

/// <summary>
/// How the layers of a model share KV-cache blocks (vLLM's KV-cache groups, its hybrid allocator). Layers that attend
/// the same way (full attention, or one sliding-window length) form a kind; every kind is cut into groups of the same
/// number of layers (the greatest common divisor of the kinds' sizes, so no group is padded), and a physical block
/// holds one block of token slots for the layers of one group. Each sequence has one block table per group: a
/// full-attention group's table covers every position, a sliding-window group's table lets go of the blocks no query
/// to come can see (<see cref="BlockManager.DropOutsideWindow"/>), so a long context holds only the last window of
/// those layers. All groups draw from one block pool, so a block freed by a windowed layer can serve any other.
/// <para>A model with one kind (every Llama-style model) has one group of all layers: block ids, tables and the
/// memory layout are then exactly the single-table ones. <see cref="Single"/> forces that for windowed models too
/// (llama.cpp's <c>--swa-full</c>): every position of every layer is kept.</para>
/// </summary>
internal sealed class KvCacheGroups
{
    private readonly int[] _groupOfLayer, _slotOfLayer, _window;

    public int LayerCount => _groupOfLayer.Length;
    public int GroupCount => _window.Length;
    /// <summary>Layers in each group: the layer slots of one physical block.</summary>
    public int LayersPerGroup { get; }
    /// <summary>Groups whose layers see every earlier position.</summary>
    public int FullGroupCount { get; }
    /// <summary>Groups of sliding-window layers.</summary>
    public int WindowGroupCount => GroupCount - FullGroupCount;

    public int GroupOf(int layer) => _groupOfLayer[layer];
    /// <summary>The layer's slot (0 … <see cref="LayersPerGroup"/> − 1) within its group's physical blocks.</summary>
    public int SlotOf(int layer) => _slotOfLayer[layer];
    /// <summary>The sliding window of the group's layers; 0: full attention (nothing is ever dropped).</summary>
    public int Window(int group) => _window[group];

    private KvCacheGroups(int[] groupOfLayer, int[] slotOfLayer, int[] window, int layersPerGroup)
    {
        _groupOfLayer = groupOfLayer;
        _slotOfLayer = slotOfLayer;
        _window = window;
        LayersPerGroup = layersPerGroup;
        FullGroupCount = window.Count(w => w == 0);
    }

    /// <summary>One group of every layer that keeps every position (the layout of a model without windows).</summary>
    public static KvCacheGroups Single(int layers) =>
        new(new int[layers], Enumerable.Range(0, layers).ToArray(), [0], layers);

    /// <summary>Groups for layers with these sliding windows (0: full attention). Full-attention groups come first.</summary>
    public static KvCacheGroups For(IReadOnlyList<int> windows)
    {
        if (windows.Count == 0) throw new ArgumentException("a model has at least one layer", nameof(windows));
        // kinds in a fixed order: full attention first, then windows from the shortest
        var kinds = windows.Distinct().OrderBy(w => w == 0 ? -1 : w).ToArray();
        if (kinds.Length == 1 && kinds[0] == 0) return Single(windows.Count);
        int size = 0;
        foreach (int k in kinds) size = Gcd(size, windows.Count(w => w == k));
        var groupOf = new int[windows.Count];
        var slotOf = new int[windows.Count];
        var window = new List<int>();
        foreach (int k in kinds)
        {
            int inKind = 0;
            for (int l = 0; l < windows.Count; l++)
            {
                if (windows[l] != k) continue;
                if (inKind % size == 0) window.Add(k);
                groupOf[l] = window.Count - 1;
                slotOf[l] = inKind % size;
                inKind++;
            }
        }
        return new KvCacheGroups(groupOf, slotOf, window.ToArray(), size);
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);

    /// <summary>Most blocks one sliding-window table holds while its sequence computes one token: the blocks of the
    /// window − 1 positions before it and of its own position.</summary>
    public static int WindowBlocks(int window, int blockSize) => (window - 1 + blockSize - 1) / blockSize + 1;

    /// <summary>Blocks one sequence of <paramref name="tokens"/> tokens holds across all groups while it decodes its
    /// last token (a prompt chunk of c tokens may briefly hold up to c more positions in each windowed group).</summary>
    public long BlocksFor(long tokens, int blockSize)
    {
        long all = (tokens + blockSize - 1) / blockSize, n = 0;
        for (int g = 0; g < GroupCount; g++)
            n += _window[g] == 0 ? all : Math.Min(all, WindowBlocks(_window[g], blockSize));
        return n;
    }

    /// <summary>Longest sequence that fits <paramref name="blocks"/> blocks on its own (decoding one token at a time);
    /// <see cref="long.MaxValue"/> when every layer is windowed and the windows fit.</summary>
    public long MaxTokens(int blocks, int blockSize)
    {
        if (FullGroupCount == 0 && BlocksFor((long)blocks * blockSize, blockSize) <= blocks) return long.MaxValue;
        long lo = 0, hi = blocks;   // block positions per table: BlocksFor grows with them
        while (lo < hi)
        {
            long mid = (lo + hi + 1) / 2;
            if (BlocksFor(mid * blockSize, blockSize) <= blocks) lo = mid; else hi = mid - 1;
        }
        return lo * blockSize;
    }

    /// <summary>A short description for logs and the disk tier's fingerprint, e.g. "1×1 full + 5×1 window 16".</summary>
    public string Describe() => string.Join(" + ", _window.GroupBy(w => w).Select(g =>
        $"{g.Count()}×{LayersPerGroup} {(g.Key == 0 ? "full" : $"window {g.Key}")}"));
}
