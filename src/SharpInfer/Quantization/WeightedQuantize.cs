using System.Buffers.Binary;
using SharpInfer.Tensors;

namespace SharpInfer.Quantization;

/// <summary>
/// What ggml_quantize_chunk writes when it is given an importance matrix (quant_weights: one weight per column of the
/// row, llama-quantize's in_sum2/counts): ggml-quants.c's quantize_row_*_impl for Q4_0, Q4_1, Q5_0, Q5_1, Q2_K … Q6_K
/// and IQ4_NL, byte for byte. Every other type ignores the weights in ggml (Q8_0, the float types, MXFP4), so
/// <see cref="Row"/> hands those to the unweighted <see cref="Quantize.Row"/>.
/// </summary>
internal static partial class WeightedQuantize
{
    /// <summary>True for the types whose bytes depend on the importance weights.</summary>
    public static bool UsesWeights(GgmlType type) => type is GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1
        or GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K or GgmlType.IQ4_NL;

    /// <summary>Encodes one row with its per-column weights (<paramref name="qw"/>.Length == <paramref name="src"/>.Length).</summary>
    public static void Row(GgmlType type, ReadOnlySpan<float> src, ReadOnlySpan<float> qw, Span<byte> dst)
    {
        if (!UsesWeights(type))
        {
            Quantize.Row(type, src, dst);
            return;
        }
        if (qw.Length != src.Length)
            throw new ArgumentException($"{qw.Length} importance weights for a row of {src.Length}", nameof(qw));
        switch (type)
        {
            case GgmlType.Q4_0: Q4_0(src, qw, dst); break;
            case GgmlType.Q4_1: Q4_1(src, qw, dst); break;
            case GgmlType.Q5_0: Q5_0(src, qw, dst); break;
            case GgmlType.Q5_1: Q5_1(src, qw, dst); break;
            case GgmlType.Q2_K: Q2_K(src, qw, dst); break;
            case GgmlType.Q3_K: Q3_K(src, qw, dst); break;
            case GgmlType.Q4_K: Q4_K(src, qw, dst); break;
            case GgmlType.Q5_K: Q5_K(src, qw, dst); break;
            case GgmlType.Q6_K: Q6_K(src, qw, dst); break;
            case GgmlType.IQ4_NL: IQ4_NL(src, qw, dst); break;
        }
    }

    /// <summary>The legacy types' σ²: mean square over the whole row (float sum in order, divided by the row length).</summary>
    private static float RowSigma2(ReadOnlySpan<float> x)
    {
        float sum = 0f;
        for (int j = 0; j < x.Length; j++) sum += x[j] * x[j];
        return sum / x.Length;
    }

    /// <summary>weight = qw · sqrt(σ² + x²): the importance of a column, raised where the weight itself is large.</summary>
    private static void Weights(ReadOnlySpan<float> x, ReadOnlySpan<float> qw, float sigma2, Span<float> weight)
    {
        for (int j = 0; j < x.Length; j++) weight[j] = qw[j] * MathF.Sqrt(sigma2 + x[j] * x[j]);
    }

    /// <summary>quantize_row_q4_0_impl: make_qx_quants(32, 8) with the weights, codes used as they come.</summary>
    public static void Q4_0(ReadOnlySpan<float> src, ReadOnlySpan<float> qw, Span<byte> dst)
    {
        var blocks = QuantRowsOf<BlockQ4_0>(dst, src.Length, GgmlType.Q4_0);
        Span<float> weight = stackalloc float[32];
        Span<sbyte> codes = stackalloc sbyte[32];
        float sigma2 = RowSigma2(src);
        for (int ib = 0; ib < blocks.Length; ib++)
        {
            var xb = src.Slice(32 * ib, 32);
            Weights(xb, qw.Slice(32 * ib, 32), sigma2, weight);
            float d = WeightedSearch.MakeQxQuants(xb, 8, codes, weight);
            ref var b = ref blocks[ib];
            b.D = Fp16.FromFloat(d);
            Span<byte> qs = b.Qs;
            for (int j = 0; j < 16; j++) qs[j] = (byte)((byte)codes[j] | ((byte)codes[j + 16] << 4));
        }
    }

    /// <summary>quantize_row_q5_0_impl: make_qx_quants(32, 16) with the weights; fifth bits into qh.</summary>
    public static void Q5_0(ReadOnlySpan<float> src, ReadOnlySpan<float> qw, Span<byte> dst)
    {
        var blocks = QuantRowsOf<BlockQ5_0>(dst, src.Length, GgmlType.Q5_0);
        Span<float> weight = stackalloc float[32];
        Span<sbyte> codes = stackalloc sbyte[32];
        Span<byte> bytes = stackalloc byte[32];
        float sigma2 = RowSigma2(src);
        for (int ib = 0; ib < blocks.Length; ib++)
        {
            var xb = src.Slice(32 * ib, 32);
            Weights(xb, qw.Slice(32 * ib, 32), sigma2, weight);
            float d = WeightedSearch.MakeQxQuants(xb, 16, codes, weight);
            ref var b = ref blocks[ib];
            b.D = Fp16.FromFloat(d);
            for (int j = 0; j < 32; j++) bytes[j] = (byte)codes[j];
            PackQ5(bytes, b.Qs, b.Qh);
        }
    }

