using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tests.Tensors.Kernels;

namespace SharpInfer.Tests.Tensors;

/// <summary>
/// Paged attention on every instruction path: against a naive full softmax in double on random data (several block
/// sizes, GQA group sizes, head sizes, F32 and F16 caches, lengths ending inside and at block boundaries), and
/// invariance: a token's output is bit-identical whether its sequence is processed in one batch, in chunks, or
/// together with another sequence.
/// </summary>
public unsafe class PagedAttentionTests
{
    /// <summary>A KV cache holding one sequence of <paramref name="length"/> positions of random keys and values
    /// in shuffled blocks; <paramref name="keys"/>/<paramref name="values"/> get the values as stored (F16-rounded).</summary>
    internal static (PagedKvCache Cache, BlockTable Table) MakeCache(int kvHeads, int D, int bs, int length, KvDataType type, int seed,
                                                                    out float[,,] keys, out float[,,] values)
    {
        var rng = new Random(seed);
        int nBlocks = (length + bs - 1) / bs;
        var cache = new PagedKvCache(1, kvHeads, D, bs, nBlocks + 3, type);
        var table = new BlockTable();
        var order = Enumerable.Range(0, nBlocks + 3).OrderBy(_ => rng.Next()).ToArray();
        for (int b = 0; b < nBlocks; b++) table.Add(order[b]);
        keys = new float[kvHeads, length, D];
        values = new float[kvHeads, length, D];
        var kRow = new float[D];
        var vRow = new float[D];
        var widened = new float[D];
        long kBytes = cache.KeyFormat.RowBytes(D), vBytes = cache.ValueFormat.RowBytes(D);
        for (int g = 0; g < kvHeads; g++)
            for (int p = 0; p < length; p++)
            {
                // a few positions with large keys move the running max around
                float kScale = p % 23 == 7 ? 4f : 1f;
                for (int d = 0; d < D; d++)
                {
                    kRow[d] = (float)KernelHarness.Gaussian(rng) * kScale;
                    vRow[d] = (float)KernelHarness.Gaussian(rng);
                }
                // stored through the format (F16 rounding, quantization); the reference sees what was stored
                byte* kb = cache.KeyBlock(0, table[p / bs], g) + (p % bs) * kBytes, vb = cache.ValueBlock(0, table[p / bs], g) + (p % bs) * vBytes;
                fixed (float* kr = kRow) fixed (float* vr = vRow) fixed (float* w = widened)
                {
                    cache.KeyFormat.WriteRow(kr, kb, D, IsaLevel.Scalar);
                    float* kw = cache.KeyFormat.Widen(kb, w, 1, D, IsaLevel.Scalar, finite: false);
                    for (int d = 0; d < D; d++) keys[g, p, d] = kw[d];
                    cache.ValueFormat.WriteRow(vr, vb, D, IsaLevel.Scalar);
                    float* vw = cache.ValueFormat.Widen(vb, w, 1, D, IsaLevel.Scalar, finite: false);
                    for (int d = 0; d < D; d++) values[g, p, d] = vw[d];
                }
            }
        return (cache, table);
    }

