using SharpInfer.Runtime;
using System.Runtime.InteropServices;

namespace SharpInfer.KvCache;

/// <summary>
/// The KV cache memory: one pre-allocated arena per layer slot of a block for keys and one for values, each
/// <c>[block][kvHead][slot][dim]</c>. Without <see cref="KvCacheGroups"/> a block holds every layer (one slot per
/// layer); with groups it holds the layers of one group, and a layer's block id comes from its group's table
/// (<see cref="IKvCache.GroupOf"/>). Allocated once at start-up; blocks are handed out by a <see cref="BlockAllocator"/>.
/// </summary>
internal sealed unsafe class PagedKvCache : IKvCache, IDisposable
{
    private readonly byte*[] _keys;
    private readonly byte*[] _values;
    private readonly long _keyBlockBytes, _valueBlockBytes;   // one block of one layer (all kv heads)
    private readonly long _keyHeadBytes, _valueHeadBytes;     // one kv head within a block

    public int LayerCount { get; }
    /// <summary>Which layers share a physical block (one group of all layers unless built with groups).</summary>
    public KvCacheGroups Groups { get; }
    public int BlockSize { get; }
    public int BlockCount { get; }
    public int KvHeadCount { get; }
    public int HeadDim { get; }
    public KvFormat KeyFormat { get; }
    public KvFormat ValueFormat { get; }
    /// <summary>Bytes of K and V for one token slot across the layers of one block (all layers without groups).</summary>
    public long BytesPerToken => BytesPerTokenFor(Groups.LayersPerGroup, KvHeadCount, HeadDim, KeyFormat, ValueFormat);

    public static long BytesPerTokenFor(int layers, int kvHeads, int headDim, KvFormat keys, KvFormat values) =>
        (long)layers * kvHeads * (keys.RowBytes(headDim) + values.RowBytes(headDim));
    public long TotalBytes => BytesPerToken * BlockSize * BlockCount;

    private volatile bool _nonFinite;
    public bool MayHoldNonFinite => _nonFinite;
    public void MarkNonFinite() => _nonFinite = true;

    public PagedKvCache(int layers, int kvHeads, int headDim, int blockSize, int blockCount, KvDataType type)
        : this(layers, kvHeads, headDim, blockSize, blockCount, KvFormat.Of(type), KvFormat.Of(type))
    {
    }

    public PagedKvCache(int layers, int kvHeads, int headDim, int blockSize, int blockCount, KvFormat keys, KvFormat values,
                        KvCacheGroups? groups = null)
    {
        Groups = groups ?? KvCacheGroups.Single(layers);
        if (Groups.LayerCount != layers) throw new ArgumentException($"the KV groups cover {Groups.LayerCount} layers, the cache {layers}", nameof(groups));
        int slots = Groups.LayersPerGroup;
        keys.CheckHeadDim(headDim);
        values.CheckHeadDim(headDim);
        if (blockSize <= 0 || blockCount <= 0) throw new ArgumentOutOfRangeException(nameof(blockCount), "the KV cache needs at least one block");
        LayerCount = layers;
        KvHeadCount = kvHeads;
        HeadDim = headDim;
        BlockSize = blockSize;
        BlockCount = blockCount;
        KeyFormat = keys;
        ValueFormat = values;
        _keyHeadBytes = blockSize * keys.RowBytes(headDim);
        _valueHeadBytes = blockSize * values.RowBytes(headDim);
        _keyBlockBytes = _keyHeadBytes * kvHeads;
        _valueBlockBytes = _valueHeadBytes * kvHeads;
        _keys = new byte*[slots];
        _values = new byte*[slots];
        try
        {
            for (int l = 0; l < slots; l++)
            {
                _keys[l] = Alloc(_keyBlockBytes * blockCount);
                _values[l] = Alloc(_valueBlockBytes * blockCount);
            }
        }
        catch (OutOfMemoryException)
        {
            Dispose();
            throw new SharpInferException($"cannot allocate a KV cache of {TotalBytes / (1024.0 * 1024):F0} MiB; lower the context size or --kv-cache-memory");
        }
    }


