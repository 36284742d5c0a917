using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// Quantizes activation rows to 8 bits exactly as llama.cpp's x86 build does, so the integer dot products see
/// the same values ggml's do:
/// <list type="bullet">
/// <item>Q8_0/Q8_1 (ggml's AVX2 quantize_row_q8_0/q8_1): d = amax/127 stored as f16; values = round-half-even(x · 127/amax).
/// Q8_1 adds s = f16(d · Σq) with the unrounded d. Optionally the exact Σq of each block (for offset weight formats).</item>
/// <item>Q8_K (ggml's quantize_row_q8_K_ref): the element of largest magnitude, max, gives iscale = -127/max; values =
/// min(127, round-half-even(iscale · x)); d = 1/iscale (a float); bsums = sums of each 16 values.</item>
/// </list>
/// </summary>
internal static unsafe class ActivationQuantizer
{
    public static int BlockSize(ActivationFormat f) => f == ActivationFormat.Q8_K ? 256 : 32;

    /// <summary>Quantizes one row of <paramref name="n"/> floats. <paramref name="sums"/> (Q8_0/Q8_1, optional) receives
    /// each block's exact integer Σq.</summary>
    public static void Row(ActivationFormat f, float* x, int n, sbyte* q, float* d, float* s, short* bsums, IsaLevel level, int* sums = null)
    {
        switch (f)
        {
            case ActivationFormat.Q8_0:
            case ActivationFormat.Q8_1:
                for (int b = 0; b < n / 32; b++)
                {
                    sbyte* qb = q + b * 32;
                    float dRaw = level >= IsaLevel.Portable ? Q8_0BlockVector(x + b * 32, qb) : Q8_0BlockScalarRaw(x + b * 32, qb);
                    d[b] = (float)(Half)dRaw;
                    if (f == ActivationFormat.Q8_1 || sums != null)
                    {
                        int sum = level >= IsaLevel.Portable ? SumVector(qb) : SumScalar(qb);
                        if (sums != null) sums[b] = sum;
                        // ggml's x86 quantize_row_q8_1: s = fp16(d·Σq) with the float d = amax/127, not the fp16-rounded one
                        if (f == ActivationFormat.Q8_1) s[b] = (float)(Half)(dRaw * sum);
                    }
                }
                break;
            case ActivationFormat.Q8_K:
                for (int b = 0; b < n / 256; b++)
                    d[b] = level >= IsaLevel.Portable ? Q8_KBlockVector(x + b * 256, q + b * 256, bsums + b * 16) : Q8_KBlock(x + b * 256, q + b * 256, bsums + b * 16);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(f));
        }
    }

    private static int SumScalar(sbyte* q)
    {
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += q[j];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SumVector(sbyte* q)
    {
        var (lo, hi) = Vector256.Widen(Vector256.Load(q));
        return Vector256.Sum(lo + hi);  // |Σ| <= 32·127: no int16 overflow
    }

    /// <summary>Scalar reference of ggml's x86 Q8_0 block quantization. Returns the scale as the dot product uses it
    /// (f16-rounded, back to float).</summary>
    public static float Q8_0BlockScalar(float* x, sbyte* q) => (float)(Half)Q8_0BlockScalarRaw(x, q);

    /// <summary>Quantizes the block; returns the unrounded d = amax/127.</summary>
    private static float Q8_0BlockScalarRaw(float* x, sbyte* q)
    {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
        float d = amax / 127f;
        float id = amax != 0f ? 127f / amax : 0f;
        for (int j = 0; j < 32; j++) q[j] = (sbyte)(int)MathF.Round(x[j] * id, MidpointRounding.ToEven);
        return d;
    }

    /// <summary>Vector form of <see cref="Q8_0BlockScalarRaw"/> (same values).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Q8_0BlockVector(float* x, sbyte* q)
    {
        var v0 = Vector256.Load(x);
        var v1 = Vector256.Load(x + 8);
        var v2 = Vector256.Load(x + 16);
        var v3 = Vector256.Load(x + 24);
        var m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
        var m128 = Vector128.Max(m.GetLower(), m.GetUpper());
        float amax = MathF.Max(MathF.Max(m128[0], m128[1]), MathF.Max(m128[2], m128[3]));
        float d = amax / 127f;
        var id = Vector256.Create(amax != 0f ? 127f / amax : 0f);
        var i0 = Vector256.ConvertToInt32(Vector256.Round(v0 * id));
        var i1 = Vector256.ConvertToInt32(Vector256.Round(v1 * id));
        var i2 = Vector256.ConvertToInt32(Vector256.Round(v2 * id));
        var i3 = Vector256.ConvertToInt32(Vector256.Round(v3 * id));
        var s01 = Vector256.Narrow(i0, i1);   // values are within [-127, 127]: narrowing is exact
        var s23 = Vector256.Narrow(i2, i3);
        Vector256.Store(Vector256.Narrow(s01, s23), q);
        return d;
    }

    /// <summary>ggml's quantize_row_q8_K_ref for one block of 256. Returns d.</summary>
    public static float Q8_KBlock(float* x, sbyte* q, short* bsums)
    {
        float max = 0, amax = 0;
        for (int j = 0; j < 256; j++)
        {
            float ax = MathF.Abs(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (amax == 0f)
        {
            new Span<sbyte>(q, 256).Clear();
            new Span<short>(bsums, 16).Clear();
            return 0f;
        }
        float iscale = -127f / max;
        for (int j = 0; j < 256; j++)
        {
            int v = NearestInt(iscale * x[j]);
            q[j] = (sbyte)Math.Min(127, v);
        }
        for (int g = 0; g < 16; g++)
        {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += q[g * 16 + j];
            bsums[g] = (short)sum;
        }
        return 1f / iscale;
    }

    /// <summary>Vector form of <see cref="Q8_KBlock"/> with the same results bit for bit: the same signed extreme (first
    /// element of largest magnitude), the same iscale, products and round-half-even (Vector256.Round is exact
    /// nearest-even like nearest_int for these magnitudes). Blocks that are all zero or hold NaN/∞ go to the scalar code.</summary>
    private static float Q8_KBlockVector(float* x, sbyte* q, short* bsums)
    {
        var m = Vector256.Abs(Vector256.Load(x));
        var ok = Vector256.Equals(m, m);                       // false in NaN lanes
        for (int j = 8; j < 256; j += 8)
        {
            var a = Vector256.Abs(Vector256.Load(x + j));
            ok &= Vector256.Equals(a, a);
            m = Vector256.Max(m, a);
        }
        var m4 = Vector128.Max(m.GetLower(), m.GetUpper());
        float amax = MathF.Max(MathF.Max(m4[0], m4[1]), MathF.Max(m4[2], m4[3]));
        if (!(amax > 0f) || !float.IsFinite(amax) || ok.AsUInt32() != Vector256<uint>.AllBitsSet) return Q8_KBlock(x, q, bsums);
        int first = 0;
        var target = Vector256.Create(amax);
        for (int j = 0; j < 256; j += 8)
        {
            uint hits = Vector256.Equals(Vector256.Abs(Vector256.Load(x + j)), target).ExtractMostSignificantBits();
            if (hits != 0) { first = j + System.Numerics.BitOperations.TrailingZeroCount(hits); break; }
        }
        float iscale = -127f / x[first];
        var vs = Vector256.Create(iscale);
        var cap = Vector256.Create(127);
        for (int j = 0; j < 256; j += 32)
        {
            var i0 = Vector256.Min(Vector256.ConvertToInt32(Vector256.Round(vs * Vector256.Load(x + j))), cap);
            var i1 = Vector256.Min(Vector256.ConvertToInt32(Vector256.Round(vs * Vector256.Load(x + j + 8))), cap);
            var i2 = Vector256.Min(Vector256.ConvertToInt32(Vector256.Round(vs * Vector256.Load(x + j + 16))), cap);
            var i3 = Vector256.Min(Vector256.ConvertToInt32(Vector256.Round(vs * Vector256.Load(x + j + 24))), cap);
            bsums[j / 16] = (short)Vector256.Sum(i0 + i1);
            bsums[j / 16 + 1] = (short)Vector256.Sum(i2 + i3);
            // values are within [-127, 127] (|iscale·x| <= 127 up to rounding): narrowing is exact
            Vector256.Store(Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)), q + j);
        }
        return 1f / iscale;
    }

    /// <summary>ggml's nearest_int: round half to even through the float magic-number trick (|v| &lt; 2^22).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NearestInt(float v)
    {
        float t = v + 12582912f;
        return (BitConverter.SingleToInt32Bits(t) & 0x007fffff) - 0x00400000;
    }
}
