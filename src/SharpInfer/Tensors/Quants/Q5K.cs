using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

// Q5_K: Q4_K plus a fifth bit. Sub-block j (elements 32j..32j+31) takes its fifth bits from bit j of
// qh[0..31] (element 32j + l ↔ qh[l] bit j); the low four bits use Q4_K's qs layout.

/// <summary>ggml's block_q5_K (176 bytes): w = d·sc_j·q − dmin·m_j, q ∈ [0, 31].</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ5_K
{
    public const int QK = 256, Size = 176, OffsetD = 0, OffsetDMin = 2, OffsetScales = 4, OffsetQh = 16, OffsetQs = 48;
    public ushort D;
    public ushort DMin;
    public Bytes12 Scales;
    public Bytes32 Qh;
    public Bytes128 Qs;

    /// <summary>The 5-bit code of element <paramref name="e"/> (0..255).</summary>
    public static int Code(ReadOnlySpan<byte> qs, ReadOnlySpan<byte> qh, int e) =>
        BlockQ4_K.Code(qs, e) | (((qh[e & 31] >> (e >> 5)) & 1) << 4);
}

internal static partial class Dequantize
{
    public static void Q5_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ5_K>(src, dst.Length, GgmlType.Q5_K);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var b = ref blocks[i];
            float d = Fp16.ToFloat(b.D), min = Fp16.ToFloat(b.DMin);
            ReadOnlySpan<byte> scales = b.Scales, qs = b.Qs, qh = b.Qh;
            var y = dst.Slice(i * 256, 256);
            for (int j = 0; j < 8; j++)
            {
                var (sc, m) = KScales.Get(scales, j);
                float d1 = d * sc, m1 = min * m;
                for (int l = 0; l < 32; l++)
                {
                    int e = 32 * j + l;
                    y[e] = d1 * BlockQ5_K.Code(qs, qh, e) - m1;
                }
            }
        }
    }
}

internal static partial class Quantize
{
    /// <summary>quantize_row_q5_K_ref (make_qkx2_quants with nmax 31, 16 steps from −0.5 by 0.1).</summary>
    public static void Q5_K(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ5_K>(dst, src.Length, GgmlType.Q5_K);
        Span<byte> codes = stackalloc byte[256];
        for (int i = 0; i < blocks.Length; i++)
        {
            ref var b = ref blocks[i];
            KScales.Choose(src.Slice(i * 256, 256), 31, -0.5f, 0.1f, 15, codes, b.Scales, out b.D, out b.DMin);
            Span<byte> qs = b.Qs, qh = b.Qh;
            qh.Clear();
            for (int g = 0; g < 4; g++)
                for (int l = 0; l < 32; l++)
                {
                    int lo = codes[64 * g + l], hi = codes[64 * g + l + 32];
                    if (lo > 15) { lo -= 16; qh[l] |= (byte)(1 << (2 * g)); }
                    if (hi > 15) { hi -= 16; qh[l] |= (byte)(1 << (2 * g + 1)); }
                    qs[32 * g + l] = (byte)(lo | (hi << 4));
                }
        }
    }
}

internal static partial class ReferenceDot
{
    /// <summary>ggml_vec_dot_q5_K_q8_K (generic): exactly Q4_K_Q8_K's arithmetic with 5-bit codes.</summary>
    public static float Q5_K_Q8_K(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var xb = BlocksFor<BlockQ5_K>(w, GgmlType.Q5_K, out int n);
        var yb = QuantRows.Blocks<BlockQ8_K>(x, n, GgmlType.Q8_K);
        Span<float> sums = stackalloc float[8];
        sums.Clear();
        Span<int> aux32 = stackalloc int[8];
        float sumf = 0f;
        for (int i = 0; i < xb.Length; i++)
        {
            ReadOnlySpan<byte> scales = xb[i].Scales, qs = xb[i].Qs, qh = xb[i].Qh;
            ReadOnlySpan<sbyte> q8 = yb[i].Qs;
            ReadOnlySpan<short> bsums = yb[i].BSums;
            int sumi = 0;
            for (int j = 0; j < 16; j++) sumi += bsums[j] * KScales.Get(scales, j / 2).Min;
            aux32.Clear();
            for (int j = 0; j < 8; j++)
            {
                int scale = KScales.Get(scales, j).Scale;
                for (int e = 32 * j; e < 32 * j + 32; e++) aux32[e & 7] += scale * (q8[e] * BlockQ5_K.Code(qs, qh, e));
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
