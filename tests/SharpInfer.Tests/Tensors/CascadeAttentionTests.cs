using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tensors.Attention;
using SharpInfer.Tests.Tensors.Kernels;

namespace SharpInfer.Tests.Tensors;

/// <summary>
/// Cascade attention (<see cref="CascadePlan"/>): decode tokens of sequences whose block tables start with the same
/// physical blocks walk those blocks together, then each its own. Every token's output must be bit-identical to the
/// same token attended alone, whatever shares its batch: groups larger than a tile (split), sequences sharing too
/// few blocks (alone), a sequence sharing nothing, and a prefill chunk in the same batch.
/// </summary>
public unsafe class CascadeAttentionTests
{
    public static TheoryData<KvDataType, int, int, int, int> Shapes() => new()
    {
        { KvDataType.F16, 16, 16, 8, 128 },   // qwen3-0.6b's heads: F16 head pairs read in place after the shared part
        { KvDataType.F32, 8, 4, 2, 64 },
        { KvDataType.F16, 8, 6, 2, 64 },      // group 3: the widening path, odd row counts in the shared tile
        { KvDataType.F32, 16, 2, 2, 64 },     // group 1
        { KvDataType.Q8_0, 16, 4, 2, 64 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void DecodeTokensSharingPrefixBlocksGetTheBitsOfAttendingAlone(KvDataType type, int bs, int heads, int kvHeads, int D)
    {
        const int sharedBlocks = 9, sequences = 21;
        int qd = heads * D;
        // one pool of filled blocks: the shared prefix, then each sequence's own blocks
        int ownBlocks = 3, totalBlocks = sharedBlocks + sequences * ownBlocks + 4;
        var (cache, pool) = PagedAttentionTests.MakeCache(kvHeads, D, bs, totalBlocks * bs, type, seed: heads + D + bs, out _, out _);
        using var owned = cache;
        var rng = new Random(D + bs);
        var tables = new BlockTable[sequences];
        var lengths = new int[sequences];
        int nextOwn = sharedBlocks;
        for (int s = 0; s < sequences; s++)
        {
            var t = new BlockTable();
            // sequence 3 shares nothing, sequence 5 only 2 blocks (too few to group), the rest the whole prefix
            int shared = s == 3 ? 0 : s == 5 ? 2 : sharedBlocks;
            for (int b = 0; b < shared; b++) t.Add(pool[b]);
            int own = s == 3 ? sharedBlocks + 1 : 1 + s % ownBlocks;
            if (s == 3) for (int b = 0; b < own; b++) t.Add(pool[totalBlocks - 1 - b % 4]);
            else for (int b = 0; b < own; b++) t.Add(pool[nextOwn++]);
            tables[s] = t;
            // the decode token sits anywhere in the last block (its length is position + 1)
            lengths[s] = (t.Count - 1) * bs + 1 + rng.Next(bs);
        }
        var q = new float[sequences * qd];
        for (int i = 0; i < q.Length; i++) q[i] = (float)KernelHarness.Gaussian(rng);
        using var computePool = new ComputePool(2);
        foreach (var level in KernelHarness.Levels())
        {
            using var att = new PagedAttention(computePool, PagedAttentionTests.Config(heads, kvHeads, D), bs, level);
            // each decode token alone
            var alone = new float[sequences * qd];
            for (int s = 0; s < sequences; s++)
            {
                var one = new ForwardBatch(1, 1);
                int id = one.AddSequence(tables[s]);
                one.AddToken(id, 0, lengths[s] - 1, false);
                fixed (float* qp = &q[s * qd]) fixed (float* op = &alone[s * qd]) att.Run(cache, one, 0, 0, 1, qp, op);
            }
            // all of them in one batch, after a prefill chunk of another sequence (tiles and groups in one call)
            const int chunk = 6;
            var prefillTable = tables[0];
            var batch = new ForwardBatch(chunk + sequences, sequences + 1);
            int pre = batch.AddSequence(prefillTable);
            for (int i = 0; i < chunk; i++) batch.AddToken(pre, 0, sharedBlocks * bs - chunk + i, false);
            var ids = new int[sequences];
            for (int s = 0; s < sequences; s++) ids[s] = batch.AddSequence(tables[s]);
            for (int s = 0; s < sequences; s++) batch.AddToken(ids[s], 0, lengths[s] - 1, false);
            var qBatch = new float[(chunk + sequences) * qd];
            for (int i = 0; i < chunk * qd; i++) qBatch[i] = (float)KernelHarness.Gaussian(rng);
            Array.Copy(q, 0, qBatch, chunk * qd, q.Length);
            var outBatch = new float[qBatch.Length];
            fixed (float* qp = qBatch) fixed (float* op = outBatch) att.Run(cache, batch, 0, 0, chunk + sequences, qp, op);
            if (level >= IsaLevel.Avx512 && TileAttention512.Supports(D, bs) && KvRotation.KeySize(cache.KeyFormat, D) == 0
                && Environment.GetEnvironmentVariable("SHARPINFER_NO_CASCADE") != "1")
                Assert.True(att.LastCascadeGroups >= 2, $"{level}: {att.LastCascadeGroups} cascade groups (19 sharing sequences make 2)");
            for (int s = 0; s < sequences; s++)
                for (int i = 0; i < qd; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(outBatch[(chunk + s) * qd + i]) == BitConverter.SingleToInt32Bits(alone[s * qd + i]),
                        $"{level}: sequence {s} head {i / D} dim {i % D}: {outBatch[(chunk + s) * qd + i]:R} in the batch vs {alone[s * qd + i]:R} alone");
        }
    }
}
