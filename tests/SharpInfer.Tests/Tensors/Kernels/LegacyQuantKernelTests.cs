using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tensors.Kernels;

namespace SharpInfer.Tests.Tensors.Kernels;

/// <summary>The int8 kernels for 32-element formats (Q4_0, Q4_1, Q5_0, IQ4_NL, MXFP4): extreme codes and activations (no
/// int16 saturation anywhere), every path bit-identical (they share one float sequence by design), the vector f16
/// conversion, and the activation block sums they rely on.</summary>
public class LegacyQuantKernelTests
{
    public static TheoryData<Enum> Types() => new() { GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.IQ4_NL, GgmlType.MXFP4 };

    /// <summary>Random block bytes (every code, including all-minimum and all-maximum blocks) with finite scales
    /// (normal, subnormal, ±0), against activations quantized to ±127 and random ones.</summary>
    private static (byte[] W, float[] X) ExtremeData(GgmlType type, int rows, int cols, int tokens, int seed)
    {
        var rng = new Random(seed);
        int blockBytes = (int)GgmlTypeInfo.RowSize(type, 32);
        var w = new byte[GgmlTypeInfo.RowSize(type, cols) * rows];
        rng.NextBytes(w);
        ushort[] specialScales = [0x0000, 0x8000, 0x0001, 0x83FF, 0x3C00, 0xBC00, 0x7BFF, 0x0400];
        for (int blk = 0; blk < w.Length / blockBytes; blk++)
        {
            var b = w.AsSpan(blk * blockBytes, blockBytes);
            if (type == GgmlType.MXFP4)
            {
                // E8M0 scale byte: the subnormal scales (e = 0, 1), 1 (e = 128) and random magnitudes around 2^-6
                byte[] specialE = [0, 1, 2, 128];
                b[0] = blk % 5 == 0 ? specialE[blk / 5 % specialE.Length] : (byte)rng.Next(110, 130);
                if (blk % 3 == 1) b[1..].Fill(0x77);  // every code at +12, the largest
                if (blk % 7 == 2) b[1..].Fill(0xFF);  // ... at −12, the smallest
                continue;
            }
            int headers = type == GgmlType.Q4_1 ? 2 : 1;
            for (int h = 0; h < headers; h++)
            {
                ushort d = blk % 5 == 0 ? specialScales[blk / 5 % specialScales.Length] : Fp16.FromFloat((float)(rng.NextDouble() * 0.2 - 0.1));
                BitConverter.TryWriteBytes(b.Slice(2 * h, 2), d);
            }
            if (blk % 3 == 1) b[(2 * headers)..].Fill(0xFF); // every code (and Q5_0 fifth bit) at its maximum
            if (blk % 7 == 2) b[(2 * headers)..].Clear();     // ... at its minimum
        }
        var x = new float[tokens * cols];
        for (int i = 0; i < x.Length; i++)
            x[i] = (i / 32 % 3) switch { 0 => 1f, 1 => -1f, _ => (float)KernelHarness.Gaussian(rng) }; // ±127 after quantization
        for (int i = 64; i < x.Length; i += 97) x[i] = -x[i];
        return (w, x);
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void ExtremeCodesAndActivationsMatchTheReference(Enum typeValue)
    {
        var type = (GgmlType)typeValue;
        foreach (var (rows, tokens) in new[] { (19, 1), (19, 2), (24, 6), (5, 9) })
        {
            var (w, x) = ExtremeData(type, rows, 32 * 11, tokens, rows * 31 + tokens);
            KernelHarness.Check(type, KernelRegistry.For(type, MatMulPrecision.Fast), w, rows, 32 * 11, x, tokens);
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public unsafe void EveryPathGivesTheSameBits(Enum typeValue)
    {
        var type = (GgmlType)typeValue;
        const int rows = 29, cols = 32 * 13;
        var kernel = KernelRegistry.For(type, MatMulPrecision.Fast);
        foreach (int tokens in new[] { 1, 3, 4, 11 })
        {
            var (w, x) = ExtremeData(type, rows, cols, tokens, tokens);
            using var input = new KernelHarness.QuantizedInput(kernel.Format, x, tokens, cols);
            var scratch = new float[kernel.ScratchFloats(cols)];
            float[]? first = null;
            foreach (var level in KernelHarness.Levels())
            {
                var y = new float[tokens * rows];
                fixed (byte* wp = w) fixed (float* yp = y) fixed (float* sp = scratch)
                    kernel.Compute(new WeightMatrix("w", type, rows, cols, wp), input.View, yp, rows, 0, rows, level, sp);
                first ??= y;
                for (int i = 0; i < y.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(first[i]) == BitConverter.SingleToInt32Bits(y[i]),
                        $"{type} T={tokens} {level}: output {i} = {y[i]}, scalar path {first[i]}");
            }
        }
    }

    [Fact]
    public void VectorHalfToFloatIsExactForEveryHalf()
    {
        if (!Avx2.IsSupported) return;
        for (int h = 0; h < 65536; h += 8)
        {
            // the upper 16 bits are ignored: fill them with junk
            var v = Vector256.Create(h, h + 1, h + 2, h + 3, h + 4, h + 5, h + 6, h + 7) | Vector256.Create(unchecked((int)0xABCD0000));
            var f = LegacyQuantKernel<Q4_0Format>.HalfToFloat(v);
            for (int i = 0; i < 8; i++)
            {
                float want = Fp16.ToFloat((ushort)(h + i)), got = f.GetElement(i);
                if (float.IsNaN(want)) Assert.True(float.IsNaN(got), $"half 0x{h + i:X4}");
                else Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(got), $"half 0x{h + i:X4}: {got} vs {want}");
            }
        }
    }

    [Theory]
    [InlineData(ActivationFormat.Q8_0)]
    [InlineData(ActivationFormat.Q8_1)]
    public unsafe void ActivationBlockSumsAreExact(Enum formatValue)
    {
        var format = (ActivationFormat)formatValue;
        const int n = 32 * 40;
        var rng = new Random(3);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)KernelHarness.Gaussian(rng) * (i / 32 % 4 == 0 ? 1e-3f : 3f);
        x.AsSpan(64, 32).Clear();
        foreach (var level in new[] { IsaLevel.Scalar, IsaLevel.Portable })
        {
            var q = new sbyte[n];
            var d = new float[n / 32];
            var s = new float[n / 32];
            var sums = new int[n / 32];
            fixed (float* xp = x) fixed (sbyte* qp = q) fixed (float* dp = d) fixed (float* sp = s) fixed (int* cp = sums)
                ActivationQuantizer.Row(format, xp, n, qp, dp, sp, null, level, cp);
            for (int b = 0; b < n / 32; b++)
            {
                int sum = 0;
                float amax = 0;
                for (int j = 0; j < 32; j++) { sum += q[b * 32 + j]; amax = MathF.Max(amax, MathF.Abs(x[b * 32 + j])); }
                Assert.Equal(sum, sums[b]);
                // ggml's x86 quantize_row_q8_1: s = fp16(d·Σq) with the unrounded d = amax/127
                if (format == ActivationFormat.Q8_1) Assert.Equal((float)(Half)(amax / 127f * sum), s[b]);
            }
        }
    }
}
