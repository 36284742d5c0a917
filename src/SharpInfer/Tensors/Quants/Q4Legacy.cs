using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

// Q4_0 and Q4_1: 32 weights per block, 4-bit codes. Byte j of qs holds element j in its low nibble and
// element j+16 in its high nibble (not 2j / 2j+1), so a kernel unpacks a block as "low nibbles = first
// half, high nibbles = second half".

/// <summary>ggml's block_q4_0: w = d·(q − 8), q ∈ [0, 15].</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ4_0
{
    public const int QK = 32, Size = 18, OffsetD = 0, OffsetQs = 2;
    /// <summary>Scale, fp16 bits.</summary>
    public ushort D;
    /// <summary>Nibbles: qs[j] = q[j] | q[j+16] &lt;&lt; 4.</summary>
    public Bytes16 Qs;
}

/// <summary>ggml's block_q4_1: w = d·q + m, q ∈ [0, 15].</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ4_1
{
    public const int QK = 32, Size = 20, OffsetD = 0, OffsetM = 2, OffsetQs = 4;
    public ushort D;
    /// <summary>Offset (the block minimum), fp16 bits.</summary>
    public ushort M;
    public Bytes16 Qs;
}

internal static partial class Dequantize
{
    public static void Q4_0(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ4_0>(src, dst.Length, GgmlType.Q4_0);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var b = ref blocks[i];
            float d = Fp16.ToFloat(b.D);
            ReadOnlySpan<byte> qs = b.Qs;
            var y = dst.Slice(i * BlockQ4_0.QK, BlockQ4_0.QK);
            for (int j = 0; j < 16; j++)
            {
                y[j] = ((qs[j] & 0x0F) - 8) * d;
                y[j + 16] = ((qs[j] >> 4) - 8) * d;
            }
        }
    }

    public static void Q4_1(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ4_1>(src, dst.Length, GgmlType.Q4_1);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var b = ref blocks[i];
            float d = Fp16.ToFloat(b.D), m = Fp16.ToFloat(b.M);
            ReadOnlySpan<byte> qs = b.Qs;
            var y = dst.Slice(i * BlockQ4_1.QK, BlockQ4_1.QK);
            for (int j = 0; j < 16; j++)
            {
                // Two roundings (product, then sum), no fused multiply-add: that is what ggml's to_float does.
                y[j] = (qs[j] & 0x0F) * d + m;
                y[j + 16] = (qs[j] >> 4) * d + m;
            }
        }
    }
}

internal static partial class Quantize
{
    /// <summary>quantize_row_q4_0_ref: d = (signed value of largest magnitude) / −8, so that value maps to
    /// code 0 exactly; codes are trunc(x/d + 8.5) capped at 15.</summary>
    public static void Q4_0(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ4_0>(dst, src.Length, GgmlType.Q4_0);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(i * 32, 32);
            float max = SignedAbsMax(x);
            float d = max / -8f;
            float id = d != 0f ? 1f / d : 0f;
            ref var b = ref blocks[i];
            b.D = Fp16.FromFloat(d);
            Span<byte> qs = b.Qs;
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Min(15, QuantMath.Truncate(x[j] * id + 8.5f));
                int q1 = Math.Min(15, QuantMath.Truncate(x[j + 16] * id + 8.5f));
                qs[j] = (byte)(q0 | (q1 << 4));
            }
        }
    }

    /// <summary>quantize_row_q4_1_ref: d = (max − min)/15, m = min; codes are trunc((x − min)/d + 0.5) capped at 15.</summary>
    public static void Q4_1(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ4_1>(dst, src.Length, GgmlType.Q4_1);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(i * 32, 32);
            var (min, max) = MinMax(x);
            float d = (max - min) / 15f;
            float id = d != 0f ? 1f / d : 0f;
            ref var b = ref blocks[i];
            b.D = Fp16.FromFloat(d);
            b.M = Fp16.FromFloat(min);
            Span<byte> qs = b.Qs;
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Min(15, QuantMath.Truncate((x[j] - min) * id + 0.5f));
                int q1 = Math.Min(15, QuantMath.Truncate((x[j + 16] - min) * id + 0.5f));
                qs[j] = (byte)(q0 | (q1 << 4));
            }
        }
    }

    /// <summary>The element of largest magnitude, with its sign (the first one wins ties).</summary>
    internal static float SignedAbsMax(ReadOnlySpan<float> x)
    {
        float amax = 0f, max = 0f;
        foreach (float v in x)
            if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
        return max;
    }

    /// <summary>Block minimum and maximum, starting from ±FLT_MAX as ggml does.</summary>
    internal static (float Min, float Max) MinMax(ReadOnlySpan<float> x)
    {
        float min = float.MaxValue, max = -float.MaxValue;
        foreach (float v in x)
        {
            if (v < min) min = v;
            if (v > max) max = v;
        }
        return (min, max);
    }
}

internal static partial class ReferenceDot
{
    /// <summary>ggml_vec_dot_q4_0_q8_0 (generic): per block, two int32 partial sums (low-nibble half ×
    /// y.qs[0..15], high-nibble half × y.qs[16..31]) added, then sumf += ((float)sumi · dx) · dy.</summary>
    public static float Q4_0_Q8_0(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var xb = BlocksFor<BlockQ4_0>(w, GgmlType.Q4_0, out int n);
        var yb = QuantRows.Blocks<BlockQ8_0>(x, n, GgmlType.Q8_0);
        float sumf = 0f;
        for (int i = 0; i < xb.Length; i++)
        {
            ReadOnlySpan<byte> qs = xb[i].Qs;
            ReadOnlySpan<sbyte> q8 = yb[i].Qs;
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                sumi0 += ((qs[j] & 0x0F) - 8) * q8[j];
                sumi1 += ((qs[j] >> 4) - 8) * q8[j + 16];
            }
            int sumi = sumi0 + sumi1;
            sumf += sumi * Fp16.ToFloat(xb[i].D) * Fp16.ToFloat(yb[i].D);
        }
        return sumf;
    }

    /// <summary>ggml_vec_dot_q4_1_q8_1 (generic): sumf += (dx·dy)·sumi + mx·sy, where sy = fp16(d·Σq8) is
    /// stored in the Q8_1 block so the offset term needs no pass over the activations.</summary>
    public static float Q4_1_Q8_1(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var xb = BlocksFor<BlockQ4_1>(w, GgmlType.Q4_1, out int n);
        var yb = QuantRows.Blocks<BlockQ8_1>(x, n, GgmlType.Q8_1);
        float sumf = 0f;
        for (int i = 0; i < xb.Length; i++)
        {
            ReadOnlySpan<byte> qs = xb[i].Qs;
            ReadOnlySpan<sbyte> q8 = yb[i].Qs;
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                sumi0 += (qs[j] & 0x0F) * q8[j];
                sumi1 += (qs[j] >> 4) * q8[j + 16];
            }
            int sumi = sumi0 + sumi1;
            sumf += Fp16.ToFloat(xb[i].D) * Fp16.ToFloat(yb[i].D) * sumi + Fp16.ToFloat(xb[i].M) * Fp16.ToFloat(yb[i].S);
        }
        return sumf;
    }
}
