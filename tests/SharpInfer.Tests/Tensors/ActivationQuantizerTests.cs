using System.Runtime.InteropServices;
using SharpInfer.Tensors;
using static SharpInfer.Tests.Tensors.QuantTestUtil;

namespace SharpInfer.Tests.Tensors;

/// <summary>Q8_0, Q8_1 and Q8_K checked from first principles (ggml's rules), on seeded random rows that
/// include awkward blocks: all zero, a single spike, tiny and huge magnitudes, a positive or negative extreme.</summary>
public class ActivationQuantizerTests
{
    /// <summary>n elements in blocks of <paramref name="qk"/>, each block with its own character.</summary>
    private static float[] TrickyRow(int seed, int n, int qk)
    {
        var x = Gaussian(seed, n);
        var rng = new Random(seed + 1000);
        for (int b = 0; b < n / qk; b++)
        {
            var blk = x.AsSpan(b * qk, qk);
            switch (b % 6)
            {
                case 0: blk.Clear(); break;                                        // all zero
                case 1: blk.Clear(); blk[rng.Next(qk)] = -3.25f; break;            // a single negative spike
                case 2: for (int i = 0; i < qk; i++) blk[i] *= 1e-6f; break;       // tiny
                case 3: for (int i = 0; i < qk; i++) blk[i] *= 1e4f; break;        // large
                case 4: blk[rng.Next(qk)] = 50f; break;                            // positive outlier
                default: break;                                                    // plain N(0,1)
            }
        }
        return x;
    }

    [Fact]
    public void Q8_0FollowsGgmlsRules()
    {
        const int n = 32 * 60;
        var x = TrickyRow(11, n, 32);
        var q = QuantizeRow(GgmlType.Q8_0, x);
        var blocks = MemoryMarshal.Cast<byte, BlockQ8_0>(q);
        var y = DequantizeRow(GgmlType.Q8_0, q, n);
        for (int b = 0; b < blocks.Length; b++)
        {
            var xb = x.AsSpan(b * 32, 32);
            float amax = 0f;
            foreach (float v in xb) amax = Math.Max(amax, MathF.Abs(v));
            float d = amax / 127f;
            Assert.Equal(Fp16.FromFloat(d), blocks[b].D); // scale = amax/127, stored as fp16
            ReadOnlySpan<sbyte> qs = blocks[b].Qs;
            if (amax == 0f)
            {
                foreach (sbyte v in qs) Assert.Equal(0, v);
                continue;
            }
            float dh = Fp16.ToFloat(blocks[b].D);
            int iMax = xb.IndexOf(xb.ToArray().MaxBy(MathF.Abs));
            Assert.Equal(127, Math.Abs((int)qs[iMax])); // the extreme value lands on ±127
            for (int i = 0; i < 32; i++)
            {
                Assert.InRange(qs[i], -127, 127);
                Assert.Equal(Math.Sign(xb[i]), Math.Sign(qs[i]) == 0 ? Math.Sign(xb[i]) : Math.Sign(qs[i]));
                // |x − dh·q| ≤ d/2 (rounding) + 127·|d − dh| (fp16 scale), with a hair for x·id's own rounding.
                double bound = 0.5 * d * (1 + 1e-5) + 127 * Math.Abs(d - dh);
                Assert.True(Math.Abs(xb[i] - y[b * 32 + i]) <= bound, $"block {b} elt {i}: {xb[i]} vs {y[b * 32 + i]}");
            }
        }
    }

    [Fact]
    public void Q8_1HasQ8_0sCodesAndSumTimesD()
    {
        const int n = 32 * 60;
        var x = TrickyRow(12, n, 32);
        var q0 = MemoryMarshal.Cast<byte, BlockQ8_0>(QuantizeRow(GgmlType.Q8_0, x));
        var q1 = MemoryMarshal.Cast<byte, BlockQ8_1>(QuantizeRow(GgmlType.Q8_1, x));
        for (int b = 0; b < q1.Length; b++)
        {
            ReadOnlySpan<sbyte> c0 = q0[b].Qs, c1 = q1[b].Qs;
            Assert.True(c0.SequenceEqual(c1));
            Assert.Equal(q0[b].D, q1[b].D);
            int sum = 0;
            foreach (sbyte v in c1) sum += v;
            float amax = 0f;
            foreach (float v in x.AsSpan(b * 32, 32)) amax = Math.Max(amax, MathF.Abs(v));
            // s = fp16(Σq · d) with the float d = amax/127, not the fp16-rounded one.
            Assert.Equal(Fp16.FromFloat(sum * (amax / 127f)), q1[b].S);
            if (amax == 0f) Assert.Equal(0f, Fp16.ToFloat(q1[b].S));
        }
    }

