using SharpInfer.KvCache;
using SharpInfer.Models;

namespace SharpInfer.Tensors.Attention;

/// <summary>
/// Cascade attention's plan for one attention call: decode tokens (one-token tiles) of different sequences whose
/// block tables begin with the same physical blocks — a prefix the prefix cache handed to each of them — become one
/// group, whose shared blocks are read and widened once for all its rows (FlashInfer's cascade attention, vLLM's
/// cascade attention for shared prefixes, SGLang's shared-prefix decoding). Every other tile is an item of its own.
/// Arrays grow with the batch, never per token.
/// </summary>
internal sealed class CascadePlan
{
    /// <summary>Fewest shared blocks worth a group: below it the group's bookkeeping costs about what it saves.</summary>
    public const int MinSharedBlocks = 4;

    /// <summary>Open groups a decode token is compared with, newest first (bounds the planning cost of a large batch
    /// in which nothing is shared to a few comparisons per token).</summary>
    private const int MaxCandidates = 16;

    /// <summary>Item i: its tiles are Members[First[i] .. First[i] + Count[i]), in batch order; Shared[i] blocks are
    /// walked together (0: a lone tile, attended on its own).</summary>
    public int[] First = new int[64], Count = new int[64], Shared = new int[64], Members = new int[64];

    /// <summary>Items in the plan.</summary>
    public int Total { get; private set; }

    /// <summary>Items of more than one token (cascade groups).</summary>
    public int Groups { get; private set; }

    private int[] _itemOf = new int[64], _fill = new int[64];

    /// <summary>Plans the call's <paramref name="tiles"/> tiles (first batch token and token count of each, relative to
    /// <paramref name="tokenOffset"/>). With <paramref name="enabled"/> false every tile is its own item.</summary>
    public void Plan(int tiles, int[] tileStart, int[] tileCount, ForwardBatch batch, int tokenOffset, int kvGroup, int blockSize,
                     int maxMembers, bool enabled)
    {
        Grow(tiles);
        int items = 0;
        for (int t = 0; t < tiles; t++)
        {
            int joined = -1;
            if (enabled && tileCount[t] == 1)
            {
                int bt = tokenOffset + tileStart[t];
                var table = batch.Table(batch.SequenceOf[bt], kvGroup);
                int whole = Math.Min((batch.Positions[bt] + 1) / blockSize, table.Count);   // blocks this token sees whole
                if (whole >= MinSharedBlocks && table.FirstLive == 0)
                {
                    for (int i = items - 1, seen = 0; i >= 0 && seen < MaxCandidates; i--)
                    {
                        if (Shared[i] == 0) continue;   // not a decode token's group
                        seen++;
                        if (Count[i] >= maxMembers) continue;
                        int leader = Members[First[i]];
                        var lt = batch.Table(batch.SequenceOf[tokenOffset + tileStart[leader]], kvGroup);
                        int common = CommonBlocks(lt, table, Math.Min(Shared[i], whole));
                        if (common < MinSharedBlocks) continue;
                        joined = i;
                        Shared[i] = common;
                        Count[i]++;
                        break;
                    }
                    if (joined < 0)
                    {
                        // a new group led by this token; it stays a lone tile unless another token joins
                        joined = items++;
                        First[joined] = t;      // the leader, until the members are laid out below
                        Members[t] = t;
                        Count[joined] = 1;
                        Shared[joined] = whole;
                    }
                }
            }
            if (joined < 0)
            {
                joined = items++;
                First[joined] = t;
                Members[t] = t;
                Count[joined] = 1;
                Shared[joined] = 0;
            }
            _itemOf[t] = joined;
        }
        // lay the members out item by item (a counting sort: tiles stay in batch order within an item)
        int next = 0;
        Groups = 0;
        for (int i = 0; i < items; i++)
        {
            if (Count[i] == 1) Shared[i] = 0;
            else Groups++;
            First[i] = next;
            _fill[i] = 0;
            next += Count[i];
        }
        for (int t = 0; t < tiles; t++)
        {
            int i = _itemOf[t];
            Members[First[i] + _fill[i]++] = t;
        }
        Total = items;
    }

    /// <summary>How many leading blocks (at most <paramref name="max"/>) two tables share: the same physical blocks.</summary>
    private static int CommonBlocks(BlockTable a, BlockTable b, int max)
    {
        int n = 0;
        while (n < max && a[n] == b[n]) n++;
        return n;
    }

    private void Grow(int tiles)
    {
        if (First.Length >= tiles) return;
        First = new int[tiles];
        Count = new int[tiles];
        Shared = new int[tiles];
        Members = new int[tiles];
        _itemOf = new int[tiles];
        _fill = new int[tiles];
    }
}
