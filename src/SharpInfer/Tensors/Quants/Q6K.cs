using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

// Q6_K: 256 weights in 16 sub-blocks of 16; w = d·sc_j·(q − 32), q ∈ [0, 63], sc_j a signed int8.
// Layout per 128-element half h: ql[64h .. 64h+63] and qh[32h .. 32h+31]. Within the half, quarter
// k = 0..3 (elements 32k..32k+31, offset l) takes its low nibble from ql[64h + l + 32·(k&1)] (low nibble
// for k &lt; 2, high nibble for k ≥ 2) and its top two bits from bits 2k, 2k+1 of qh[32h + l].

/// <summary>ggml's block_q6_K (210 bytes); d is last.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ6_K
{
    public const int QK = 256, Size = 210, OffsetQl = 0, OffsetQh = 128, OffsetScales = 192, OffsetD = 208;
    public Bytes128 Ql;
    public Bytes64 Qh;
    public SBytes16 Scales;
    public ushort D;

    /// <summary>The signed code q − 32 ∈ [−32, 31] of element <paramref name="e"/> (0..255).</summary>
    public static int Code(ReadOnlySpan<byte> ql, ReadOnlySpan<byte> qh, int e)
    {
        int h = e >> 7, k = (e >> 5) & 3, l = e & 31;
        int low = (ql[64 * h + l + 32 * (k & 1)] >> (4 * (k >> 1))) & 0xF;
        int high = (qh[32 * h + l] >> (2 * k)) & 3;
        return (low | (high << 4)) - 32;
    }
}

internal static partial class Dequantize
{
    public static void Q6_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ6_K>(src, dst.Length, GgmlType.Q6_K);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var b = ref blocks[i];
            float d = Fp16.ToFloat(b.D);
            ReadOnlySpan<byte> ql = b.Ql, qh = b.Qh;
            ReadOnlySpan<sbyte> sc = b.Scales;
            var y = dst.Slice(i * 256, 256);
            // (d·sc)·q: the scale product is rounded first.
            for (int j = 0; j < 16; j++)
            {
                float dl = d * sc[j];
                for (int e = 16 * j; e < 16 * j + 16; e++) y[e] = dl * BlockQ6_K.Code(ql, qh, e);
            }
        }
    }
}

internal static partial class Quantize
{
    /// <summary>quantize_row_q6_K_ref: per sub-block make_qx_quants(nmax 32, x²-weighted, 18 trial scales);
    /// the signed scales quantized to int8 against the one of largest magnitude (iscale = −128/max, capped
    /// at 127); an all-tiny super-block is stored as all zero bytes.</summary>
    public static void Q6_K(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ6_K>(dst, src.Length, GgmlType.Q6_K);
        Span<sbyte> codes = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(i * 256, 256);
            ref var b = ref blocks[i];
            float maxScale = 0f, maxAbsScale = 0f;
            for (int ib = 0; ib < 16; ib++)
            {
                float scale = KQuantSearch.MakeQxQuants(x.Slice(16 * ib, 16), 32, codes.Slice(16 * ib, 16), 1);
                scales[ib] = scale;
                float a = MathF.Abs(scale);
                if (a > maxAbsScale) { maxAbsScale = a; maxScale = scale; }
            }
            if (maxAbsScale < KQuantSearch.GroupMaxEps)
            {
                b = default;
                continue;
            }

            float iscale = -128f / maxScale;
            b.D = Fp16.FromFloat(1f / iscale);
            Span<sbyte> sc = b.Scales;
            for (int ib = 0; ib < 16; ib++) sc[ib] = (sbyte)Math.Min(127, QuantMath.NearestInt(iscale * scales[ib]));

            float d0 = Fp16.ToFloat(b.D);
            for (int j = 0; j < 16; j++)
            {
                float d = d0 * sc[j];
                if (d == 0f) continue;
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = QuantMath.NearestInt(x[16 * j + ii] / d);
                    codes[16 * j + ii] = (sbyte)(Math.Max(-32, Math.Min(31, l)) + 32);
                }
            }

            Span<byte> ql = b.Ql, qh = b.Qh;
            for (int h = 0; h < 2; h++)
                for (int l = 0; l < 32; l++)
                {
                    int e = 128 * h + l;
                    int q1 = codes[e], q2 = codes[e + 32], q3 = codes[e + 64], q4 = codes[e + 96];
                    ql[64 * h + l] = (byte)((q1 & 0xF) | ((q3 & 0xF) << 4));
                    ql[64 * h + l + 32] = (byte)((q2 & 0xF) | ((q4 & 0xF) << 4));
                    qh[32 * h + l] = (byte)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
                }
        }
    }
}

internal static partial class ReferenceDot
{
    /// <summary>ggml_vec_dot_q6_K_q8_K (generic): the 8-lane form (see Q3_K_Q8_K) with signed int8 scales
    /// per 16 elements and codes q − 32; no min term.</summary>
    public static float Q6_K_Q8_K(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var xb = BlocksFor<BlockQ6_K>(w, GgmlType.Q6_K, out int n);
        var yb = QuantRows.Blocks<BlockQ8_K>(x, n, GgmlType.Q8_K);
        Span<float> sums = stackalloc float[8];
        sums.Clear();
        Span<int> aux32 = stackalloc int[8];
        for (int i = 0; i < xb.Length; i++)
        {
            ReadOnlySpan<byte> ql = xb[i].Ql, qh = xb[i].Qh;
            ReadOnlySpan<sbyte> sc = xb[i].Scales, q8 = yb[i].Qs;
            aux32.Clear();
            for (int e = 0; e < 256; e++)
                aux32[e & 7] += sc[e >> 4] * (q8[e] * BlockQ6_K.Code(ql, qh, e));
            float d = Fp16.ToFloat(xb[i].D) * yb[i].D;
            for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
        }
        float sumf = 0f;
        for (int l = 0; l < 8; l++) sumf += sums[l];
        return sumf;
    }
}
