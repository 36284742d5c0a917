using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tensors.Kernels;
using SharpInfer.Tests.Models;

namespace SharpInfer.Tests.Tensors.Kernels;

/// <summary>Q8_0, Q4_K and the 4-bit nibble formats packed at load (<see cref="WeightPacking"/>): the kernels read the packed copy for every
/// token count and give the same bits as from the mapped rows, for row counts that do not fill the last group, row
/// ranges split at group boundaries, and at the model level.</summary>
public class PackedWeightTests
{
    private static IEnumerable<IsaLevel> PackingLevels() =>
        KernelHarness.Levels().Where(l => LegacyQuantKernel<Q8_0Format>.PackRowsFor(l) > 0);

    [Fact]
    public unsafe void PackedQ8_0GivesTheBitsOfTheMappedRows()
    {
        Assert.NotEmpty(PackingLevels());   // CI's CPU has AVX2 (and AVX-512): the packed path must be tested
        const int cols = 32 * 13;
        var kernel = KernelRegistry.For(GgmlType.Q8_0, MatMulPrecision.Fast);
        var scratch = new float[kernel.ScratchFloats(cols)];
        foreach (int rows in new[] { 1, 7, 15, 16, 17, 40 })
            foreach (int tokens in new[] { 1, 2, 3, 4, 5, 17 })
            {
                var rng = new Random(rows * 100 + tokens);
                long rowBytes = GgmlTypeInfo.RowSize(GgmlType.Q8_0, cols);
                var w = new byte[rowBytes * rows];
                var f = new float[cols];
                for (int r = 0; r < rows; r++)
                {
                    for (int i = 0; i < cols; i++) f[i] = (float)KernelHarness.Gaussian(rng) * (r % 3 == 0 ? 1e-3f : 1f);
                    if (r % 5 == 4) f.AsSpan(0, 32).Fill(-2f);   // a block of extreme codes (−127)
                    Quantize.Row(GgmlType.Q8_0, f, w.AsSpan((int)(r * rowBytes), (int)rowBytes));
                }
                var x = new float[tokens * cols];
                for (int i = 0; i < x.Length; i++) x[i] = (float)KernelHarness.Gaussian(rng);
                using var input = new KernelHarness.QuantizedInput(kernel.Format, x, tokens, cols);
                fixed (byte* wp = w)
                    foreach (var level in PackingLevels())
                    {
                        var mapped = new WeightMatrix("w", GgmlType.Q8_0, rows, cols, wp);
                        var packed = new WeightMatrix("w", GgmlType.Q8_0, rows, cols, wp);
                        using var packing = new WeightPacking();
                        packing.Pack([packed], level);
                        if (WeightPacking.Disabled) return;
                        int group = LegacyQuantKernel<Q8_0Format>.PackRowsFor(level);
                        Assert.True(packed.Packed != null && packed.PackRows == group);
                        Assert.Equal((LegacyQuantKernel<Q8_0Format>.PackedBytes(rows, cols, group) + 4095) & ~4095L, packing.Bytes);
                        var want = Compute(kernel, mapped, input.View, level, scratch, 0, rows);
                        var whole = Compute(kernel, packed, input.View, level, scratch, 0, rows);
                        AssertSameBits(want, whole, $"rows {rows} T={tokens} {level}");
                        if (tokens == 1) AssertRowsReadBack(mapped, packed, $"Q8_0, {level}");
                        // two tasks split at a group boundary, as the matmul splits rows
                        AssertSplitGivesTheSameBits(kernel, packed, input.View, level, scratch, Math.Min(rows, group), want, $"rows {rows} T={tokens} {level}");
                    }
            }
    }

