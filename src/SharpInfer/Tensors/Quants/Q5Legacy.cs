using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

// Q5_0 and Q5_1: like Q4_0/Q4_1 plus a fifth bit per weight. The 32 fifth bits live in qh read as one
// little-endian uint32: bit j is the high bit of element j (j = 0..31), so elements 0..15 use bits 0..15
// (paired with the low nibbles) and elements 16..31 use bits 16..31 (paired with the high nibbles).

/// <summary>ggml's block_q5_0: w = d·(q − 16), q ∈ [0, 31].</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ5_0
{
    public const int QK = 32, Size = 22, OffsetD = 0, OffsetQh = 2, OffsetQs = 6;
    public ushort D;
    /// <summary>Fifth bits, a little-endian uint32 (bit j ↔ element j).</summary>
    public Bytes4 Qh;
    /// <summary>Low nibbles: qs[j] = (q[j] &amp; 15) | (q[j+16] &amp; 15) &lt;&lt; 4.</summary>
    public Bytes16 Qs;
}

/// <summary>ggml's block_q5_1: w = d·q + m, q ∈ [0, 31].</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ5_1
{
    public const int QK = 32, Size = 24, OffsetD = 0, OffsetM = 2, OffsetQh = 4, OffsetQs = 8;
    public ushort D;
    public ushort M;
    public Bytes4 Qh;
    public Bytes16 Qs;
}

internal static partial class Dequantize
{
    public static void Q5_0(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ5_0>(src, dst.Length, GgmlType.Q5_0);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var b = ref blocks[i];
            float d = Fp16.ToFloat(b.D);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(b.Qh);
            ReadOnlySpan<byte> qs = b.Qs;
            var y = dst.Slice(i * 32, 32);
            for (int j = 0; j < 16; j++)
            {
                int q0 = (qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4);
                int q1 = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
                y[j] = (q0 - 16) * d;
                y[j + 16] = (q1 - 16) * d;
            }
        }
    }

    public static void Q5_1(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ5_1>(src, dst.Length, GgmlType.Q5_1);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var b = ref blocks[i];
            float d = Fp16.ToFloat(b.D), m = Fp16.ToFloat(b.M);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(b.Qh);
            ReadOnlySpan<byte> qs = b.Qs;
            var y = dst.Slice(i * 32, 32);
            for (int j = 0; j < 16; j++)
            {
                int q0 = (qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4);
                int q1 = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
                y[j] = q0 * d + m;
                y[j + 16] = q1 * d + m;
            }
        }
    }
}

internal static partial class Quantize
{
    /// <summary>quantize_row_q5_0_ref: d = (signed value of largest magnitude) / −16; codes trunc(x/d + 16.5) capped at 31.</summary>
    public static void Q5_0(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ5_0>(dst, src.Length, GgmlType.Q5_0);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(i * 32, 32);
            float max = SignedAbsMax(x);
            float d = max / -16f;
            float id = d != 0f ? 1f / d : 0f;
            ref var b = ref blocks[i];
            b.D = Fp16.FromFloat(d);
            Span<byte> qs = b.Qs;
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Min(31, QuantMath.Truncate(x[j] * id + 16.5f));
                int q1 = Math.Min(31, QuantMath.Truncate(x[j + 16] * id + 16.5f));
                qs[j] = (byte)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
                qh |= (uint)((q0 >> 4) & 1) << j;
                qh |= (uint)((q1 >> 4) & 1) << (j + 16);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(b.Qh, qh);
        }
    }

    /// <summary>quantize_row_q5_1_ref: d = (max − min)/31, m = min; codes trunc((x − min)/d + 0.5) (no cap: ggml
    /// has none here, and the largest value lands on 31 anyway).</summary>
    public static void Q5_1(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ5_1>(dst, src.Length, GgmlType.Q5_1);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(i * 32, 32);
            var (min, max) = MinMax(x);
            float d = (max - min) / 31f;
            float id = d != 0f ? 1f / d : 0f;
            ref var b = ref blocks[i];
            b.D = Fp16.FromFloat(d);
            b.M = Fp16.FromFloat(min);
            Span<byte> qs = b.Qs;
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int q0 = (byte)QuantMath.Truncate((x[j] - min) * id + 0.5f);
                int q1 = (byte)QuantMath.Truncate((x[j + 16] - min) * id + 0.5f);
                qs[j] = (byte)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
                qh |= (uint)((q0 >> 4) & 1) << j;
                qh |= (uint)((q1 >> 4) & 1) << (j + 16);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(b.Qh, qh);
        }
    }
}

internal static partial class ReferenceDot
{
    /// <summary>ggml_vec_dot_q5_0_q8_0 (generic): sumf += (dx·dy)·sumi, q − 16 as the signed weight code.</summary>
    public static float Q5_0_Q8_0(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var xb = BlocksFor<BlockQ5_0>(w, GgmlType.Q5_0, out int n);
        var yb = QuantRows.Blocks<BlockQ8_0>(x, n, GgmlType.Q8_0);
        float sumf = 0f;
        for (int i = 0; i < xb.Length; i++)
        {
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(xb[i].Qh);
            ReadOnlySpan<byte> qs = xb[i].Qs;
            ReadOnlySpan<sbyte> q8 = yb[i].Qs;
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                int q0 = ((qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4)) - 16;
                int q1 = ((qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - 16;
                sumi0 += q0 * q8[j];
                sumi1 += q1 * q8[j + 16];
            }
            int sumi = sumi0 + sumi1;
            sumf += Fp16.ToFloat(xb[i].D) * Fp16.ToFloat(yb[i].D) * sumi;
        }
        return sumf;
    }

    /// <summary>ggml_vec_dot_q5_1_q8_1 (generic): sumf += (dx·dy)·sumi + mx·sy.</summary>
    public static float Q5_1_Q8_1(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var xb = BlocksFor<BlockQ5_1>(w, GgmlType.Q5_1, out int n);
        var yb = QuantRows.Blocks<BlockQ8_1>(x, n, GgmlType.Q8_1);
        float sumf = 0f;
        for (int i = 0; i < xb.Length; i++)
        {
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(xb[i].Qh);
            ReadOnlySpan<byte> qs = xb[i].Qs;
            ReadOnlySpan<sbyte> q8 = yb[i].Qs;
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                int q0 = (qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4);
                int q1 = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
                sumi0 += q0 * q8[j];
                sumi1 += q1 * q8[j + 16];
            }
            int sumi = sumi0 + sumi1;
            sumf += Fp16.ToFloat(xb[i].D) * Fp16.ToFloat(yb[i].D) * sumi + Fp16.ToFloat(xb[i].M) * Fp16.ToFloat(yb[i].S);
        }
        return sumf;
    }
}
