using SharpInfer.Tensors;

namespace SharpInfer.Quantization;

// The K-quants with an importance matrix: ggml-quants.c's quantize_row_q{2..6}_K_impl. Each searches the sub-block
// scales with the weighted searches, quantizes the scales (make_qp_quants / make_qx_quants weighted by each sub-block's
// total weight), then recomputes the codes from the stored fp16 scales, exactly as ggml does.
internal static partial class WeightedQuantize
{
    private const int QK = 256;

    /// <summary>Σx² of a super-block, summed in order in float.</summary>
    private static float SumSquares(ReadOnlySpan<float> x)
    {
        float s = 0f;
        for (int j = 0; j < x.Length; j++) s += x[j] * x[j];
        return s;
    }

    /// <summary>quantize_row_q2_K_impl: 16 sub-blocks of 16, make_qkx3_quants(nmax 3, −0.9, 0.05, 36) with weights
    /// qw · sqrt(σ² + x²) (σ² = Σx²/256), scales and mins to 4 bits by make_qp_quants(15).</summary>
    public static void Q2_K(ReadOnlySpan<float> src, ReadOnlySpan<float> qw, Span<byte> dst)
    {
        var blocks = QuantRowsOf<BlockQ2_K>(dst, src.Length, GgmlType.Q2_K);
        Span<byte> codes = stackalloc byte[QK], aux = stackalloc byte[16], ls = stackalloc byte[16], lm = stackalloc byte[16];
        Span<float> mins = stackalloc float[16], scales = stackalloc float[16], sw = stackalloc float[16], weight = stackalloc float[16];
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(QK * i, QK);
            float sigma2 = SumSquares(x) / QK;
            for (int j = 0; j < 16; j++)
            {
                var xs = x.Slice(16 * j, 16);
                Weights(xs, qw.Slice(QK * i + 16 * j, 16), sigma2, weight);
                float s = 0f;
                for (int l = 0; l < 16; l++) s += weight[l];
                sw[j] = s;
                scales[j] = WeightedSearch.MakeQkx3Quants(xs, weight, 3, codes.Slice(16 * j, 16), out mins[j], aux, -0.9f, 0.05f, 36, false);
            }
            float dm = WeightedSearch.MakeQpQuants(scales, 15, ls, sw);
            float mm = WeightedSearch.MakeQpQuants(mins, 15, lm, sw);
            ref var b = ref blocks[i];
            b.D = Fp16.FromFloat(dm);
            b.DMin = Fp16.FromFloat(mm);
            dm = Fp16.ToFloat(b.D);
            mm = Fp16.ToFloat(b.DMin);
            Span<byte> sc = b.Scales;
            for (int j = 0; j < 16; j++) sc[j] = (byte)(ls[j] | (lm[j] << 4));
            for (int j = 0; j < 16; j++)
            {
                float d = dm * (sc[j] & 0xF);
                if (d == 0f) continue; // keeps the codes the search chose
                float m = mm * (sc[j] >> 4);
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = QuantMath.NearestInt((x[16 * j + ii] + m) / d);
                    codes[16 * j + ii] = (byte)Math.Max(0, Math.Min(3, l));
                }
            }
            Span<byte> qs = b.Qs;
            for (int half = 0; half < 2; half++)
                for (int l = 0; l < 32; l++)
                {
                    int e = half * 128 + l;
                    qs[half * 32 + l] = (byte)(codes[e] | (codes[e + 32] << 2) | (codes[e + 64] << 4) | (codes[e + 96] << 6));
                }
        }
    }

    /// <summary>quantize_row_q3_K_impl: make_qx_quants(16, 4) per sub-block with weights qw · sqrt(σ² + x²)
    /// (σ² = 2Σx²/256), the 16 scales by make_qx_quants(16, 32) weighted by the sub-block weight sums.</summary>
    public static void Q3_K(ReadOnlySpan<float> src, ReadOnlySpan<float> qw, Span<byte> dst)
    {
        var blocks = QuantRowsOf<BlockQ3_K>(dst, src.Length, GgmlType.Q3_K);
        Span<sbyte> codes = stackalloc sbyte[QK], ls = stackalloc sbyte[16];
        Span<float> scales = stackalloc float[16], sw = stackalloc float[16], weight = stackalloc float[16];
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(QK * i, QK);
            float sigma2 = 2 * SumSquares(x) / QK;
            for (int j = 0; j < 16; j++)
            {
                var xs = x.Slice(16 * j, 16);
                Weights(xs, qw.Slice(QK * i + 16 * j, 16), sigma2, weight);
                float s = 0f;
                for (int l = 0; l < 16; l++) s += weight[l];
                sw[j] = s;
                scales[j] = WeightedSearch.MakeQxQuants(xs, 4, codes.Slice(16 * j, 16), weight);
            }
            ref var b = ref blocks[i];
            Span<byte> sc = b.Scales;
            sc.Clear();
            float dBlock = WeightedSearch.MakeQxQuants(scales, 32, ls, sw);
            for (int j = 0; j < 16; j++)
            {
                int l = ls[j];
                if (j < 8) sc[j] = (byte)(l & 0xF);
                else sc[j - 8] |= (byte)((l & 0xF) << 4);
                l >>= 4;
                sc[j % 4 + 8] |= (byte)(l << (2 * (j / 4)));
            }
            b.D = Fp16.FromFloat(dBlock);
            float dAll = Fp16.ToFloat(b.D);
            for (int j = 0; j < 16; j++)
            {
                float d = dAll * BlockQ3_K.Scale(sc, j);
                if (d == 0f) continue;
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = QuantMath.NearestInt(x[16 * j + ii] / d);
                    codes[16 * j + ii] = (sbyte)(Math.Max(-4, Math.Min(3, l)) + 4);
                }
            }
            Span<byte> hmask = b.HMask, qs = b.Qs;
            hmask.Clear();
            int m = 0;
            int hm = 1;
            for (int j = 0; j < QK; j++)
            {
                if (codes[j] > 3)
                {
                    hmask[m] |= (byte)hm;
                    codes[j] -= 4;
                }
                if (++m == QK / 8)
                {
                    m = 0;
                    hm <<= 1;
                }
            }
            for (int half = 0; half < 2; half++)
                for (int l = 0; l < 32; l++)
                {
                    int e = half * 128 + l;
                    qs[half * 32 + l] = (byte)((byte)codes[e] | ((byte)codes[e + 32] << 2) | ((byte)codes[e + 64] << 4) | ((byte)codes[e + 96] << 6));
                }
        }
    }

    /// <summary>Q4_K and Q5_K share the scale search: 8 sub-blocks of 32, make_qkx3_quants(nmax, −0.9, 0.05, 36) with
    /// weights qw · sqrt(σ² + x²) (σ² = 2Σx²/256), scales and mins to 6 bits by make_qp_quants(63), packed as
    /// get_scale_min_k4 reads them; codes recomputed from the stored fp16 d and dmin.</summary>
    private static void KScaleSearch(ReadOnlySpan<float> x, ReadOnlySpan<float> qw, int nmax, Span<byte> codes,
        Span<byte> packed, out ushort dBits, out ushort dminBits)
    {
        Span<byte> aux = stackalloc byte[32], ls = stackalloc byte[8], lm = stackalloc byte[8];
        Span<float> mins = stackalloc float[8], scales = stackalloc float[8], sw = stackalloc float[8], weight = stackalloc float[32];
        float sigma2 = 2 * SumSquares(x) / QK;
        for (int j = 0; j < 8; j++)
        {
            var xs = x.Slice(32 * j, 32);
            Weights(xs, qw.Slice(32 * j, 32), sigma2, weight);
            float s = 0f;
            for (int l = 0; l < 32; l++) s += weight[l];
            sw[j] = s;
            scales[j] = WeightedSearch.MakeQkx3Quants(xs, weight, nmax, codes.Slice(32 * j, 32), out mins[j], aux, -0.9f, 0.05f, 36, false);
        }
        float dBlock = WeightedSearch.MakeQpQuants(scales, 63, ls, sw);
        float mBlock = WeightedSearch.MakeQpQuants(mins, 63, lm, sw);
        for (int j = 0; j < 8; j++)
        {
            int s = Math.Min(63, (int)ls[j]), mn = Math.Min(63, (int)lm[j]);
            if (j < 4)
            {
                packed[j] = (byte)s;
                packed[j + 4] = (byte)mn;
            }
            else
            {
                packed[j + 4] = (byte)((s & 0xF) | ((mn & 0xF) << 4));
                packed[j - 4] |= (byte)((s >> 4) << 6);
                packed[j] |= (byte)((mn >> 4) << 6);
            }
        }
        dBits = Fp16.FromFloat(dBlock);
        dminBits = Fp16.FromFloat(mBlock);
        var dAll = Fp16.ToFloat(dBits);
        var dMinAll = Fp16.ToFloat(dminBits);
        for (int j = 0; j < 8; j++)
        {
            var (sc, mn) = KScales.Get(packed, j);
            float d = dAll * sc;
            if (d == 0f) continue;
            float dm = dMinAll * mn;
            for (int ii = 0; ii < 32; ii++)
            {
                int l = QuantMath.NearestInt((x[32 * j + ii] + dm) / d);
                codes[32 * j + ii] = (byte)Math.Max(0, Math.Min(nmax, l));
            }
        }
    }

    /// <summary>quantize_row_q4_K_impl.</summary>
    public static void Q4_K(ReadOnlySpan<float> src, ReadOnlySpan<float> qw, Span<byte> dst)
    {
        var blocks = QuantRowsOf<BlockQ4_K>(dst, src.Length, GgmlType.Q4_K);
        Span<byte> codes = stackalloc byte[QK];
        for (int i = 0; i < blocks.Length; i++)
        {
            ref var b = ref blocks[i];
            KScaleSearch(src.Slice(QK * i, QK), qw.Slice(QK * i, QK), 15, codes, b.Scales, out b.D, out b.DMin);
            Span<byte> q = b.Qs;
            for (int j = 0; j < QK; j += 64)
                for (int l = 0; l < 32; l++) q[j / 2 + l] = (byte)(codes[j + l] | (codes[j + l + 32] << 4));
        }
    }

    /// <summary>quantize_row_q5_K_impl.</summary>
    public static void Q5_K(ReadOnlySpan<float> src, ReadOnlySpan<float> qw, Span<byte> dst)
    {
        var blocks = QuantRowsOf<BlockQ5_K>(dst, src.Length, GgmlType.Q5_K);
        Span<byte> codes = stackalloc byte[QK];
        for (int i = 0; i < blocks.Length; i++)
        {
            ref var b = ref blocks[i];
            KScaleSearch(src.Slice(QK * i, QK), qw.Slice(QK * i, QK), 31, codes, b.Scales, out b.D, out b.DMin);
            Span<byte> qh = b.Qh, ql = b.Qs;
            qh.Clear();
            int m1 = 1, m2 = 2;
            for (int n = 0; n < QK; n += 64)
            {
                for (int j = 0; j < 32; j++)
                {
                    int l1 = codes[n + j];
                    if (l1 > 15) { l1 -= 16; qh[j] |= (byte)m1; }
                    int l2 = codes[n + j + 32];
                    if (l2 > 15) { l2 -= 16; qh[j] |= (byte)m2; }
                    ql[n / 2 + j] = (byte)(l1 | (l2 << 4));
                }
                m1 <<= 2;
                m2 <<= 2;
            }
        }
    }

    /// <summary>quantize_row_q6_K_impl: make_qx_quants(16, 32) per sub-block weighted by the importance weights
    /// themselves (no σ² term), then the reference's int8 scale quantization and code recomputation.</summary>
    public static void Q6_K(ReadOnlySpan<float> src, ReadOnlySpan<float> qw, Span<byte> dst)
    {
        var blocks = QuantRowsOf<BlockQ6_K>(dst, src.Length, GgmlType.Q6_K);
        Span<sbyte> codes = stackalloc sbyte[QK];
        Span<float> scales = stackalloc float[16];
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(QK * i, QK);
            float maxScale = 0f, maxAbsScale = 0f;
            for (int ib = 0; ib < 16; ib++)
            {
                float scale = WeightedSearch.MakeQxQuants(x.Slice(16 * ib, 16), 32, codes.Slice(16 * ib, 16), qw.Slice(QK * i + 16 * ib, 16));
                scales[ib] = scale;
                float abs = MathF.Abs(scale);
                if (abs > maxAbsScale)
                {
                    maxAbsScale = abs;
                    maxScale = scale;
                }
            }
            ref var b = ref blocks[i];
            if (maxAbsScale < KQuantSearch.GroupMaxEps)
            {
                b = default;
                b.D = Fp16.FromFloat(0f);
                continue;
            }
            float iscale = -128f / maxScale;
            b.D = Fp16.FromFloat(1f / iscale);
            Span<sbyte> sc = b.Scales;
            for (int ib = 0; ib < 16; ib++) sc[ib] = unchecked((sbyte)Math.Min(127, QuantMath.NearestInt(iscale * scales[ib])));
            float dAll = Fp16.ToFloat(b.D);
            for (int j = 0; j < 16; j++)
            {
                float d = dAll * sc[j];
                if (d == 0f) continue;
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = QuantMath.NearestInt(x[16 * j + ii] / d);
                    codes[16 * j + ii] = (sbyte)(Math.Max(-32, Math.Min(31, l)) + 32);
                }
            }
            Span<byte> ql = b.Ql, qh = b.Qh;
            for (int j = 0; j < QK; j += 128)
            {
                int qlo = j / 2, qho = j / 4;
                for (int l = 0; l < 32; l++)
                {
                    int q1 = codes[j + l] & 0xF, q2 = codes[j + l + 32] & 0xF, q3 = codes[j + l + 64] & 0xF, q4 = codes[j + l + 96] & 0xF;
                    ql[qlo + l] = (byte)(q1 | (q3 << 4));
                    ql[qlo + l + 32] = (byte)(q2 | (q4 << 4));
                    qh[qho + l] = (byte)((codes[j + l] >> 4) | ((codes[j + l + 32] >> 4) << 2) | ((codes[j + l + 64] >> 4) << 4) | ((codes[j + l + 96] >> 4) << 6));
                }
            }
        }
    }
}
