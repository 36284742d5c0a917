using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

// Q2_K: 256 weights in 16 sub-blocks of 16; w = d·sc·q − dmin·m with 4-bit sc/m per sub-block and
// 2-bit q. Element e's code is bits 2·((e%128)/32) of qs[(e/128)·32 + e%32]: each 32-byte half of qs
// holds four 32-element runs, one per bit pair (the same packing Q3_K uses for its low two bits).

/// <summary>ggml's block_q2_K (84 bytes). Note the scales come first and d/dmin last.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ2_K
{
    public const int QK = 256, Size = 84, OffsetScales = 0, OffsetQs = 16, OffsetD = 80, OffsetDMin = 82;
    /// <summary>scales[j] = sc_j | m_j &lt;&lt; 4 for sub-block j (elements 16j..16j+15).</summary>
    public Bytes16 Scales;
    public Bytes64 Qs;
    public ushort D;
    public ushort DMin;

    /// <summary>The 2-bit code of element <paramref name="e"/> (0..255).</summary>
    public static int Code(ReadOnlySpan<byte> qs, int e) => (qs[(e >> 7) * 32 + (e & 31)] >> (2 * ((e & 127) >> 5))) & 3;
}

internal static partial class Dequantize
{
    public static void Q2_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ2_K>(src, dst.Length, GgmlType.Q2_K);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var b = ref blocks[i];
            float d = Fp16.ToFloat(b.D), dmin = Fp16.ToFloat(b.DMin);
            ReadOnlySpan<byte> scales = b.Scales, qs = b.Qs;
            var y = dst.Slice(i * 256, 256);
            for (int j = 0; j < 16; j++)
            {
                // dl and ml are rounded to float first, then dl·q − ml (two more roundings).
                float dl = d * (scales[j] & 0xF), ml = dmin * (scales[j] >> 4);
                for (int e = 16 * j; e < 16 * j + 16; e++) y[e] = dl * BlockQ2_K.Code(qs, e) - ml;
            }
        }
    }
}

internal static partial class Quantize
{
    /// <summary>quantize_row_q2_K_ref: per 16-element sub-block make_qkx2_quants(nmax 3, weights |x|, MAD
    /// error, 16 steps from −0.5 by 0.1); sub-block scales and mins quantized to 4 bits against the largest
    /// (d = max_scale/15, dmin = max_min/15); codes then recomputed from the stored fp16 values.</summary>
    public static void Q2_K(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ2_K>(dst, src.Length, GgmlType.Q2_K);
        Span<byte> codes = stackalloc byte[256];
        Span<byte> aux = stackalloc byte[16];
        Span<float> weights = stackalloc float[16];
        Span<float> mins = stackalloc float[16];
        Span<float> scales = stackalloc float[16];
        const float q4scale = 15f;
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(i * 256, 256);
            ref var b = ref blocks[i];
            float maxScale = 0f, maxMin = 0f;
            for (int j = 0; j < 16; j++)
            {
                var xs = x.Slice(16 * j, 16);
                for (int l = 0; l < 16; l++) weights[l] = MathF.Abs(xs[l]);
                scales[j] = KQuantSearch.MakeQkx2Quants(xs, weights, 3, codes.Slice(16 * j, 16), out mins[j], aux, -0.5f, 0.1f, 15, true);
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }

            Span<byte> sc = b.Scales;
            if (maxScale > 0f)
            {
                float iscale = q4scale / maxScale;
                for (int j = 0; j < 16; j++) sc[j] = (byte)QuantMath.NearestInt(iscale * scales[j]);
                b.D = Fp16.FromFloat(maxScale / q4scale);
            }
            else
            {
                sc.Clear();
                b.D = Fp16.FromFloat(0f);
            }
            if (maxMin > 0f)
            {
                float iscale = q4scale / maxMin;
                for (int j = 0; j < 16; j++) sc[j] |= (byte)(QuantMath.NearestInt(iscale * mins[j]) << 4);
                b.DMin = Fp16.FromFloat(maxMin / q4scale);
            }
            else
            {
                b.DMin = Fp16.FromFloat(0f);
            }

            float dAll = Fp16.ToFloat(b.D), dMinAll = Fp16.ToFloat(b.DMin);
            for (int j = 0; j < 16; j++)
            {
                float d = dAll * (sc[j] & 0xF);
                if (d == 0f) continue; // keeps the codes the search chose
                float dm = dMinAll * (sc[j] >> 4);
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = QuantMath.NearestInt((x[16 * j + ii] + dm) / d);
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
}

internal static partial class ReferenceDot
{
    /// <summary>ggml_vec_dot_q2_K_q8_K (generic). Per super-block: summs = Σ_j bsums[j]·m_j (int);
    /// isum = Σ_j sc_j · (Σ_{16 elements} q8·q) (int); then sumf += (dy·dx)·isum − (dy·dmin)·summs, all in
    /// float (dall and dmin are products taken with the Q8_K float d first).</summary>
    public static float Q2_K_Q8_K(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var xb = BlocksFor<BlockQ2_K>(w, GgmlType.Q2_K, out int n);
        var yb = QuantRows.Blocks<BlockQ8_K>(x, n, GgmlType.Q8_K);
        float sumf = 0f;
        for (int i = 0; i < xb.Length; i++)
        {
            ReadOnlySpan<byte> sc = xb[i].Scales, qs = xb[i].Qs;
            ReadOnlySpan<sbyte> q8 = yb[i].Qs;
            ReadOnlySpan<short> bsums = yb[i].BSums;
            int summs = 0;
            for (int j = 0; j < 16; j++) summs += bsums[j] * (sc[j] >> 4);
            float dall = yb[i].D * Fp16.ToFloat(xb[i].D);
            float dmin = yb[i].D * Fp16.ToFloat(xb[i].DMin);
            int isum = 0;
            for (int j = 0; j < 16; j++)
            {
                int isuml = 0;
                for (int l = 0; l < 16; l++)
                {
                    int e = 16 * j + l;
                    isuml += q8[e] * BlockQ2_K.Code(qs, e);
                }
                isum += (sc[j] & 0xF) * isuml;
            }
            sumf += dall * isum - dmin * summs;
        }
        return sumf;
    }
}