    public static TheoryData<KvDataType, int, int, int, int> Shapes()
    {
        var d = new TheoryData<KvDataType, int, int, int, int>();
        foreach (var type in new[] { KvDataType.F32, KvDataType.F16 })
        {
            d.Add(type, 16, 7, 64, 2);     // qwen2.5-0.5b shape
            d.Add(type, 8, 1, 128, 1);
            d.Add(type, 32, 2, 64, 3);
            d.Add(type, 16, 4, 64, 2);     // llama3.2-1b's group of 4 (head pairs on AVX-512)
            d.Add(type, 5, 4, 40, 2);      // block size not a multiple of 4, head size with a tail on every width
            d.Add(type, 6, 3, 20, 1);
        }
        // quantized caches: ggml's 32-value blocks (head sizes 64, 128) and shortened blocks for small heads
        foreach (var type in new[] { KvDataType.Q8_0, KvDataType.Q4_0 })
        {
            d.Add(type, 16, 7, 64, 2);
            d.Add(type, 8, 1, 128, 1);
            d.Add(type, 16, 4, 64, 2);
            d.Add(type, 5, 4, 40, 2);
            d.Add(type, 16, 2, 8, 2);      // stories260K's head size
        }
        return d;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesNaiveSoftmaxAttentionOnEveryPath(KvDataType type, int bs, int group, int D, int kvHeads)
    {
        int maxLen = 3 * bs + 5;
        var (cache, table) = MakeCache(kvHeads, D, bs, maxLen, type, seed: bs * 100 + group * 10 + D, out var keys, out var values);
        using var _ = cache;
        var rng = new Random(D);
        var q = new float[group * D];
        for (int i = 0; i < q.Length; i++) q[i] = (float)KernelHarness.Gaussian(rng);
        float scale = 1f / MathF.Sqrt(D);
        var scratch = new float[PagedAttention.ScratchFloats(group, D, bs)];
        var output = new float[group * D];
        foreach (int length in new[] { 1, 2, bs - 1, bs, bs + 1, 2 * bs + 3, maxLen }.Where(n => n >= 1).Distinct())
            for (int g = 0; g < kvHeads; g++)
            {
                // reference: full softmax in double
                var want = new double[group * D];
                for (int h = 0; h < group; h++)
                {
                    var s = new double[length];
                    for (int p = 0; p < length; p++)
                    {
                        double dot = 0;
                        for (int d = 0; d < D; d++) dot += (double)q[h * D + d] * keys[g, p, d];
                        s[p] = dot * scale;
                    }
                    double max = s.Max(), sum = 0;
                    for (int p = 0; p < length; p++) { s[p] = Math.Exp(s[p] - max); sum += s[p]; }
                    for (int p = 0; p < length; p++)
                        for (int d = 0; d < D; d++) want[h * D + d] += s[p] / sum * values[g, p, d];
                }
                foreach (var level in KernelHarness.Levels())
                {
                    fixed (float* qp = q) fixed (float* op = output) fixed (float* sp = scratch)
                        PagedAttention.Attend(cache, 0, g, table, length, qp, op, group, D, scale, sp, level);
                    for (int i = 0; i < output.Length; i++)
                        Assert.True(Math.Abs(output[i] - want[i]) <= 2e-6 + 2e-6 * Math.Abs(want[i]),
                            $"{type} bs {bs} group {group} D {D} length {length} head {g}.{i / D} dim {i % D} {level}: {output[i]:R} vs {want[i]:R}");
                }
            }
    }

    [Fact]
    public void AnF16CacheMarkedNonFiniteWidensExactlyOnEveryPath()
    {
        // an infinity in one key and a NaN in one value: every path must see them (the finite-only widening would
        // turn them into large finite numbers), so the NaNs land where the scalar path's IEEE arithmetic puts them and
        // the other outputs agree up to summation order
        const int bs = 16, group = 2, D = 64, length = 40;
        var (cache, table) = MakeCache(1, D, bs, length, KvDataType.F16, seed: 9, out _, out _);
        using var owned = cache;
        Assert.False(cache.MayHoldNonFinite);
        ((ushort*)cache.KeyBlock(0, table[1], 0))[3 * D + 5] = 0x7C00;     // +inf in position 19's key
        ((ushort*)cache.ValueBlock(0, table[2], 0))[D + 7] = 0x7E00;       // NaN in position 33's value
        cache.MarkNonFinite();
        Assert.True(cache.MayHoldNonFinite);
        var q = Enumerable.Range(0, group * D).Select(i => (float)Math.Sin(i)).ToArray();
        var scratch = new float[PagedAttention.ScratchFloats(group, D, bs)];
        float[]? first = null;
        foreach (var level in KernelHarness.Levels())
        {
            var output = new float[group * D];
            fixed (float* qp = q) fixed (float* op = output) fixed (float* sp = scratch)
                PagedAttention.Attend(cache, 0, 0, table, length, qp, op, group, D, 1f / 8, sp, level);
            Assert.Contains(output, float.IsNaN);   // the NaN value (and an infinite score) propagate
            first ??= output;
            for (int i = 0; i < output.Length; i++)
                Assert.True(float.IsNaN(first[i]) == float.IsNaN(output[i]) && (float.IsNaN(output[i]) || Math.Abs(first[i] - output[i]) <= 1e-5f * (1 + Math.Abs(first[i]))),
                    $"{level}: output {i} = {output[i]} vs scalar {first[i]}");
        }
    }

    /// <summary>The AVX2 path does the AVX-512 path's 16-lane arithmetic (two 8-lane halves, the same reduction tree),
    /// so a model gives the same tokens and log-probs on either CPU (IsaPathsAgreeTests checks that end to end; a
    /// Q8_K-activation model is sensitive to a one-ulp difference in attention). Every length of 1–60 positions,
    /// head-dimension tails, one to four heads a group. On a CPU without AVX-512 only the AVX2 path runs.</summary>
    [Theory]
    [InlineData(KvDataType.F16, 16, 2, 64)]
    [InlineData(KvDataType.F16, 16, 1, 64)]
    [InlineData(KvDataType.F16, 16, 4, 128)]
    [InlineData(KvDataType.F16, 8, 3, 80)]
    [InlineData(KvDataType.F16, 32, 2, 40)]
    [InlineData(KvDataType.F32, 16, 2, 72)]
    [InlineData(KvDataType.Q8_0, 16, 2, 64)]
    public void Avx2AndAvx512GiveTheSameBits(KvDataType type, int bs, int group, int D)
    {
        var levels = KernelHarness.Levels().Where(l => l >= IsaLevel.Avx2).ToArray();
        Assert.NotEmpty(levels);
        for (int seed = 0; seed < 6; seed++)
        {
            var (cache, table) = MakeCache(1, D, bs, 60, type, seed, out _, out _);
            using var owned = cache;
            var rng = new Random(seed);
            var q = new float[group * D];
            for (int i = 0; i < q.Length; i++) q[i] = (float)KernelHarness.Gaussian(rng) * (seed % 3 + 1);
            var scratch = new float[PagedAttention.ScratchFloats(group, D, bs)];
            for (int len = 1; len <= 60; len++)
            {
                float[]? first = null;
                foreach (var level in levels)
                {
                    var o = new float[group * D];
                    fixed (float* qp = q) fixed (float* op = o) fixed (float* sp = scratch)
                        PagedAttention.Attend(cache, 0, 0, table, len, qp, op, group, D, 0.125f, sp, level);
                    first ??= o;
                    for (int i = 0; i < o.Length; i++)
                        Assert.True(BitConverter.SingleToInt32Bits(first[i]) == BitConverter.SingleToInt32Bits(o[i]),
                            $"seed {seed} length {len} output {i}: {levels[0]} {first[i]:R}, {level} {o[i]:R}");
                }
            }
        }
    }

    [Theory]
    [InlineData(16, 2, 128, 1f)]
    [InlineData(8, 4, 64, 1f)]
    [InlineData(16, 2, 128, 1e-30f)]     // tiny queries: q·2^112 of the scaled form is exact down to subnormal q
    [InlineData(16, 2, 128, 70000f)]     // |q| ≥ 2^16: q·2^112 would overflow, so the pairs read exact halves instead
    public void HeadPairsOnFiniteHalvesGiveTheBitsOfTheWideningPath(int bs, int group, int D, float qScale)
    {
        // the head-pair kernels read F16 keys/values directly (on AVX-512 as h·2^-112 against q and p scaled by
        // 2^112); a cache marked non-finite takes the widening path
        const int length = 45;
        var (cache, table) = MakeCache(1, D, bs, length, KvDataType.F16, seed: 4, out _, out _);
        var (marked, _) = MakeCache(1, D, bs, length, KvDataType.F16, seed: 4, out _, out _);
        using var a = cache;
        using var b = marked;
        // subnormal halves (and a few zeros) in every fifth position of both caches: the scaled form must keep them exact
        var rng = new Random(9);
        for (int p = 2; p < length; p += 5)
            for (int d = 0; d < D; d++)
            {
                ushort h = (ushort)(rng.Next(0, 0x400) | (rng.Next(2) << 15));
                ((ushort*)cache.KeyBlock(0, table[p / bs], 0))[(p % bs) * D + d] = h;
                ((ushort*)marked.KeyBlock(0, table[p / bs], 0))[(p % bs) * D + d] = h;
                ((ushort*)cache.ValueBlock(0, table[p / bs], 0))[(p % bs) * D + d] = (ushort)(h ^ 0x8000);
                ((ushort*)marked.ValueBlock(0, table[p / bs], 0))[(p % bs) * D + d] = (ushort)(h ^ 0x8000);
            }
        for (int i = 0; i < table.Count; i++)   // same blocks, same bytes in the written slots (the shuffle is seeded)
        {
            int bytes = Math.Min(bs, length - i * bs) * D * 2;
            Assert.True(new ReadOnlySpan<byte>(cache.KeyBlock(0, table[i], 0), bytes).SequenceEqual(new ReadOnlySpan<byte>(marked.KeyBlock(0, table[i], 0), bytes)));
        }
        marked.MarkNonFinite();
        var q = Enumerable.Range(0, group * D).Select(i => (float)Math.Cos(i * 0.37) * (i % 7 == 3 ? qScale : 1f)).ToArray();
        var scratch = new float[PagedAttention.ScratchFloats(group, D, bs)];
        foreach (var level in KernelHarness.Levels())
            foreach (int len in new[] { 1, 3, bs, bs + 2, length })
            {
                var x = new float[group * D];
                var y = new float[group * D];
                fixed (float* qp = q) fixed (float* xp = x) fixed (float* yp = y) fixed (float* sp = scratch)
                {
                    PagedAttention.Attend(cache, 0, 0, table, len, qp, xp, group, D, 0.1f, sp, level);
                    PagedAttention.Attend(marked, 0, 0, table, len, qp, yp, group, D, 0.1f, sp, level);
                }
                for (int i = 0; i < x.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(x[i]) == BitConverter.SingleToInt32Bits(y[i]), $"{level} length {len}: output {i} {x[i]} vs {y[i]}");
            }
    }

    internal static ModelConfig Config(int heads, int kvHeads, int D) => new()
    {
        Architecture = "llama",
        Name = "test",
        LayerCount = 1,
        EmbeddingLength = heads * D,
        HeadCount = heads,
        KvHeadCount = kvHeads,
        HeadDim = D,
        ValueHeadDim = D,
        FeedForwardLength = 4,
        VocabSize = 4,
        TrainedContextLength = 4096,
        RmsNormEpsilon = 1e-5f,
        RopeFreqBase = 10000,
        RopeDimensions = D,
        RopeFreqScale = 1,
        RopeStyle = RopeStyle.Normal,
        HasQkNorm = false,
    };

    [Theory]
    [InlineData(KvDataType.F32, 16)]
    [InlineData(KvDataType.F16, 16)]
    [InlineData(KvDataType.F16, 8)]
    [InlineData(KvDataType.F32, 32)]
    [InlineData(KvDataType.Q8_0, 16)]
    [InlineData(KvDataType.Q4_0, 16)]
    public void ResultsDoNotDependOnBatchCompositionOrChunking(KvDataType type, int bs)
    {
        const int heads = 6, kvHeads = 2, D = 64, lenA = 53, lenB = 21;
        int qd = heads * D;
        var (cacheA, tableA) = MakeCache(kvHeads, D, bs, lenA, type, seed: 1, out _, out _);
        // sequence B: random values generated like A's, then copied into A's cache
        var (cacheB, tableB0) = MakeCache(kvHeads, D, bs, lenB, type, seed: 2, out var kB, out var vB);
        using var _a = cacheA;
        using var _b = cacheB;

        var tableB = new BlockTable();
        var used = new HashSet<int>(tableA.Blocks.ToArray());
        var free = Enumerable.Range(0, cacheA.BlockCount).Where(b => !used.Contains(b)).ToList();
        int needB = (lenB + bs - 1) / bs;
        Assert.True(free.Count >= needB);
        for (int b = 0; b < needB; b++) tableB.Add(free[b]);
        long kRowBytes = cacheA.KeyFormat.RowBytes(D), vRowBytes = cacheA.ValueFormat.RowBytes(D);
        for (int g = 0; g < kvHeads; g++)
            for (int p = 0; p < lenB; p++)
            {
                long off = (p % bs) * kRowBytes, voff = (p % bs) * vRowBytes;
                Buffer.MemoryCopy(cacheB.KeyBlock(0, tableB0[p / bs], g) + off, cacheA.KeyBlock(0, tableB[p / bs], g) + off, kRowBytes, kRowBytes);
                Buffer.MemoryCopy(cacheB.ValueBlock(0, tableB0[p / bs], g) + voff, cacheA.ValueBlock(0, tableB[p / bs], g) + voff, vRowBytes, vRowBytes);
            }

        var rng = new Random(9);
        var qA = new float[lenA * qd];
        var qB = new float[lenB * qd];
        for (int i = 0; i < qA.Length; i++) qA[i] = (float)KernelHarness.Gaussian(rng);
        for (int i = 0; i < qB.Length; i++) qB[i] = (float)KernelHarness.Gaussian(rng);
        using var pool = new ComputePool(2);
        foreach (var level in KernelHarness.Levels())
        {
            using var att = new PagedAttention(pool, Config(heads, kvHeads, D), bs, level);

            // A alone, one batch
            var whole = RunInChunks(att, cacheA, tableA, qA, lenA, qd, [lenA]);
            // A in chunks
            var chunked = RunInChunks(att, cacheA, tableA, qA, lenA, qd, [1, 7, 16, 2, 27]);
            Assert.Equal(whole, chunked);
            // A's last 20 tokens and all of B interleaved in one batch
            var batch = new ForwardBatch(lenA + lenB, 2);
            int sa = batch.AddSequence(tableA), sb = batch.AddSequence(tableB);
            var qMixed = new float[(20 + lenB) * qd];
            var slots = new List<(int Seq, int Pos)>();
            for (int i = 0, a = lenA - 20, b = 0; a < lenA || b < lenB; i++)
            {
                if (b < lenB && (i % 2 == 0 || a >= lenA)) { slots.Add((sb, b)); batch.AddToken(sb, 0, b, false); b++; }
                else { slots.Add((sa, a)); batch.AddToken(sa, 0, a, false); a++; }
            }
            for (int t = 0; t < slots.Count; t++)
            {
                var src = slots[t].Seq == sa ? qA : qB;
                Array.Copy(src, slots[t].Pos * qd, qMixed, t * qd, qd);
            }
            var mixedOut = new float[qMixed.Length];
            fixed (float* qp = qMixed) fixed (float* op = mixedOut) att.Run(cacheA, batch, 0, 0, slots.Count, qp, op);
            var bAlone = RunInChunks(att, cacheA, tableB, qB, lenB, qd, [lenB]);
            for (int t = 0; t < slots.Count; t++)
            {
                var (seq, pos) = slots[t];
                var reference = seq == sa ? whole : bAlone;
                for (int i = 0; i < qd; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(mixedOut[t * qd + i]) == BitConverter.SingleToInt32Bits(reference[pos * qd + i]),
                        $"{level}: sequence {seq} position {pos} differs in a mixed batch");
            }
        }
    }

    /// <summary>Attends one sequence's <paramref name="len"/> tokens through <see cref="PagedAttention.Run"/>, in chunks of
    /// the given sizes (then whatever is left in one), and returns every token's output.</summary>
    internal static float[] RunInChunks(PagedAttention att, IKvCache cache, BlockTable table, float[] q, int len, int qd, int[] chunks)
    {
        var batch = new ForwardBatch(len, 1);
        int s = batch.AddSequence(table);
        for (int p = 0; p < len; p++) batch.AddToken(s, 0, p, false);
        var output = new float[len * qd];
        int start = 0;
        fixed (float* qp = q) fixed (float* op = output)
        {
            foreach (int c in chunks.Append(len))
            {
                int count = Math.Min(c, len - start);
                if (count <= 0) break;
                att.Run(cache, batch, 0, start, count, qp + start * qd, op + start * qd);
                start += count;
            }
        }
        Assert.Equal(len, start);
        return output;
    }
}