    [Fact]
    public void Q8_KFollowsGgmlsRules()
    {
        const int n = 256 * 12;
        var x = TrickyRow(13, n, 256);
        var q = QuantizeRow(GgmlType.Q8_K, x);
        var blocks = MemoryMarshal.Cast<byte, BlockQ8_K>(q);
        var y = DequantizeRow(GgmlType.Q8_K, q, n);
        for (int b = 0; b < blocks.Length; b++)
        {
            var xb = x.AsSpan(b * 256, 256);
            ReadOnlySpan<sbyte> qs = blocks[b].Qs;
            ReadOnlySpan<short> bsums = blocks[b].BSums;
            for (int j = 0; j < 16; j++)
            {
                int s = 0;
                for (int i = 0; i < 16; i++) s += qs[16 * j + i];
                Assert.Equal(s, bsums[j]);
            }
            float max = 0f, amax = 0f;
            foreach (float v in xb) if (MathF.Abs(v) > amax) { amax = MathF.Abs(v); max = v; }
            if (amax == 0f)
            {
                Assert.Equal(0f, blocks[b].D);
                foreach (sbyte v in qs) Assert.Equal(0, v);
                continue;
            }
            // d is a float, 1/(−127/max): negative when the extreme value is positive (codes are negated).
            float d = 1f / (-127f / max);
            Assert.Equal(BitConverter.SingleToUInt32Bits(d), BitConverter.SingleToUInt32Bits(blocks[b].D));
            Assert.Equal(-Math.Sign(max), Math.Sign(blocks[b].D));
            Assert.Equal(-127, qs[xb.IndexOf(max)]); // the extreme value always maps to −127; d carries the sign
            for (int i = 0; i < 256; i++)
            {
                Assert.InRange(qs[i], -127, 127);
                Assert.True(Math.Abs(xb[i] - y[b * 256 + i]) <= 0.5 * Math.Abs(d) * (1 + 1e-5), $"block {b} elt {i}");
            }
        }
    }

    [Fact]
    public void Q8_0RoundsHalfAwayFromZeroButQ8_KRoundsHalfToEven()
    {
        // amax = 127 makes d = 1 exactly (and Q8_K's iscale = −127/−127 = 1), so x·id is x itself.
        var x = new float[256];
        x[0] = -127f;
        x[1] = 2.5f; x[2] = -2.5f; x[3] = 3.5f; x[4] = 0.5f; x[5] = -0.5f; x[6] = 1.5f;
        var q80 = MemoryMarshal.Cast<byte, BlockQ8_0>(QuantizeRow(GgmlType.Q8_0, x));
        ReadOnlySpan<sbyte> a = q80[0].Qs;
        Assert.Equal(new sbyte[] { -127, 3, -3, 4, 1, -1, 2 }, a[..7].ToArray());       // C roundf
        var q8k = MemoryMarshal.Cast<byte, BlockQ8_K>(QuantizeRow(GgmlType.Q8_K, x));
        ReadOnlySpan<sbyte> k = q8k[0].Qs;
        Assert.Equal(1f, q8k[0].D);
        Assert.Equal(new sbyte[] { -127, 2, -2, 4, 0, 0, 2 }, k[..7].ToArray());         // nearest_int: ties to even
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q8_1)]
    [InlineData(GgmlType.Q8_K)]
    public void AllZeroRowsGiveAllZeroBytes(Enum typeValue)
    {
        var type = (GgmlType)typeValue;
        var x = new float[512];
        var q = QuantizeRow(type, x);
        Assert.All(q, b => Assert.Equal(0, b));
    }
}
