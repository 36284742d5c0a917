using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

// MXFP4 (OCP microscaling FP4, gpt-oss's expert weights): 32 E2M1 values sharing one E8M0 (power-of-two) scale.
// ggml stores the E2M1 values doubled, as the small integers of kvalues_mxfp4, and halves the scale to
// compensate: w = kvalues_mxfp4[q] · 2^(e−128). The nibble order is Q4_0's (byte j: element j low, j+16 high).

/// <summary>ggml's block_mxfp4: one E8M0 scale byte, then 16 bytes of packed 4-bit E2M1 codes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockMXFP4
{
    public const int QK = 32, Size = 17, OffsetE = 0, OffsetQs = 1;
    public byte E;
    public Bytes16 Qs;

    /// <summary>ggml's kvalues_mxfp4: twice the E2M1 values (sign bit = bit 3, so code 8 is −0 and equals 0).</summary>
    public static ReadOnlySpan<sbyte> Values => [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

    /// <summary>ggml_e8m0_to_fp32_half: 2^(e−128) exactly, as the float bits ggml builds (e = 0 and 1 are the
    /// subnormals 2^-128 and 2^-127; e = 255 is 2^127: E8M0's NaN code is not special-cased).</summary>
    public static float HalfScale(byte e) =>
        BitConverter.Int32BitsToSingle(e < 2 ? 0x00200000 << e : (e - 1) << 23);
}

internal static partial class Dequantize
{
    public static void MXFP4(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockMXFP4>(src, dst.Length, GgmlType.MXFP4);
        var values = BlockMXFP4.Values;
        for (int i = 0; i < blocks.Length; i++)
        {
            float d = BlockMXFP4.HalfScale(blocks[i].E);
            ReadOnlySpan<byte> qs = blocks[i].Qs;
            var y = dst.Slice(i * 32, 32);
            for (int j = 0; j < 16; j++)
            {
                y[j] = values[qs[j] & 0x0F] * d;
                y[j + 16] = values[qs[j] >> 4] * d;
            }
        }
    }
}

internal static partial class Quantize
{
    /// <summary>ggml's quantize_row_mxfp4_ref: e = ⌊log2 amax⌋ − 2 + 127 (so amax lands in the top level 12·2^(e−128)
    /// or just below), then each value takes the level nearest to it, the first one on a tie (so 0 rather than −0).
    /// ggml casts a negative exponent to uint8 (undefined in C) for |x| below 2^-125; we clamp it to 0.</summary>
    public static void MXFP4(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockMXFP4>(dst, src.Length, GgmlType.MXFP4);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(i * 32, 32);
            float amax = 0f;
            for (int j = 0; j < 32; j++)
                if (amax < MathF.Abs(x[j])) amax = MathF.Abs(x[j]);
            byte e = amax > 0f ? (byte)Math.Clamp(MathF.Floor(MathF.Log2(amax)) - 2 + 127, 0, 255) : (byte)0;
            float d = BlockMXFP4.HalfScale(e);
            ref var b = ref blocks[i];
            b.E = e;
            Span<byte> qs = b.Qs;
            for (int j = 0; j < 16; j++)
                qs[j] = (byte)(BestIndexMXFP4(x[j], d) | (BestIndexMXFP4(x[j + 16], d) << 4));
        }
    }

    /// <summary>ggml's best_index_mxfp4: a linear scan for the least |level·d − x|, strict &lt; (first index wins).</summary>
    private static int BestIndexMXFP4(float x, float d)
    {
        var values = BlockMXFP4.Values;
        int best = 0;
        float bestErr = MathF.Abs(values[0] * d - x);
        for (int i = 1; i < 16; i++)
        {
            float err = MathF.Abs(values[i] * d - x);
            if (err < bestErr) { best = i; bestErr = err; }
        }
        return best;
    }
}

internal static partial class ReferenceDot
{
    /// <summary>ggml_vec_dot_mxfp4_q8_0 (generic): d = fp16(dy) · e8m0_half(e), two int32 halves,
    /// sumf += d · (float)(sumi1 + sumi2).</summary>
    public static float MXFP4_Q8_0(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var xb = BlocksFor<BlockMXFP4>(w, GgmlType.MXFP4, out int n);
        var yb = QuantRows.Blocks<BlockQ8_0>(x, n, GgmlType.Q8_0);
        var values = BlockMXFP4.Values;
        float sumf = 0f;
        for (int i = 0; i < xb.Length; i++)
        {
            float d = Fp16.ToFloat(yb[i].D) * BlockMXFP4.HalfScale(xb[i].E);
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
