namespace SharpInfer.KvCache;

/// <summary>Element type of cached keys and values.</summary>
public enum KvDataType { F32, F16, Q8_0, Q4_0 }

/// <summary>
/// Storage for attention keys and values, organised in fixed-size blocks of token slots. A sequence's keys are
/// found through its block table: position p lives in block <c>table[p / BlockSize]</c>, slot <c>p % BlockSize</c>.
/// Within a block, each KV head's keys for all slots are contiguous (<c>[slot][dim]</c>), which is the tile the
/// attention kernel walks. The model writes and reads only through this interface; who owns which block is the
/// block manager's business.
/// </summary>
internal unsafe interface IKvCache
{
    int LayerCount { get; }
    int BlockSize { get; }
    int BlockCount { get; }
    int KvHeadCount { get; }
    int HeadDim { get; }
    /// <summary>How keys are stored (see <see cref="KvFormat"/>).</summary>
    KvFormat KeyFormat { get; }
    /// <summary>How values are stored; may differ from keys (llama.cpp's -ctk / -ctv).</summary>
    KvFormat ValueFormat { get; }

    /// <summary>Whether an infinity or NaN may have been written (F16: a value beyond ±65504). Attention widens F16
    /// blocks with a shorter conversion, exact for finite values only, until this is set.</summary>
    bool MayHoldNonFinite { get; }
    /// <summary>Called by a writer that stored an infinity or NaN; never reset for the cache's lifetime.</summary>
    void MarkNonFinite();

    /// <summary>Which of a sequence's block tables holds the layer's blocks (<see cref="KvCacheGroups"/>; 0 when the
    /// cache has one group).</summary>
    int GroupOf(int layer);

    /// <summary>Start of the keys of one KV head in one block: BlockSize rows of <see cref="KeyFormat"/>.</summary>
    byte* KeyBlock(int layer, int block, int kvHead);
    /// <summary>Start of the values of one KV head in one block, laid out like keys.</summary>
    byte* ValueBlock(int layer, int block, int kvHead);
}
