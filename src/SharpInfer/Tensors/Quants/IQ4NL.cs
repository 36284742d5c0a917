using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

// IQ4_NL: Q4_0's layout (fp16 d + 16 bytes of nibbles, element j low / j+16 high) but the 4-bit code
// indexes a fixed non-uniform table of int8 levels instead of being used linearly.

/// <summary>ggml's block_iq4_nl: w = d·kvalues_iq4nl[q].</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockIQ4_NL
{
    public const int QK = 32, Size = 18, OffsetD = 0, OffsetQs = 2;
    public ushort D;
    public Bytes16 Qs;

    /// <summary>ggml's kvalues_iq4nl: the 16 levels, sorted ascending.</summary>
    public static ReadOnlySpan<sbyte> Values => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
}

internal static partial class Dequantize
{
    public static void IQ4_NL(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockIQ4_NL>(src, dst.Length, GgmlType.IQ4_NL);
        var values = BlockIQ4_NL.Values;
        for (int i = 0; i < blocks.Length; i++)
        {
            float d = Fp16.ToFloat(blocks[i].D);
            ReadOnlySpan<byte> qs = blocks[i].Qs;
            var y = dst.Slice(i * 32, 32);
            for (int j = 0; j < 16; j++)
            {
                y[j] = d * values[qs[j] & 0x0F];
                y[j + 16] = d * values[qs[j] >> 4];
            }
        }
    }
}

internal static partial class Quantize
{
    /// <summary>What ggml_quantize_chunk does for IQ4_NL without an importance matrix: quantize_row_iq4_nl_impl
    /// with weights x², ntry = 7. (quantize_row_iq4_nl_ref uses ntry = −1 and gives different bytes; GGUF
    /// files come from the chunk path.)</summary>
    public static void IQ4_NL(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockIQ4_NL>(dst, src.Length, GgmlType.IQ4_NL);
        Span<byte> codes = stackalloc byte[32];
        Span<float> weight = stackalloc float[32];
        for (int i = 0; i < blocks.Length; i++)
        {
            ref var b = ref blocks[i];
            QuantizeIQ4NLBlock(src.Slice(i * 32, 32), ref b, codes, weight, ntry: 7);
        }
    }

    /// <summary>One 32-element IQ4_NL block (super-block = block, so no sub-block scales).</summary>
    private static void QuantizeIQ4NLBlock(ReadOnlySpan<float> x, ref BlockIQ4_NL b, Span<byte> codes, Span<float> weight, int ntry)
    {
        var values = BlockIQ4_NL.Values;
        for (int j = 0; j < 32; j++) weight[j] = x[j] * x[j];

        float amax = 0f, max = 0f;
        for (int j = 0; j < 32; j++)
        {
            float ax = MathF.Abs(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }

        float scale;
        if (amax < KQuantSearch.GroupMaxEps)
        {
            scale = 0f;
        }
        else
        {
            // First guess maps the extreme value onto the extreme level, then a weighted least-squares
            // scale for those codes; then 2·ntry+1 alternative inverse scales, keeping the best.
            float d = ntry > 0 ? -max / values[0] : max / values[0];
            float id = 1f / d;
            float sumqx = 0f, sumq2 = 0f;
            for (int j = 0; j < 32; j++)
            {
                int l = QuantMath.BestIndexInt8(values, id * x[j]);
                codes[j] = (byte)l;
                float q = values[l];
                float w = weight[j];
                sumqx += w * q * x[j];
                sumq2 += w * q * q;
            }
            d = sumq2 > 0f ? sumqx / sumq2 : 0f;
            float best = d * sumqx;
            for (int itry = -ntry; itry <= ntry; itry++)
            {
                id = (itry + values[0]) / max;
                sumqx = sumq2 = 0f;
                for (int j = 0; j < 32; j++)
                {
                    int l = QuantMath.BestIndexInt8(values, id * x[j]);
                    float q = values[l];
                    float w = weight[j];
                    sumqx += w * q * x[j];
                    sumq2 += w * q * q;
                }
                if (sumq2 > 0f && sumqx * sumqx > best * sumq2)
                {
                    d = sumqx / sumq2;
                    best = d * sumqx;
                }
            }
            scale = d;
        }

        b.D = Fp16.FromFloat(scale);
        if (ntry > 0)
        {
            // Codes are recomputed from the final float scale (not its fp16 rounding). For an all-zero
            // block id = 0 and every code is the level nearest 0 (index 8, value 1).
            float id = scale != 0f ? 1f / scale : 0f;
            for (int j = 0; j < 32; j++) codes[j] = (byte)QuantMath.BestIndexInt8(values, id * x[j]);
        }
        Span<byte> qs = b.Qs;
        for (int j = 0; j < 16; j++) qs[j] = (byte)(codes[j] | (codes[j + 16] << 4));
    }
}

internal static partial class ReferenceDot
{
    /// <summary>ggml_vec_dot_iq4_nl_q8_0 (generic): d = dy·dx (note the order), two int32 halves,
    /// sumf += d · (float)(sumi1 + sumi2).</summary>
    public static float IQ4_NL_Q8_0(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var xb = BlocksFor<BlockIQ4_NL>(w, GgmlType.IQ4_NL, out int n);
        var yb = QuantRows.Blocks<BlockQ8_0>(x, n, GgmlType.Q8_0);
        var values = BlockIQ4_NL.Values;
        float sumf = 0f;
        for (int i = 0; i < xb.Length; i++)
        {
            float d = Fp16.ToFloat(yb[i].D) * Fp16.ToFloat(xb[i].D);
            ReadOnlySpan<byte> qs = xb[i].Qs;
            ReadOnlySpan<sbyte> q8 = yb[i].Qs;
            int sumi1 = 0, sumi2 = 0;
            for (int j = 0; j < 16; j++)
            {
                sumi1 += q8[j] * values[qs[j] & 0x0F];
                sumi2 += q8[j + 16] * values[qs[j] >> 4];
            }
            sumf += d * (sumi1 + sumi2);
        }
        return sumf;
    }
}
