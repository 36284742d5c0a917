using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

// Q4_K: 256 weights in 8 sub-blocks of 32; w = d·sc_j·q − dmin·m_j with 6-bit sc/m and 4-bit q.
// qs is four 32-byte groups; group g holds elements 64g..64g+31 in its low nibbles and 64g+32..64g+63 in
// its high nibbles. The 6-bit scales/mins are packed into 12 bytes (shared with Q5_K, see KScales).

/// <summary>The 12-byte packing of eight 6-bit scales and eight 6-bit mins used by Q4_K and Q5_K
/// (ggml's get_scale_min_k4): for j &lt; 4, sc_j = b[j] &amp; 63 and m_j = b[j+4] &amp; 63; for j ≥ 4, the low
/// four bits come from b[j+4] (sc in the low nibble, m in the high nibble) and the top two bits from the
/// spare top bits of b[j−4] (sc) and b[j] (m).</summary>
internal static class KScales
{
    public static (int Scale, int Min) Get(ReadOnlySpan<byte> q, int j)
    {
        if (j < 4) return (q[j] & 63, q[j + 4] & 63);
        return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }

    /// <summary>Inverse of <see cref="Get"/> for 8 scales and mins already in [0, 63].</summary>
    public static void Pack(ReadOnlySpan<byte> scales, ReadOnlySpan<byte> mins, Span<byte> q)
    {
        q[..12].Clear();
        for (int j = 0; j < 8; j++)
        {
            int ls = scales[j], lm = mins[j];
            if (j < 4)
            {
                q[j] = (byte)ls;
                q[j + 4] = (byte)lm;
            }
            else
            {
                q[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                q[j - 4] |= (byte)((ls >> 4) << 6);
                q[j] |= (byte)((lm >> 4) << 6);
            }
        }
    }

    /// <summary>The shared scale/min selection of quantize_row_q4_K_ref and q5_K_ref: per 32-element
    /// sub-block, make_qkx2_quants with weights av_x + |x| (av_x = RMS of the sub-block) and squared error;
    /// then scales and mins quantized to 6 bits against their maxima, d = max_scale/63, dmin = max_min/63.</summary>
    internal static void Choose(ReadOnlySpan<float> x, int nmax, float rmin, float rdelta, int nstep, Span<byte> codes,
        Span<byte> packed, out ushort dBits, out ushort dminBits)
    {
        Span<byte> aux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> scales = stackalloc float[8];
        Span<float> mins = stackalloc float[8];
        float maxScale = 0f, maxMin = 0f;
        for (int j = 0; j < 8; j++)
        {
            var xs = x.Slice(32 * j, 32);
            float sumX2 = 0f;
            for (int l = 0; l < 32; l++) sumX2 += xs[l] * xs[l];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + MathF.Abs(xs[l]);
            scales[j] = KQuantSearch.MakeQkx2Quants(xs, weights, nmax, codes.Slice(32 * j, 32), out mins[j], aux, rmin, rdelta, nstep, false);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }

        float invScale = maxScale > 0f ? 63f / maxScale : 0f;
        float invMin = maxMin > 0f ? 63f / maxMin : 0f;
        Span<byte> ls = stackalloc byte[8];
        Span<byte> lm = stackalloc byte[8];
        for (int j = 0; j < 8; j++)
        {
            // ggml assigns nearest_int to a uint8_t before capping at 63.
            ls[j] = Math.Min((byte)63, (byte)QuantMath.NearestInt(invScale * scales[j]));
            lm[j] = Math.Min((byte)63, (byte)QuantMath.NearestInt(invMin * mins[j]));
        }
        Pack(ls, lm, packed);
        dBits = Fp16.FromFloat(maxScale / 63f);
        dminBits = Fp16.FromFloat(maxMin / 63f);

        // Final codes from the stored (fp16, 6-bit) values; a zero scale keeps the search's codes.
        float d0 = Fp16.ToFloat(dBits), m0 = Fp16.ToFloat(dminBits);
        for (int j = 0; j < 8; j++)
        {
            var (sc, m) = Get(packed, j);
            float d = d0 * sc;
            if (d == 0f) continue;
            float dm = m0 * m;
            for (int ii = 0; ii < 32; ii++)
            {
                int l = QuantMath.NearestInt((x[32 * j + ii] + dm) / d);
                codes[32 * j + ii] = (byte)Math.Max(0, Math.Min(nmax, l));
            }
        }
    }
}

/// <summary>ggml's block_q4_K (144 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ4_K
{
    public const int QK = 256, Size = 144, OffsetD = 0, OffsetDMin = 2, OffsetScales = 4, OffsetQs = 16;
    public ushort D;
    public ushort DMin;
    /// <summary>Eight 6-bit scales and mins, see <see cref="KScales"/>.</summary>
    public Bytes12 Scales;
    public Bytes128 Qs;

    /// <summary>The 4-bit code of element <paramref name="e"/> (0..255).</summary>
    public static int Code(ReadOnlySpan<byte> qs, int e) => (qs[(e >> 6) * 32 + (e & 31)] >> (4 * ((e >> 5) & 1))) & 0xF;
}

internal static partial class Dequantize
{
    public static void Q4_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ4_K>(src, dst.Length, GgmlType.Q4_K);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var b = ref blocks[i];
            float d = Fp16.ToFloat(b.D), min = Fp16.ToFloat(b.DMin);
            ReadOnlySpan<byte> scales = b.Scales, qs = b.Qs;
            var y = dst.Slice(i * 256, 256);
            for (int j = 0; j < 8; j++)
            {
                var (sc, m) = KScales.Get(scales, j);
                float d1 = d * sc, m1 = min * m;
                for (int l = 0; l < 32; l++)
                {
                    int e = 32 * j + l;
                    y[e] = d1 * BlockQ4_K.Code(qs, e) - m1;
                }
            }
        }
    }
}

