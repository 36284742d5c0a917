using SharpInfer.Tensors;

namespace SharpInfer.Tests.Tensors;

public class HalfConversionTests
{
    [Fact]
    public void EveryHalfRoundTripsThroughFloat()
    {
        for (int h = 0; h < 65536; h++)
        {
            float f = Fp16.ToFloat((ushort)h);
            bool isNaN = (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0;
            if (isNaN)
            {
                Assert.True(float.IsNaN(f));
                Assert.Equal((ushort)((h & 0x8000) | 0x7E00), Fp16.FromFloat(f)); // ggml's canonical quiet NaN
            }
            else
            {
                Assert.Equal((ushort)h, Fp16.FromFloat(f));
            }
        }
    }

    [Fact]
    public void ToFloatIsExact()
    {
        Assert.Equal(1f, Fp16.ToFloat(0x3C00));
        Assert.Equal(65504f, Fp16.ToFloat(0x7BFF));
        Assert.Equal(MathF.Pow(2, -24), Fp16.ToFloat(0x0001)); // smallest subnormal
        Assert.Equal(MathF.Pow(2, -14) * (1023f / 1024f), Fp16.ToFloat(0x03FF)); // largest subnormal
        Assert.Equal(-2f, Fp16.ToFloat(0xC000));
        Assert.True(float.IsPositiveInfinity(Fp16.ToFloat(0x7C00)));
        Assert.Equal(0x80000000u, BitConverter.SingleToUInt32Bits(Fp16.ToFloat(0x8000)));
    }

    [Fact]
    public void FromFloatRoundsHalfwayCasesToEven()
    {
        // The midpoint between two adjacent finite halves has 12 significant bits, so it is an exact float;
        // it must go to the neighbour with an even mantissa. Points just off the midpoint go to the nearer.
        for (int h = 0; h < 0x7BFF; h++)
        {
            float lo = Fp16.ToFloat((ushort)h), hi = Fp16.ToFloat((ushort)(h + 1));
            float mid = (float)(((double)lo + hi) / 2);
            Assert.Equal((double)lo + hi, 2.0 * mid);
            ushort even = (h & 1) == 0 ? (ushort)h : (ushort)(h + 1);
            Assert.Equal(even, Fp16.FromFloat(mid));
            Assert.Equal((ushort)(even | 0x8000), Fp16.FromFloat(-mid));
            Assert.Equal((ushort)h, Fp16.FromFloat(BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(mid) - 1)));
            Assert.Equal((ushort)(h + 1), Fp16.FromFloat(BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(mid) + 1)));
        }
    }

    [Fact]
    public void FromFloatOverflowAndUnderflow()
    {
        Assert.Equal((ushort)0x7BFF, Fp16.FromFloat(65519.99f));
        Assert.Equal((ushort)0x7C00, Fp16.FromFloat(65520f)); // halfway to 2^16: even is infinity
        Assert.Equal((ushort)0x7C00, Fp16.FromFloat(1e10f));
        Assert.Equal((ushort)0xFC00, Fp16.FromFloat(float.NegativeInfinity));
        Assert.Equal((ushort)0x0000, Fp16.FromFloat(MathF.Pow(2, -25))); // halfway to the smallest subnormal: even is 0
        Assert.Equal((ushort)0x0001, Fp16.FromFloat(MathF.Pow(2, -25) * 1.0001f));
        Assert.Equal((ushort)0x8000, Fp16.FromFloat(-0f));
        Assert.Equal((ushort)0x7E00, Fp16.FromFloat(float.NaN) & 0x7FFF);
    }

    [Fact]
    public void Bf16IsTheTopHalfWithRoundToNearestEven()
    {
        var rng = new Random(3);
        for (int i = 0; i < 100_000; i++)
        {
            uint bits = (uint)rng.NextInt64(0, 1L << 32);
            float f = BitConverter.UInt32BitsToSingle(bits);
            ushort b = Bf16.FromFloat(f);
            Assert.Equal(BitConverter.UInt32BitsToSingle((uint)b << 16), Bf16.ToFloat(b));
            if (float.IsNaN(f))
            {
                Assert.True(float.IsNaN(Bf16.ToFloat(b)));
                Assert.Equal((ushort)((bits >> 16) | 0x40), b);
                continue;
            }
            // Round to nearest, ties to even, on the discarded low 16 bits (a carry may reach the exponent).
            uint lowBits = bits & 0xFFFF;
            uint expected = bits >> 16;
            if (lowBits > 0x8000 || (lowBits == 0x8000 && (expected & 1) == 1)) expected++;
            Assert.Equal((ushort)expected, b);
        }
        Assert.Equal((ushort)0x3F80, Bf16.FromFloat(BitConverter.UInt32BitsToSingle(0x3F808000))); // tie → even (down)
        Assert.Equal((ushort)0x3F82, Bf16.FromFloat(BitConverter.UInt32BitsToSingle(0x3F818000))); // tie → even (up)
    }

    [Fact]
    public unsafe void FiniteOnlyWideningIsExactForEveryFiniteHalf()
    {
        var halves = Enumerable.Range(0, 65536).Select(h => (ushort)h).Where(h => (h & 0x7C00) != 0x7C00).ToArray();
        var got = new float[halves.Length];
        foreach (var level in SharpInfer.Tests.Tensors.Kernels.KernelHarness.Levels())
        {
            fixed (ushort* hp = halves) fixed (float* gp = got)
                FloatConvert.HalfToSingle(hp, gp, halves.Length, level, finite: true);
            for (int i = 0; i < halves.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(Fp16.ToFloat(halves[i])) == BitConverter.SingleToInt32Bits(got[i]),
                    $"{level}: half 0x{halves[i]:X4} → {got[i]}, want {Fp16.ToFloat(halves[i])}");
        }
    }

    [Fact]
    public unsafe void AnyNonFiniteHalfFindsInfinitiesAndNaNsAnywhere()
    {
        var h = new ushort[37];
        for (int i = 0; i < h.Length; i++) h[i] = Fp16.FromFloat(i % 2 == 0 ? 65504f : -1e-7f);   // largest finite, a subnormal
        fixed (ushort* p = h) Assert.False(FloatConvert.AnyNonFiniteHalf(p, h.Length));
        foreach (ushort special in new ushort[] { 0x7C00, 0xFC00, 0x7E00, 0xFFFF, 0x7C01 })
            foreach (int at in new[] { 0, 7, 8, 31, 32, 36 })
            {
                var c = (ushort[])h.Clone();
                c[at] = special;
                fixed (ushort* p = c) Assert.True(FloatConvert.AnyNonFiniteHalf(p, c.Length), $"0x{special:X4} at {at}");
            }
    }
}
