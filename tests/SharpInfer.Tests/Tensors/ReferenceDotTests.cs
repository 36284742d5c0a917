using System.Runtime.InteropServices;
using SharpInfer.Tensors;
using static SharpInfer.Tests.Tensors.QuantTestUtil;

namespace SharpInfer.Tests.Tensors;

public class ReferenceDotTests
{
    public static TheoryData<Enum> WeightTypes() =>
    [
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
        GgmlType.Q8_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ4_NL,
        GgmlType.MXFP4,
    ];

    [Fact]
    public void ActivationTypesAreGgmlsVecDotTypes()
    {
        Assert.Equal(GgmlType.Q8_0, ReferenceDot.ActivationType(GgmlType.Q4_0));
        Assert.Equal(GgmlType.Q8_0, ReferenceDot.ActivationType(GgmlType.Q5_0));
        Assert.Equal(GgmlType.Q8_0, ReferenceDot.ActivationType(GgmlType.Q8_0));
        Assert.Equal(GgmlType.Q8_0, ReferenceDot.ActivationType(GgmlType.IQ4_NL));
        Assert.Equal(GgmlType.Q8_0, ReferenceDot.ActivationType(GgmlType.MXFP4));
        Assert.Equal(GgmlType.Q8_1, ReferenceDot.ActivationType(GgmlType.Q4_1));
        Assert.Equal(GgmlType.Q8_1, ReferenceDot.ActivationType(GgmlType.Q5_1));
        foreach (var t in new[] { GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K })
            Assert.Equal(GgmlType.Q8_K, ReferenceDot.ActivationType(t));
        foreach (var t in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16 })
            Assert.Equal(t, ReferenceDot.ActivationType(t));
        Assert.Throws<ArgumentException>(() => ReferenceDot.ActivationType(GgmlType.IQ2_XXS));
        Assert.Throws<ArgumentException>(() => ReferenceDot.ActivationType(GgmlType.Q8_K));
    }

    // ---------------------------------------------------------------------------------------------
    // 1. With power-of-two scales and small codes every float operation is exact, so ggml's arithmetic
    //    must equal the exact dot of the decoded values with no tolerance at all. This pins the integer
    //    part of each kernel (code unpacking, scale/min indexing, bsums) independently of rounding.
    // ---------------------------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void QuantizedActivationsIsExactWhenEveryStepIsExact(Enum wTypeValue)
    {
        var wType = (GgmlType)wTypeValue;
        const int n = 512;
        var rng = new Random(100 + (int)wType);
        byte[] w = RandomWeightsWithPowerOfTwoScales(wType, n, rng);
        var aType = ReferenceDot.ActivationType(wType);
        byte[] a = RandomActivationsWithPowerOfTwoScale(aType, n, rng);

        var wf = DequantizeRow(wType, w, n);
        var af = DequantizeRow(aType, a, n);
        // Everything is a multiple of 2^-7; exactness needs every partial sum below 2^24 such units.
        Assert.True(AbsDot(wf, af) * 128 < (1 << 24), "test data too large to be exact");
        double exact = Dot(wf, af);
        float got = ReferenceDot.QuantizedActivations(wType, w, a);
        Assert.Equal(exact, (double)got);
    }

    private static ushort H(float v) => Fp16.FromFloat(v);

    private static byte[] RandomWeightsWithPowerOfTwoScales(GgmlType type, int n, Random rng)
    {
        var bytes = new byte[GgmlTypeInfo.RowSize(type, n)];
        rng.NextBytes(bytes);
        const float d = 1f / 16, dmin = 1f / 16;
        switch (type)
        {
            case GgmlType.F32:
            case GgmlType.F16:
            case GgmlType.BF16:
            {
                var v = new float[n];
                for (int i = 0; i < n; i++) v[i] = rng.Next(-64, 65) * d;
                Quantize.Row(type, v, bytes);
                break;
            }
            case GgmlType.Q4_0: foreach (ref var b in MemoryMarshal.Cast<byte, BlockQ4_0>(bytes.AsSpan())) b.D = H(d); break;
            case GgmlType.Q5_0: foreach (ref var b in MemoryMarshal.Cast<byte, BlockQ5_0>(bytes.AsSpan())) b.D = H(d); break;
            case GgmlType.MXFP4: foreach (ref var b in MemoryMarshal.Cast<byte, BlockMXFP4>(bytes.AsSpan())) b.E = 124; break; // 2^-4
            case GgmlType.IQ4_NL: foreach (ref var b in MemoryMarshal.Cast<byte, BlockIQ4_NL>(bytes.AsSpan())) b.D = H(d); break;
            case GgmlType.Q8_0: foreach (ref var b in MemoryMarshal.Cast<byte, BlockQ8_0>(bytes.AsSpan())) b.D = H(d); break;
            case GgmlType.Q4_1:
                foreach (ref var b in MemoryMarshal.Cast<byte, BlockQ4_1>(bytes.AsSpan())) { b.D = H(d); b.M = H(-rng.Next(0, 9) * d); }
                break;
            case GgmlType.Q5_1:
                foreach (ref var b in MemoryMarshal.Cast<byte, BlockQ5_1>(bytes.AsSpan())) { b.D = H(d); b.M = H(-rng.Next(0, 17) * d); }
                break;
            case GgmlType.Q2_K: foreach (ref var b in MemoryMarshal.Cast<byte, BlockQ2_K>(bytes.AsSpan())) { b.D = H(d); b.DMin = H(dmin); } break;
            case GgmlType.Q3_K: foreach (ref var b in MemoryMarshal.Cast<byte, BlockQ3_K>(bytes.AsSpan())) b.D = H(d); break;
            case GgmlType.Q4_K: foreach (ref var b in MemoryMarshal.Cast<byte, BlockQ4_K>(bytes.AsSpan())) { b.D = H(d); b.DMin = H(dmin); } break;
            case GgmlType.Q5_K: foreach (ref var b in MemoryMarshal.Cast<byte, BlockQ5_K>(bytes.AsSpan())) { b.D = H(d); b.DMin = H(dmin); } break;
            case GgmlType.Q6_K: foreach (ref var b in MemoryMarshal.Cast<byte, BlockQ6_K>(bytes.AsSpan())) b.D = H(d); break;
            default: throw new ArgumentException(type.ToString());
        }
        return bytes;
    }

    private static byte[] RandomActivationsWithPowerOfTwoScale(GgmlType type, int n, Random rng)
    {
        const float d = 1f / 8;
        const int r = 4; // codes in [−r, r]
        var bytes = new byte[GgmlTypeInfo.RowSize(type, n)];
        switch (type)
        {
            case GgmlType.F32:
            case GgmlType.F16:
            case GgmlType.BF16:
            {
                var v = new float[n];
                for (int i = 0; i < n; i++) v[i] = rng.Next(-r, r + 1) * d;
                Quantize.Row(type, v, bytes);
                break;
            }
            case GgmlType.Q8_0:
                foreach (ref var b in MemoryMarshal.Cast<byte, BlockQ8_0>(bytes.AsSpan()))
                {
                    b.D = H(d);
                    Span<sbyte> qs = b.Qs;
                    for (int i = 0; i < qs.Length; i++) qs[i] = (sbyte)rng.Next(-r, r + 1);
                }
                break;
            case GgmlType.Q8_1:
                foreach (ref var b in MemoryMarshal.Cast<byte, BlockQ8_1>(bytes.AsSpan()))
                {
                    b.D = H(d);
                    Span<sbyte> qs = b.Qs;
                    int sum = 0;
                    for (int i = 0; i < qs.Length; i++) sum += qs[i] = (sbyte)rng.Next(-r, r + 1);
                    b.S = H(sum * d);
                }
                break;
            case GgmlType.Q8_K:
                foreach (ref var b in MemoryMarshal.Cast<byte, BlockQ8_K>(bytes.AsSpan()))
                {
                    b.D = d;
                    Span<sbyte> qs = b.Qs;
                    Span<short> bsums = b.BSums;
                    for (int i = 0; i < qs.Length; i++) qs[i] = (sbyte)rng.Next(-r, r + 1);
                    for (int j = 0; j < 16; j++)
                    {
                        int s = 0;
                        for (int i = 0; i < 16; i++) s += qs[16 * j + i];
                        bsums[j] = (short)s;
                    }
                }
                break;
            default: throw new ArgumentException(type.ToString());
        }
        return bytes;
    }

    // ---------------------------------------------------------------------------------------------
    // 2. Realistic data: ggml's arithmetic vs the double-precision dot of the decoded weights and decoded
    //    activations (only float rounding differs), and vs the original float activations (the
    //    activation quantization error is added).
    // ---------------------------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void QuantizedActivationsMatchesDoubleDotOfDecodedValues(Enum wTypeValue)
    {
        var wType = (GgmlType)wTypeValue;
        const int n = 2048;
        var wSrc = Gaussian(200 + (int)wType, n, 0.05f);
        var x = Gaussian(300 + (int)wType, n, 2f);
        var w = QuantizeRow(wType, wSrc);
        var wf = DequantizeRow(wType, w, n);
        var aType = ReferenceDot.ActivationType(wType);
        var a = QuantizeRow(aType, x);
        var af = DequantizeRow(aType, a, n);

        float got = ReferenceDot.QuantizedActivations(wType, w, a);

        // Float rounding: a weight is a few roundings of components whose size is at most |w| + 2·|offset|;
        // the partial sums are added in float across blocks (and 8 lanes for K-quants).
        var offsets = OffsetMagnitudes(wType, w, n);
        double mag = 0;
        for (int i = 0; i < n; i++) mag += (Math.Abs(wf[i]) + 2 * offsets[i]) * Math.Abs(af[i]);
        int steps = n / Math.Max(32, GgmlTypeInfo.BlockSize(wType)) + 16;
        double tolFloat = steps * U * mag;
        double tol = tolFloat + Q8_1SumTolerance(wType, w, a);
        double exactDecoded = Dot(wf, af);
        Assert.True(Math.Abs(got - exactDecoded) <= tol, $"{wType}: ggml arithmetic {got}, exact {exactDecoded}, tol {tol}");
        // Not vacuous: the rounding tolerance is far below the size of the result.
        Assert.True(tolFloat < 1e-3 * Math.Max(Math.Abs(exactDecoded), AbsDot(wf, af) / 10), $"{wType}: tolerance {tolFloat} too loose");

        // Against the unquantized activations: each activation moved by at most one quantization step.
        double qerr = 0;
        for (int i = 0; i < n; i++) qerr += Math.Abs(wf[i]) * ActivationStep(aType, x, i);
        double exactFloat = Dot(wf, x);
        Assert.True(Math.Abs(got - exactFloat) <= tol + qerr, $"{wType}: ggml arithmetic {got}, float activations {exactFloat}, bound {tol + qerr}");
    }

    /// <summary>Per element, |offset| of the weight's affine decode (m, or dmin·m_j), 0 for symmetric types.</summary>
    private static double[] OffsetMagnitudes(GgmlType type, byte[] w, int n)
    {
        var o = new double[n];
        switch (type)
        {
            case GgmlType.Q4_1:
            {
                var b = MemoryMarshal.Cast<byte, BlockQ4_1>(w);
                for (int i = 0; i < n; i++) o[i] = Math.Abs(Fp16.ToFloat(b[i / 32].M));
                break;
            }
            case GgmlType.Q5_1:
            {
                var b = MemoryMarshal.Cast<byte, BlockQ5_1>(w);
                for (int i = 0; i < n; i++) o[i] = Math.Abs(Fp16.ToFloat(b[i / 32].M));
                break;
            }
            case GgmlType.Q2_K:
            {
                var b = MemoryMarshal.Cast<byte, BlockQ2_K>(w);
                for (int i = 0; i < n; i++)
                {
                    ReadOnlySpan<byte> sc = b[i / 256].Scales;
                    o[i] = Math.Abs(Fp16.ToFloat(b[i / 256].DMin) * (sc[(i % 256) / 16] >> 4));
                }
                break;
            }
            case GgmlType.Q4_K:
            {
                var b = MemoryMarshal.Cast<byte, BlockQ4_K>(w);
                for (int i = 0; i < n; i++) o[i] = Math.Abs(Fp16.ToFloat(b[i / 256].DMin) * KScales.Get(b[i / 256].Scales, (i % 256) / 32).Min);
                break;
            }
            case GgmlType.Q5_K:
            {
                var b = MemoryMarshal.Cast<byte, BlockQ5_K>(w);
                for (int i = 0; i < n; i++) o[i] = Math.Abs(Fp16.ToFloat(b[i / 256].DMin) * KScales.Get(b[i / 256].Scales, (i % 256) / 32).Min);
                break;
            }
        }
        return o;
    }

    /// <summary>Q4_1/Q5_1 use m·s with s = fp16(Σq·d) (float d) instead of Σ m·(q·fp16(d)): a real
    /// difference of ggml's arithmetic, not float noise. The two fp16 roundings (of s and of d) contribute
    /// at most 2^-11 relative each, plus the decoded values' own rounding.</summary>
    private static double Q8_1SumTolerance(GgmlType wType, byte[] w, byte[] a)
    {
        if (wType is not (GgmlType.Q4_1 or GgmlType.Q5_1)) return 0;
        var ab = MemoryMarshal.Cast<byte, BlockQ8_1>(a);
        double tol = 0;
        for (int b = 0; b < ab.Length; b++)
        {
            float m = wType == GgmlType.Q4_1 ? Fp16.ToFloat(MemoryMarshal.Cast<byte, BlockQ4_1>(w)[b].M)
                                             : Fp16.ToFloat(MemoryMarshal.Cast<byte, BlockQ5_1>(w)[b].M);
            ReadOnlySpan<sbyte> qs = ab[b].Qs;
            int sum = 0, sumAbs = 0;
            foreach (sbyte q in qs) { sum += q; sumAbs += Math.Abs(q); }
            double dh = Fp16.ToFloat(ab[b].D);
            tol += Math.Abs(m) * (Math.Abs(sum) * dh * Math.Pow(2, -10) * 1.01 + 2 * U * sumAbs * dh);
        }
        return tol;
    }

    /// <summary>A bound on |x − decoded(x)| for element i quantized to <paramref name="aType"/>.</summary>
    private static double ActivationStep(GgmlType aType, float[] x, int i)
    {
        switch (aType)
        {
            case GgmlType.F32: return 0;
            case GgmlType.F16: return Math.Abs(x[i]) * Math.Pow(2, -11) + Math.Pow(2, -25);
            case GgmlType.BF16: return Math.Abs(x[i]) * Math.Pow(2, -8);
            case GgmlType.Q8_0:
            case GgmlType.Q8_1:
            case GgmlType.Q8_K:
            {
                int qk = GgmlTypeInfo.BlockSize(aType);
                double amax = 0;
                for (int j = i / qk * qk; j < (i / qk + 1) * qk; j++) amax = Math.Max(amax, Math.Abs(x[j]));
                // Half a step (amax/127/2) plus, for the fp16 scale, 127·|d − fp16(d)| ≤ 127·2^-11·d: under one step.
                return amax / 127;
            }
            default: throw new ArgumentException(aType.ToString());
        }
    }

    // ---------------------------------------------------------------------------------------------
    // 3. The exact path.
    // ---------------------------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void F32ActivationsIsTheFloatDotOfDequantizedWeights(Enum wTypeValue)
    {
        var wType = (GgmlType)wTypeValue;
        const int n = 2048;
        var w = QuantizeRow(wType, Gaussian(400 + (int)wType, n, 0.05f));
        var x = Gaussian(500 + (int)wType, n, 2f);
        var wf = DequantizeRow(wType, w, n);
        float got = ReferenceDot.F32Activations(wType, w, x);

        // The documented order, bit for bit: float partial sums per group, then groups added in float.
        int group = GgmlTypeInfo.BlockSize(wType) == 1 ? ReferenceDot.FloatGroup : GgmlTypeInfo.BlockSize(wType);
        float total = 0f;
        for (int s = 0; s < n; s += group)
        {
            float partial = 0f;
            for (int i = s; i < s + group; i++) partial += wf[i] * x[i];
            total += partial;
        }
        Assert.Equal(BitConverter.SingleToUInt32Bits(total), BitConverter.SingleToUInt32Bits(got));

        // And within the standard float summation bound of the exact dot: (group + groups)·u·Σ|w·x|.
        double tol = (group + n / group + 2) * U * AbsDot(wf, x);
        Assert.True(Math.Abs(got - Dot(wf, x)) <= tol, $"{wType}: {got} vs {Dot(wf, x)}, tol {tol}");
    }

    [Fact]
    public void F32ActivationsHandlesARaggedFloatRow()
    {
        var x = Gaussian(1, 45);
        var w = QuantizeRow(GgmlType.F32, Gaussian(2, 45));
        double exact = Dot(MemoryMarshal.Cast<byte, float>(w), x);
        Assert.True(Math.Abs(ReferenceDot.F32Activations(GgmlType.F32, w, x) - exact) <= 80 * U * AbsDot(MemoryMarshal.Cast<byte, float>(w), x));
    }

    // ---------------------------------------------------------------------------------------------
    // 4. Argument checking.
    // ---------------------------------------------------------------------------------------------

    [Fact]
    public void BadLengthsAndTypesThrow()
    {
        var q40 = new byte[18 * 2];
        Assert.Throws<ArgumentException>(() => ReferenceDot.F32Activations(GgmlType.Q4_0, q40, new float[63]));
        Assert.Throws<ArgumentException>(() => ReferenceDot.F32Activations(GgmlType.Q4_0, q40.AsSpan(1), new float[64]));
        Assert.Throws<ArgumentException>(() => ReferenceDot.QuantizedActivations(GgmlType.Q4_0, q40, new byte[34]));
        Assert.Throws<ArgumentException>(() => ReferenceDot.QuantizedActivations(GgmlType.Q4_1, q40, new byte[36 * 2]));
        Assert.Throws<ArgumentException>(() => ReferenceDot.QuantizedActivations(GgmlType.IQ2_XXS, new byte[66], new byte[292]));
        Assert.Throws<ArgumentException>(() => ReferenceDot.QuantizedActivations(GgmlType.F16, new byte[8], new byte[6]));
        Assert.Throws<ArgumentException>(() => Dequantize.Row(GgmlType.Q4_0, q40, new float[32]));
        Assert.Throws<ArgumentException>(() => Dequantize.Row(GgmlType.Q4_K, new byte[144], new float[255]));
        Assert.Throws<ArgumentException>(() => Dequantize.Row(GgmlType.IQ2_XXS, new byte[66], new float[256]));
        Assert.Throws<ArgumentException>(() => Dequantize.Row(GgmlType.F16, new byte[7], new float[4]));
        Assert.Throws<ArgumentException>(() => Quantize.Row(GgmlType.Q8_K, new float[256], new byte[291]));
        Assert.Throws<ArgumentException>(() => Quantize.Row(GgmlType.Q6_K, new float[128], new byte[105]));
        Assert.Throws<ArgumentException>(() => Quantize.Row(GgmlType.IQ4_XS, new float[256], new byte[136]));
        Assert.False(Dequantize.IsSupported(GgmlType.IQ2_XXS));
        Assert.False(Quantize.IsSupported(GgmlType.IQ4_XS));
    }
}