internal static partial class Quantize
{
    /// <summary>quantize_row_q4_K_ref (make_qkx2_quants with nmax 15, 21 steps from −1 by 0.1).</summary>
    public static void Q4_K(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ4_K>(dst, src.Length, GgmlType.Q4_K);
        Span<byte> codes = stackalloc byte[256];
        for (int i = 0; i < blocks.Length; i++)
        {
            ref var b = ref blocks[i];
            KScales.Choose(src.Slice(i * 256, 256), 15, -1f, 0.1f, 20, codes, b.Scales, out b.D, out b.DMin);
            Span<byte> qs = b.Qs;
            for (int g = 0; g < 4; g++)
                for (int l = 0; l < 32; l++)
                    qs[32 * g + l] = (byte)(codes[64 * g + l] | (codes[64 * g + l + 32] << 4));
        }
    }
}

internal static partial class ReferenceDot
{
    /// <summary>ggml_vec_dot_q4_K_q8_K (generic): the 8-lane form (see Q3_K_Q8_K) with 6-bit scales, plus the
    /// min term from the Q8_K block sums: sumi = Σ_{j&lt;16} bsums[j]·m_{j/2}; sumf −= (dmin·dy)·(float)sumi per
    /// super-block; the lane sums are added to sumf (in lane order) only after the last super-block.</summary>
    public static float Q4_K_Q8_K(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var xb = BlocksFor<BlockQ4_K>(w, GgmlType.Q4_K, out int n);
        var yb = QuantRows.Blocks<BlockQ8_K>(x, n, GgmlType.Q8_K);
        Span<float> sums = stackalloc float[8];
        sums.Clear();
        Span<int> aux32 = stackalloc int[8];
        float sumf = 0f;
        for (int i = 0; i < xb.Length; i++)
        {
            ReadOnlySpan<byte> scales = xb[i].Scales, qs = xb[i].Qs;
            ReadOnlySpan<sbyte> q8 = yb[i].Qs;
            ReadOnlySpan<short> bsums = yb[i].BSums;
            int sumi = 0;
            for (int j = 0; j < 16; j++) sumi += bsums[j] * KScales.Get(scales, j / 2).Min;
            aux32.Clear();
            for (int j = 0; j < 8; j++)
            {
                int scale = KScales.Get(scales, j).Scale;
                for (int e = 32 * j; e < 32 * j + 32; e++) aux32[e & 7] += scale * (q8[e] * BlockQ4_K.Code(qs, e));
            }
            float d = Fp16.ToFloat(xb[i].D) * yb[i].D;
            for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
            float dmin = Fp16.ToFloat(xb[i].DMin) * yb[i].D;
            sumf -= dmin * sumi;
        }
        for (int l = 0; l < 8; l++) sumf += sums[l];
        return sumf;
    }
}
