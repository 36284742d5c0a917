namespace SharpInfer.KvCache;

/// <summary>The KV blocks of one sequence, in position order: position p is in <c>Blocks[p / blockSize]</c>.
/// A growable int array so forward batches can reference it without copying.</summary>
internal sealed class BlockTable
{
    private int[] _blocks = new int[16];
    public int Count { get; private set; }
    public ReadOnlySpan<int> Blocks => _blocks.AsSpan(0, Count);
    public int this[int i] => _blocks[i];
    internal int[] Array => _blocks;

    public void Add(int block)
    {
        if (Count == _blocks.Length) System.Array.Resize(ref _blocks, _blocks.Length * 2);
        _blocks[Count++] = block;
    }

    public int RemoveLast() => _blocks[--Count];
    public void Clear() => Count = 0;

    /// <summary>Blocks needed to hold <paramref name="tokens"/> tokens.</summary>
    public static int BlocksFor(int tokens, int blockSize) => (tokens + blockSize - 1) / blockSize;
}
