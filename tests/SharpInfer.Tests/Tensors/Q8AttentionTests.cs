using System.Runtime.Intrinsics.X86;
using SharpInfer.KvCache;
using SharpInfer.Tensors;
using SharpInfer.Tensors.Attention;
using SharpInfer.Tests.Tensors.Kernels;

namespace SharpInfer.Tests.Tensors;

/// <summary>
/// Decode over a Q8_0 cache read in place (<see cref="Q8Attention512"/>, what <see cref="PagedAttention.Attend(IKvCache, int, int, BlockTable, int, float*, float*, int, int, float, float*, IsaLevel)"/>
/// takes on AVX-512 for Q8_0 keys and values): bit-identical to dequantizing each block and attending over the
/// floats (the AVX-512 widening path, itself checked against a naive softmax), for lengths ending anywhere in a
/// block, block sizes 4 to 32, groups of 2 to 6 heads, head sizes 64 and 128.
/// </summary>
public unsafe class Q8AttentionTests
{
    [Theory]
    [InlineData(16, 2, 128)]   // qwen3-0.6b
    [InlineData(8, 4, 64)]
    [InlineData(32, 2, 64)]
    [InlineData(4, 6, 128)]
    public void ReadingQ8BlocksInPlaceGivesTheBitsOfDequantizeThenAttend(int bs, int group, int D)
    {
        const int kvHeads = 2;
        int maxLen = 3 * bs + 5;
        var (cache, table) = PagedAttentionTests.MakeCache(kvHeads, D, bs, maxLen, KvDataType.Q8_0, seed: bs + group + D, out _, out _);
        using var owned = cache;
        Assert.Equal(Avx512F.IsSupported && Fma.IsSupported, Q8Attention512.Supports(cache, group, D));
        if (!Q8Attention512.Supports(cache, group, D)) return;   // no AVX-512 here: the widening path is the only one
        var rng = new Random(D);
        var q = new float[group * D];
        for (int i = 0; i < q.Length; i++) q[i] = (float)KernelHarness.Gaussian(rng) * 3;
        var scratch = new float[PagedAttention.ScratchFloats(group, D, bs)];
        var fused = new float[group * D];
        var widened = new float[group * D];
        foreach (int length in new[] { 1, 2, 3, bs - 1, bs, bs + 1, 2 * bs + 3, maxLen }.Where(n => n >= 1).Distinct())
            for (int g = 0; g < kvHeads; g++)
                fixed (float* qp = q) fixed (float* fp = fused) fixed (float* wp = widened) fixed (float* sp = scratch)
                {
                    Q8Attention512.Attend(cache, 0, g, table, length, qp, fp, group, D, 0.09f, sp);
                    PagedAttention.Avx512Path.Attend(cache, 0, g, table, length, qp, wp, group, D, 0.09f, sp, first: 0);
                    for (int i = 0; i < fused.Length; i++)
                        Assert.True(BitConverter.SingleToInt32Bits(fused[i]) == BitConverter.SingleToInt32Bits(widened[i]),
                            $"length {length} head {g}.{i / D} dim {i % D}: {fused[i]:R} vs {widened[i]:R}");
                }
    }
}