    /// <summary>The 4-bit formats packed as nibbles (LegacyQuantKernel.NibblePacked.cs): same bits as from the mapped
    /// rows on every vector level of this CPU, for 1–2 tokens (the decode kernel) and 3+ (the tiles, unpacked from the
    /// layout), row counts that do not fill the last 8-row group, and row ranges split at a group boundary; the copy is
    /// exactly the rows' size (rounded to whole groups), and each row dequantizes from it as from the file.</summary>
    [Theory]
    [InlineData("Q4_0")]
    [InlineData("Q4_1")]
    [InlineData("IQ4_NL")]
    [InlineData("MXFP4")]
    public unsafe void PackedNibblesGiveTheBitsOfTheMappedRows(string typeName)
    {
        var type = Enum.Parse<GgmlType>(typeName);
        Assert.NotEmpty(PackingLevels());
        const int cols = 32 * 11;
        var kernel = KernelRegistry.For(type, MatMulPrecision.Fast);
        var scratch = new float[kernel.ScratchFloats(cols)];
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        foreach (int rows in new[] { 1, 7, 8, 9, 16, 17, 40 })
        {
            var rng = new Random(rows * 7 + (int)type);
            var w = new byte[rowBytes * rows];
            var f = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                for (int i = 0; i < cols; i++) f[i] = (float)KernelHarness.Gaussian(rng) * (r % 3 == 0 ? 1e-3f : 1f) + (r % 4 == 1 ? 0.5f : 0f);
                if (r % 5 == 4) f.AsSpan(32, 32).Fill(-2f);   // a block of extreme codes
                Quantize.Row(type, f, w.AsSpan((int)(r * rowBytes), (int)rowBytes));
            }
            fixed (byte* wp = w)
                foreach (int tokens in new[] { 1, 2, 3, 4, 5, 9, 17 })
                {
                    var x = new float[tokens * cols];
                    for (int i = 0; i < x.Length; i++) x[i] = (float)(KernelHarness.Gaussian(rng) * (i % 13 == 0 ? 6 : 1));
                    using var input = new KernelHarness.QuantizedInput(kernel.Format, x, tokens, cols);
                    foreach (var level in PackingLevels())
                    {
                        var mapped = new WeightMatrix("w", type, rows, cols, wp);
                        var packed = new WeightMatrix("w", type, rows, cols, wp);
                        using var packing = new WeightPacking();
                        packing.Pack([packed], level);
                        if (WeightPacking.Disabled) return;
                        Assert.True(packed.Packed != null && packed.PackRows == 8);
                        Assert.Equal(((rows + 7) / 8 * 8 * rowBytes + 4095) & ~4095L, packing.Bytes);
                        var want = Compute(kernel, mapped, input.View, level, scratch, 0, rows);
                        AssertSameBits(want, Compute(kernel, packed, input.View, level, scratch, 0, rows), $"{type} rows {rows} T={tokens} {level}");
                        if (tokens == 1) AssertRowsReadBack(mapped, packed, $"{type}, {level}");
                        foreach (int split in new[] { 8, 16 })
                            if (split < rows) AssertSplitGivesTheSameBits(kernel, packed, input.View, level, scratch, split, want, $"{type} rows {rows} T={tokens} {level}");
                    }
                }
        }
    }

    /// <summary>Q4_K packed for the scalar and portable levels (<see cref="Q4_KPackedFormat"/> rows) and, like Q5_K and Q6_K, for
    /// the vector levels (<see cref="Q4_KInterleaved"/>, <see cref="Q5_KInterleaved"/>, <see cref="Q6_KInterleaved"/>: 8-row groups): on every
    /// instruction path of this CPU the same bits as from the mapped block rows, for 1..9 tokens (the 8-row decode
    /// kernel, the 4-row decode tile and its remainder, the 4- and 8-token tiles on a panel unpacked per call, and
    /// their remainders), row counts that do not fill the last group, row ranges split as the matmul splits them (at a
    /// group; the scalar layout anywhere), and each row read back from an interleaved copy dequantizes to the mapped
    /// row's bits.</summary>
    [Theory]
    [InlineData("Q4_K")]
    [InlineData("Q5_K")]
    [InlineData("Q6_K")]
    public unsafe void PackedKQuantsGiveTheBitsOfTheMappedRows(string typeName)
    {
        var type = Enum.Parse<GgmlType>(typeName);
        Assert.NotEmpty(PackingLevels());   // CI's CPU has AVX2: the interleaved layout must be tested
        var kernel = KernelRegistry.For(type, MatMulPrecision.Fast);
        int interleavedPacks = 0;
        foreach (var (rows, cols) in new[] { (1, 256), (5, 512), (8, 256), (9, 768), (16, 256), (19, 1280), (40, 512) })
        {
            long rowBytes = GgmlTypeInfo.RowSize(type, cols);
            var scratch = new float[kernel.ScratchFloats(cols)];
            var rng = new Random(rows * 31 + cols);
            var w = new byte[rowBytes * rows];
            var f = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                for (int i = 0; i < cols; i++) f[i] = (float)KernelHarness.Gaussian(rng) * (r % 3 == 0 ? 1e-3f : 1f) + (r % 4 == 1 ? 0.7f : 0f);
                if (r % 5 == 2) f.AsSpan(0, 64).Fill(-3f);   // sub-blocks at the extremes of the codes and scales
                Quantize.Row(type, f, w.AsSpan((int)(r * rowBytes), (int)rowBytes));
            }
            fixed (byte* wp = w)
                for (int tokens = 1; tokens <= 9; tokens++)
                {
                    var x = new float[tokens * cols];
                    for (int i = 0; i < x.Length; i++) x[i] = (float)(KernelHarness.Gaussian(rng) * (i % 13 == 0 ? 6 : 1));
                    using var input = new KernelHarness.QuantizedInput(kernel.Format, x, tokens, cols);
                    var mapped = new WeightMatrix("w", type, rows, cols, wp);
                    float[]? scalar = null;
                    foreach (var packLevel in type == GgmlType.Q4_K ? PackingLevels().Prepend(IsaLevel.Scalar) : PackingLevels())
                    {
                        var packed = new WeightMatrix("w", type, rows, cols, wp);
                        using var packing = new WeightPacking();
                        packing.Pack([packed], packLevel);
                        if (WeightPacking.Disabled) return;
                        int groupRows = WeightPacking.PackRowsFor(packed, packLevel);   // 8 on the vector levels; Q4_K packs whole rows for the scalar level
                        if (groupRows == 0)
                        {
                            Assert.True(packed.Packed == null, $"{type} packed for {packLevel}");
                            continue;
                        }
                        bool interleaved = groupRows == 8;
                        if (interleaved) interleavedPacks++;
                        Assert.True(packed.Packed != null && packed.PackRows == groupRows);
                        long bytes = !interleaved ? rows * (cols / 256) * 148L : type == GgmlType.Q4_K ? KQuantGroups.PackedBytes<Q4_KInterleaved>(rows, cols) : type == GgmlType.Q5_K ? KQuantGroups.PackedBytes<Q5_KInterleaved>(rows, cols) : KQuantGroups.PackedBytes<Q6_KInterleaved>(rows, cols);
                        Assert.Equal((bytes + 4095) & ~4095L, packing.Bytes);
                        if (interleaved && tokens == 1) AssertRowsReadBack(mapped, packed, $"{type}, {packLevel}");
                        foreach (var level in KernelHarness.Levels())
                        {
                            var want = Compute(kernel, mapped, input.View, level, scratch, 0, rows);
                            scalar ??= want;
                            AssertSameBits(scalar, want, $"mapped rows {rows}x{cols} T={tokens} {level} vs the scalar path");
                            string what = $"rows {rows}x{cols} T={tokens} packed for {packLevel}, run at {level}";
                            AssertSameBits(want, Compute(kernel, packed, input.View, level, scratch, 0, rows), what);
                            // split as two threads would: at a group, and (the scalar layout) at a row inside the 4-row tile
                            foreach (int split in interleaved ? new[] { 8, 16 } : new[] { rows / 2 + (rows > 2 ? 1 : 0) })
                                if (split < rows) AssertSplitGivesTheSameBits(kernel, packed, input.View, level, scratch, split, want, what);
                        }
                    }
                }
        }
        Assert.True(interleavedPacks > 0, $"{type}: no level of this CPU packed the interleaved layout");
    }

    /// <summary>Packing rewrites every block of a Q4_K row and nothing else: the packed codes, scales, mins and halves
    /// give back the block_q4_K values (checked element by element through the scalar unpacking).</summary>
    [Fact]
    public unsafe void Q4_KPackedBlocksHoldTheSameCodesAndScales()
    {
        var blk = new byte[BlockQ4_K.Size];
        var dst = new byte[Q4_KPackedFormat.Size];
        var rng = new Random(3);
        byte* c1 = stackalloc byte[256]; byte* c2 = stackalloc byte[256];
        int* s1 = stackalloc int[16]; int* s2 = stackalloc int[16]; int* e1 = stackalloc int[16]; int* e2 = stackalloc int[16];
        for (int n = 0; n < 50; n++)
        {
            rng.NextBytes(blk);
            fixed (byte* src = blk) fixed (byte* p = dst)
            {
                Q4_KPackedFormat.PackBlock(src, p);
                Q4_KFormat.Unpack(src, c1, s1, e1);
                Q4_KPackedFormat.Unpack(p, c2, s2, e2);
                Assert.True(new ReadOnlySpan<byte>(c1, 256).SequenceEqual(new ReadOnlySpan<byte>(c2, 256)), "codes");
                Assert.True(new ReadOnlySpan<int>(s1, 16).SequenceEqual(new ReadOnlySpan<int>(s2, 16)), "scales");
                Assert.True(new ReadOnlySpan<int>(e1, 16).SequenceEqual(new ReadOnlySpan<int>(e2, 16)), "mins");
                Assert.Equal(BitConverter.SingleToInt32Bits(Q4_KFormat.D(src)), BitConverter.SingleToInt32Bits(Q4_KPackedFormat.D(p)));
                Assert.Equal(BitConverter.SingleToInt32Bits(Q4_KFormat.DMin(src)), BitConverter.SingleToInt32Bits(Q4_KPackedFormat.DMin(p)));
                Q4_KPackedFormat.CodesPortable(p, c2);
                Assert.True(new ReadOnlySpan<byte>(c1, 256).SequenceEqual(new ReadOnlySpan<byte>(c2, 256)), "portable codes");
            }
        }
    }

    [Fact]
    public unsafe void PackingIsIdempotentAndDisposeFallsBackToTheMappedRows()
    {
        const int rows = 20, cols = 64;
        var level = PackingLevels().Last();
        var w = new byte[GgmlTypeInfo.RowSize(GgmlType.Q8_0, cols) * rows];
        new Random(5).NextBytes(w);
        for (int r = 0; r < rows * 2; r++) BitConverter.TryWriteBytes(w.AsSpan(r * 34, 2), Fp16.FromFloat(0.01f));
        fixed (byte* wp = w)
        {
            var m = new WeightMatrix("w", GgmlType.Q8_0, rows, cols, wp);
            var f16 = new WeightMatrix("f", GgmlType.F16, rows, cols, wp);
            var packing = new WeightPacking();
            packing.Pack([m, m, f16], level);
            if (WeightPacking.Disabled) return;
            long bytes = packing.Bytes;
            byte* first = m.Packed;
            packing.Pack([m], level);
            Assert.True(m.Packed == first && packing.Bytes == bytes);   // packed once
            Assert.True(f16.Packed == null);                               // F16 has no packed layout
            packing.Dispose();
            Assert.True(m.Packed == null && m.PackRows == 0 && packing.Bytes == 0);
        }
    }

    [Fact]
    public void ModelOutputsAreTheSameFromPackedAndMappedWeights()
    {
        if (WeightPacking.Disabled || Isa.Best < IsaLevel.Avx512) return;   // needs two layouts to compare (CI: AVX-512)
        string path = TestModels.Get("mistral-tiny", "q8_0");
        int[] prompt = [1, 415, 2936, 9060, 285, 1142, 28705, 28770, 28734, 754, 272, 17898, 3914, 28723];
        using var packedModel = Model.Load(path);
        using var mappedModel = Model.Load(path);
        // an AVX2 transformer packs 8-row groups; the AVX-512 transformer beside it then reads the mapped rows
        using (new SequenceRunner(mappedModel, precision: MatMulPrecision.Fast, isa: IsaLevel.Avx2)) { }
        using var packedRunner = new SequenceRunner(packedModel, precision: MatMulPrecision.Fast, isa: IsaLevel.Avx512);
        using var mappedRunner = new SequenceRunner(mappedModel, precision: MatMulPrecision.Fast, isa: IsaLevel.Avx512);
        Assert.All(packedModel.Weights.Layers, l => Assert.Equal(16, l.Q.PackRows));
        Assert.All(mappedModel.Weights.Layers, l => Assert.Equal(8, l.Q.PackRows));
        Assert.True(packedModel.Weights.PackedBytes > 0);
        // prefill (the batched tiles) and then single-token decode steps (the 1-token tile)
        var a = packedRunner.Feed(prompt).Concat(packedRunner.Feed([3000])).Concat(packedRunner.Feed([42])).ToArray();
        var b = mappedRunner.Feed(prompt).Concat(mappedRunner.Feed([3000])).Concat(mappedRunner.Feed([42])).ToArray();
        Assert.Equal(b.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
            AssertSameBits(b[i], a[i], $"logits of token {i}");
    }

    /// <summary>Rows [0, split) and [split, rows) computed as two tasks, as the matmul splits rows between threads, give
    /// the bits of the whole matrix (<paramref name="want"/>).</summary>
    private static void AssertSplitGivesTheSameBits(MatMulKernel k, WeightMatrix w, ActivationView x, IsaLevel level, float[] scratch, int split, float[] want, string what)
    {
        int rows = w.Rows;
        var a = Compute(k, w, x, level, scratch, 0, split);
        var b = Compute(k, w, x, level, scratch, split, rows);
        for (int t = 0; t < x.Tokens; t++)
            for (int r = split; r < rows; r++) a[t * rows + r] = b[t * rows + r];
        AssertSameBits(want, a, $"{what}, split at {split}");
    }

    private static unsafe float[] Compute(MatMulKernel k, WeightMatrix w, ActivationView x, IsaLevel level, float[] scratch, int r0, int r1)
    {
        var y = new float[x.Tokens * w.Rows];
        fixed (float* yp = y)
        fixed (float* sp = scratch)
            k.Compute(w, x, yp, w.Rows, r0, r1, level, sp);
        return y;
    }

    /// <summary>Embedding lookups read a row back from the packed copy: every row dequantizes to the mapped row's bits.</summary>
    private static void AssertRowsReadBack(WeightMatrix mapped, WeightMatrix packed, string what)
    {
        float[] fromRows = new float[mapped.Cols], fromPack = new float[mapped.Cols];
        for (int r = 0; r < mapped.Rows; r++)
        {
            mapped.DequantizeRow(r, fromRows);
            packed.DequantizeRow(r, fromPack);
            AssertSameBits(fromRows, fromPack, $"{what}: row {r} of {mapped.Rows} dequantized");
        }
    }

    private static void AssertSameBits(float[] want, float[] got, string what)
    {
        for (int i = 0; i < want.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(got[i]),
                $"{what}: output {i} = {got[i]}, from the mapped rows {want[i]}");
    }
}