    /// <summary>quantize_row_q4_1_impl: make_qkx3_quants(32, 15, rmin −0.9, step 0.05, 36 steps) with the weights.</summary>
    public static void Q4_1(ReadOnlySpan<float> src, ReadOnlySpan<float> qw, Span<byte> dst)
    {
        var blocks = QuantRowsOf<BlockQ4_1>(dst, src.Length, GgmlType.Q4_1);
        Span<float> weight = stackalloc float[32];
        Span<byte> codes = stackalloc byte[32], aux = stackalloc byte[32];
        float sigma2 = RowSigma2(src);
        for (int ib = 0; ib < blocks.Length; ib++)
        {
            var xb = src.Slice(32 * ib, 32);
            Weights(xb, qw.Slice(32 * ib, 32), sigma2, weight);
            float d = WeightedSearch.MakeQkx3Quants(xb, weight, 15, codes, out float min, aux, -0.9f, 0.05f, 36, false);
            ref var b = ref blocks[ib];
            b.D = Fp16.FromFloat(d);
            b.M = Fp16.FromFloat(-min);
            Span<byte> qs = b.Qs;
            for (int j = 0; j < 16; j++) qs[j] = (byte)((byte)codes[j] | ((byte)codes[j + 16] << 4));
        }
    }

    /// <summary>quantize_row_q5_1_impl: make_qkx3_quants(32, 31, …) with the weights; fifth bits into qh.</summary>
    public static void Q5_1(ReadOnlySpan<float> src, ReadOnlySpan<float> qw, Span<byte> dst)
    {
        var blocks = QuantRowsOf<BlockQ5_1>(dst, src.Length, GgmlType.Q5_1);
        Span<float> weight = stackalloc float[32];
        Span<byte> codes = stackalloc byte[32], aux = stackalloc byte[32];
        float sigma2 = RowSigma2(src);
        for (int ib = 0; ib < blocks.Length; ib++)
        {
            var xb = src.Slice(32 * ib, 32);
            Weights(xb, qw.Slice(32 * ib, 32), sigma2, weight);
            float d = WeightedSearch.MakeQkx3Quants(xb, weight, 31, codes, out float min, aux, -0.9f, 0.05f, 36, false);
            ref var b = ref blocks[ib];
            b.D = Fp16.FromFloat(d);
            b.M = Fp16.FromFloat(-min);
            PackQ5(codes, b.Qs, b.Qh);
        }
    }

    /// <summary>Q5_0/Q5_1 packing: low nibbles as Q4 (element j low, j+16 high), bit 4 of element j into bit j of qh.</summary>
    private static void PackQ5(ReadOnlySpan<byte> codes, Span<byte> qs, Span<byte> qhBytes)
    {
        uint qh = 0;
        for (int j = 0; j < 16; j++)
        {
            int x0 = codes[j], x1 = codes[j + 16];
            qs[j] = (byte)((x0 & 0x0F) | ((x1 & 0x0F) << 4));
            qh |= (uint)((x0 & 0x10) >> 4) << j;
            qh |= (uint)((x1 & 0x10) >> 4) << (j + 16);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(qhBytes, qh);
    }

    /// <summary>quantize_row_iq4_nl_impl(32, 32, …, ntry 7) with weights qw · sqrt(σ² + x²), σ² = 2·Σx²/32 over the block.</summary>
    public static void IQ4_NL(ReadOnlySpan<float> src, ReadOnlySpan<float> qw, Span<byte> dst)
    {
        var blocks = QuantRowsOf<BlockIQ4_NL>(dst, src.Length, GgmlType.IQ4_NL);
        Span<float> weight = stackalloc float[32];
        Span<byte> codes = stackalloc byte[32];
        var values = BlockIQ4_NL.Values;
        const int ntry = 7;
        for (int ib = 0; ib < blocks.Length; ib++)
        {
            var x = src.Slice(32 * ib, 32);
            float sigma2 = 0f;
            for (int j = 0; j < 32; j++) sigma2 += x[j] * x[j];
            sigma2 *= 2f / 32;
            Weights(x, qw.Slice(32 * ib, 32), sigma2, weight);
            float amax = 0f, max = 0f;
            for (int j = 0; j < 32; j++)
            {
                float ax = MathF.Abs(x[j]);
                if (ax > amax) { amax = ax; max = x[j]; }
            }
            float scale = 0f;
            if (amax >= KQuantSearch.GroupMaxEps)
            {
                float d = -max / values[0];
                float id = 1f / d;
                float sumqx = 0f, sumq2 = 0f;
                for (int j = 0; j < 32; j++)
                {
                    float q = values[QuantMath.BestIndexInt8(values, id * x[j])];
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
                        float q = values[QuantMath.BestIndexInt8(values, id * x[j])];
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
            ref var b = ref blocks[ib];
            b.D = Fp16.FromFloat(scale);
            // Codes from the final float scale (not its fp16 rounding), as ggml does for ntry > 0.
            float inv = scale != 0f ? 1f / scale : 0f;
            for (int j = 0; j < 32; j++) codes[j] = (byte)QuantMath.BestIndexInt8(values, inv * x[j]);
            Span<byte> qs = b.Qs;
            for (int j = 0; j < 16; j++) qs[j] = (byte)((byte)codes[j] | ((byte)codes[j + 16] << 4));
        }
    }

    private static Span<T> QuantRowsOf<T>(Span<byte> dst, int elements, GgmlType type) where T : unmanaged =>
        QuantRows.Blocks<T>(dst, elements, type);
}
