using SharpInfer.KvCache;
using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tensors.Attention;
using SharpInfer.Tests.Tensors.Kernels;

namespace SharpInfer.Tests.Tensors;

/// <summary>
/// Prefill query tiles (<see cref="TileAttention512"/> on AVX-512, the AVX2 path's tile on AVX2, taken by
/// <see cref="PagedAttention.Run"/> for runs of consecutive tokens of one sequence): every token's output is bit-identical to the same token attended
/// alone (the per-token path, already checked against a naive softmax), whatever the tile it lands in — prompts cut
/// into ragged chunks so tiles start and end anywhere relative to the blocks, GQA groups whose row count is not a
/// multiple of the 4-row kernels, head sizes 64 and 128, block sizes 4 to 32, every KV format, every instruction path.
/// </summary>
public unsafe class TileAttentionTests
{
    public static TheoryData<KvDataType, int, int, int, int, int> Shapes() => new()
    {
        { KvDataType.F16, 16, 16, 8, 128, 100 },   // qwen3-0.6b's heads: group 2, 16 rows a full tile
        { KvDataType.F32, 16, 4, 2, 64, 70 },
        { KvDataType.Q8_0, 16, 6, 2, 64, 53 },     // group 3: odd row counts
        { KvDataType.Q4_0, 8, 7, 1, 64, 45 },      // group 7
        { KvDataType.F16, 4, 2, 2, 128, 37 },      // group 1, blocks of 4
        { KvDataType.F16, 32, 8, 2, 64, 75 },      // group 4, blocks of 32
        { KvDataType.Q8_0, 32, 2, 1, 128, 90 },
        { KvDataType.Q4_0, 16, 4, 2, 128, 33 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TiledPrefillGivesEachTokenTheBitsOfAttendingItAlone(KvDataType type, int bs, int heads, int kvHeads, int D, int len)
    {
        int qd = heads * D;
        var (cache, table) = PagedAttentionTests.MakeCache(kvHeads, D, bs, len, type, seed: bs + heads + D + len, out _, out _);
        using var owned = cache;
        var rng = new Random(len);
        var q = new float[len * qd];
        for (int i = 0; i < q.Length; i++) q[i] = (float)KernelHarness.Gaussian(rng) * 2;
        using var pool = new ComputePool(2);
        foreach (var level in KernelHarness.Levels())
        {
            using var att = new PagedAttention(pool, PagedAttentionTests.Config(heads, kvHeads, D), bs, level);
            var alone = PagedAttentionTests.RunInChunks(att, cache, table, q, len, qd, Enumerable.Repeat(1, len).ToArray());
            foreach (var chunks in new[] { new[] { len }, new[] { 5, 8, 3, 11, 1, 2, 9 }, new[] { bs - 1, 2 * bs + 1 } })
            {
                var tiled = PagedAttentionTests.RunInChunks(att, cache, table, q, len, qd, chunks);
                for (int i = 0; i < tiled.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(tiled[i]) == BitConverter.SingleToInt32Bits(alone[i]),
                        $"{level} chunks [{string.Join(",", chunks)}]: token {i / qd} head {i % qd / D} dim {i % D}: {tiled[i]:R} vs alone {alone[i]:R}");
            }
        }
    }

    [Fact]
    public void TilesCoverBlocksSeenWholeAndInPartFromAnyStartPosition()
    {
        // the kernel called directly: every tile length 1..MaxTokens starting at every offset inside a block, against
        // the per-token kernel for each of its tokens
        if (!TileAttention512.Supports(64, 8)) { Assert.False(System.Runtime.Intrinsics.X86.Avx512F.IsSupported); return; }
        const int bs = 8, G = 2, D = 64, len = 40;
        var (cache, table) = PagedAttentionTests.MakeCache(1, D, bs, len, KvDataType.F16, seed: 3, out _, out _);
        using var owned = cache;
        var rng = new Random(5);
        int maxT = TileAttention512.MaxTokens;
        var q = new float[maxT * G * D];
        for (int i = 0; i < q.Length; i++) q[i] = (float)KernelHarness.Gaussian(rng);
        var scratch = new float[Math.Max(TileAttention512.ScratchFloats(G, D, bs), PagedAttention.ScratchFloats(G, D, bs))];
        var tile = new float[q.Length];
        var one = new float[G * D];
        for (int first = 0; first + 1 <= len; first += 3)
            for (int tokens = 1; tokens <= maxT && first + tokens <= len; tokens++)
                fixed (float* qp = q) fixed (float* tp = tile) fixed (float* op = one) fixed (float* sp = scratch)
                {
                    TileAttention512.Attend(cache, 0, 0, table, first, tokens, qp, tp, G * D, G, D, 0.125f, sp);
                    for (int t = 0; t < tokens; t++)
                    {
                        PagedAttention.Attend(cache, 0, 0, table, first + t + 1, qp + t * G * D, op, G, D, 0.125f, sp, IsaLevel.Avx512);
                        for (int i = 0; i < G * D; i++)
                            Assert.True(BitConverter.SingleToInt32Bits(tile[t * G * D + i]) == BitConverter.SingleToInt32Bits(one[i]),
                                $"tile at {first} of {tokens}: token {t} output {i}: {tile[t * G * D + i]:R} vs {one[i]:R}");
                    }
                }
    }
}