    private static byte* Alloc(long bytes)
    {
        // Pages are committed lazily by the OS as blocks are first written; no clearing needed because a slot is
        // always written before attention reads it. Huge pages where the OS allows (see HugePages).
        return HugePages.Alloc(bytes);
    }

    /// <summary>Bytes of one block across its layers, keys and values (what <see cref="ReadBlock"/> copies).</summary>
    public int BlockBytes => checked((int)(_keys.Length * (_keyBlockBytes + _valueBlockBytes)));

    public int GroupOf(int layer) => Groups.GroupOf(layer);

    /// <summary>Copies one block's keys and values of every layer into <paramref name="dst"/> (layer slot by slot, keys
    /// then values): the prefix cache's disk tier stores blocks in this form.</summary>
    public void ReadBlock(int block, Span<byte> dst)
    {
        if (dst.Length != BlockBytes) throw new ArgumentException("wrong block size", nameof(dst));
        int nk = (int)_keyBlockBytes, nv = (int)_valueBlockBytes;
        for (int l = 0; l < _keys.Length; l++)
        {
            new ReadOnlySpan<byte>(_keys[l] + block * _keyBlockBytes, nk).CopyTo(dst.Slice(l * (nk + nv), nk));
            new ReadOnlySpan<byte>(_values[l] + block * _valueBlockBytes, nv).CopyTo(dst.Slice(l * (nk + nv) + nk, nv));
        }
    }

    /// <summary>Fills one block from the form <see cref="ReadBlock"/> wrote.</summary>
    public void WriteBlock(int block, ReadOnlySpan<byte> src)
    {
        if (src.Length != BlockBytes) throw new ArgumentException("wrong block size", nameof(src));
        int nk = (int)_keyBlockBytes, nv = (int)_valueBlockBytes;
        for (int l = 0; l < _keys.Length; l++)
        {
            src.Slice(l * (nk + nv), nk).CopyTo(new Span<byte>(_keys[l] + block * _keyBlockBytes, nk));
            src.Slice(l * (nk + nv) + nk, nv).CopyTo(new Span<byte>(_values[l] + block * _valueBlockBytes, nv));
        }
    }

    /// <summary>Copies the keys and values of the first <paramref name="count"/> token slots of block
    /// <paramref name="src"/> into block <paramref name="dst"/>, in every layer slot and head (the prefix cache's reuse of
    /// a partly filled block: see <see cref="BlockManager.ClaimCachedPrefix"/>).</summary>
    public void CopyTokens(int src, int dst, int count)
    {
        if ((uint)count > (uint)BlockSize) throw new ArgumentOutOfRangeException(nameof(count));
        long kBytes = count * KeyFormat.RowBytes(HeadDim), vBytes = count * ValueFormat.RowBytes(HeadDim);
        for (int l = 0; l < _keys.Length; l++)
            for (int h = 0; h < KvHeadCount; h++)
            {
                Buffer.MemoryCopy(_keys[l] + src * _keyBlockBytes + h * _keyHeadBytes, _keys[l] + dst * _keyBlockBytes + h * _keyHeadBytes, kBytes, kBytes);
                Buffer.MemoryCopy(_values[l] + src * _valueBlockBytes + h * _valueHeadBytes, _values[l] + dst * _valueBlockBytes + h * _valueHeadBytes, vBytes, vBytes);
            }
    }

    public byte* KeyBlock(int layer, int block, int kvHead) => _keys[Groups.SlotOf(layer)] + block * _keyBlockBytes + kvHead * _keyHeadBytes;
    public byte* ValueBlock(int layer, int block, int kvHead) => _values[Groups.SlotOf(layer)] + block * _valueBlockBytes + kvHead * _valueHeadBytes;

    public void Dispose()
    {
        for (int l = 0; l < _keys.Length; l++)
        {
            if (_keys[l] != null) { HugePages.Free(_keys[l]); _keys[l] = null; }
            if (_values[l] != null) { HugePages.Free(_values[l]); _values[l] = null; }
        }
    }
}
