using SharpInfer.Runtime;
using System.Runtime.InteropServices;

namespace SharpInfer.KvCache;

/// <summary>
/// The KV cache memory: one pre-allocated arena per layer for keys and one for values, each
/// <c>[block][kvHead][slot][dim]</c>. Allocated once at start-up; blocks are handed out by a
/// <see cref="BlockAllocator"/>.
/// </summary>
public sealed unsafe class PagedKvCache : IKvCache, IDisposable
{
    private readonly byte*[] _keys;
    private readonly byte*[] _values;
    private readonly long _blockBytes;      // one block of one layer (all kv heads)
    private readonly long _headBytes;       // one kv head within a block

    public int LayerCount { get; }
    public int BlockSize { get; }
    public int BlockCount { get; }
    public int KvHeadCount { get; }
    public int HeadDim { get; }
    public KvDataType DataType { get; }
    public int ElementSize => DataType == KvDataType.F32 ? 4 : 2;
    /// <summary>Bytes of K and V for one token slot across all layers.</summary>
    public long BytesPerToken => 2L * LayerCount * KvHeadCount * HeadDim * ElementSize;
    public long TotalBytes => BytesPerToken * BlockSize * BlockCount;

    private volatile bool _nonFinite;
    public bool MayHoldNonFinite => _nonFinite;
    public void MarkNonFinite() => _nonFinite = true;

    public PagedKvCache(int layers, int kvHeads, int headDim, int blockSize, int blockCount, KvDataType type)
    {
        if (blockSize <= 0 || blockCount <= 0) throw new ArgumentOutOfRangeException(nameof(blockCount), "the KV cache needs at least one block");
        LayerCount = layers;
        KvHeadCount = kvHeads;
        HeadDim = headDim;
        BlockSize = blockSize;
        BlockCount = blockCount;
        DataType = type;
        _headBytes = (long)blockSize * headDim * ElementSize;
        _blockBytes = _headBytes * kvHeads;
        _keys = new byte*[layers];
        _values = new byte*[layers];
        try
        {
            for (int l = 0; l < layers; l++)
            {
                _keys[l] = Alloc(_blockBytes * blockCount);
                _values[l] = Alloc(_blockBytes * blockCount);
            }
        }
        catch (OutOfMemoryException)
        {
            Dispose();
            throw new SharpInferException($"cannot allocate a KV cache of {TotalBytes / (1024.0 * 1024):F0} MiB; lower the context size or --kv-cache-memory");
        }
    }

    /// <summary>Number of blocks that fit in <paramref name="bytes"/> for this model shape.</summary>
    public static int BlocksForBytes(long bytes, int layers, int kvHeads, int headDim, int blockSize, KvDataType type) =>
        (int)Math.Min(int.MaxValue, bytes / (2L * layers * kvHeads * headDim * (type == KvDataType.F32 ? 4 : 2) * blockSize));

    private static byte* Alloc(long bytes)
    {
        // Pages are committed lazily by the OS as blocks are first written; no clearing needed because a slot is
        // always written before attention reads it. Huge pages where the OS allows (see HugePages).
        return HugePages.Alloc(bytes);
    }

    /// <summary>Bytes of one block across all layers, keys and values (what <see cref="ReadBlock"/> copies).</summary>
    public int BlockBytes => checked((int)(2 * LayerCount * _blockBytes));

    /// <summary>Copies one block's keys and values of every layer into <paramref name="dst"/> (layer by layer, keys
    /// then values): the prefix cache's disk tier stores blocks in this form.</summary>
    public void ReadBlock(int block, Span<byte> dst)
    {
        if (dst.Length != BlockBytes) throw new ArgumentException("wrong block size", nameof(dst));
        int n = (int)_blockBytes;
        for (int l = 0; l < LayerCount; l++)
        {
            new ReadOnlySpan<byte>(_keys[l] + block * _blockBytes, n).CopyTo(dst.Slice(2 * l * n, n));
            new ReadOnlySpan<byte>(_values[l] + block * _blockBytes, n).CopyTo(dst.Slice((2 * l + 1) * n, n));
        }
    }

    /// <summary>Fills one block from the form <see cref="ReadBlock"/> wrote.</summary>
    public void WriteBlock(int block, ReadOnlySpan<byte> src)
    {
        if (src.Length != BlockBytes) throw new ArgumentException("wrong block size", nameof(src));
        int n = (int)_blockBytes;
        for (int l = 0; l < LayerCount; l++)
        {
            src.Slice(2 * l * n, n).CopyTo(new Span<byte>(_keys[l] + block * _blockBytes, n));
            src.Slice((2 * l + 1) * n, n).CopyTo(new Span<byte>(_values[l] + block * _blockBytes, n));
        }
    }

    public byte* KeyBlock(int layer, int block, int kvHead) => _keys[layer] + block * _blockBytes + kvHead * _headBytes;
    public byte* ValueBlock(int layer, int block, int kvHead) => _values[layer] + block * _blockBytes + kvHead * _headBytes;

    public void Dispose()
    {
        for (int l = 0; l < LayerCount; l++)
        {
            if (_keys[l] != null) { HugePages.Free(_keys[l]); _keys[l] = null; }
            if (_values[l] != null) { HugePages.Free(_values[l]); _values[l] = null; }
        }
    }
}
