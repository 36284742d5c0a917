using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

// Q8_0 and Q8_1: 32 signed bytes and an fp16 scale. Q8_0 is both a weight format and the activation
// format for Q4_0/Q5_0/Q8_0/IQ4_NL weights; Q8_1 is only an activation format (for Q4_1/Q5_1), carrying
// s = d·Σq so the weight offset m contributes m·s without touching the activations again.

/// <summary>ggml's block_q8_0: v = d·q, q ∈ [−127, 127].</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ8_0
{
    public const int QK = 32, Size = 34, OffsetD = 0, OffsetQs = 2;
    public ushort D;
    public SBytes32 Qs;
}

/// <summary>ggml's block_q8_1: v = d·q, plus S = fp16((float)Σq · d) (computed from the float d, not the
/// fp16-rounded one).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ8_1
{
    public const int QK = 32, Size = 36, OffsetD = 0, OffsetS = 2, OffsetQs = 4;
    public ushort D;
    public ushort S;
    public SBytes32 Qs;
}

internal static partial class Dequantize
{
    public static void Q8_0(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ8_0>(src, dst.Length, GgmlType.Q8_0);
        for (int i = 0; i < blocks.Length; i++)
        {
            float d = Fp16.ToFloat(blocks[i].D);
            ReadOnlySpan<sbyte> qs = blocks[i].Qs;
            var y = dst.Slice(i * 32, 32);
            for (int j = 0; j < 32; j++) y[j] = qs[j] * d;
        }
    }

    /// <summary>Q8_1 has no to_float in ggml (it is never stored); this is the obvious d·q, for tests and tools.</summary>
    public static void Q8_1(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ8_1>(src, dst.Length, GgmlType.Q8_1);
        for (int i = 0; i < blocks.Length; i++)
        {
            float d = Fp16.ToFloat(blocks[i].D);
            ReadOnlySpan<sbyte> qs = blocks[i].Qs;
            var y = dst.Slice(i * 32, 32);
            for (int j = 0; j < 32; j++) y[j] = qs[j] * d;
        }
    }
}

internal static partial class Quantize
{
    /// <summary>quantize_row_q8_0_ref: d = amax/127 (float), id = 1/d (not 127/amax), q = roundf(x·id) —
    /// C roundf, ties away from zero. The stored scale is fp16(d) but the codes use the unrounded id.</summary>
    public static void Q8_0(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ8_0>(dst, src.Length, GgmlType.Q8_0);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(i * 32, 32);
            float d = AbsMax(x) / 127f;
            float id = d != 0f ? 1f / d : 0f;
            ref var b = ref blocks[i];
            b.D = Fp16.FromFloat(d);
            Span<sbyte> qs = b.Qs;
            for (int j = 0; j < 32; j++) qs[j] = (sbyte)QuantMath.RoundAway(x[j] * id);
        }
    }

    /// <summary>quantize_row_q8_1_ref: the same codes as Q8_0, and S = fp16((float)Σq · d) with the float d.</summary>
    public static void Q8_1(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ8_1>(dst, src.Length, GgmlType.Q8_1);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(i * 32, 32);
            float d = AbsMax(x) / 127f;
            float id = d != 0f ? 1f / d : 0f;
            ref var b = ref blocks[i];
            b.D = Fp16.FromFloat(d);
            Span<sbyte> qs = b.Qs;
            int sum = 0;
            for (int j = 0; j < 32; j++)
            {
                qs[j] = (sbyte)QuantMath.RoundAway(x[j] * id);
                sum += qs[j];
            }
            b.S = Fp16.FromFloat(sum * d);
        }
    }

    /// <summary>max |x| by ggml's MAX(amax, fabsf(v)) fold.</summary>
    internal static float AbsMax(ReadOnlySpan<float> x)
    {
        float amax = 0f;
        foreach (float v in x)
        {
            float a = MathF.Abs(v);
            amax = amax > a ? amax : a;
        }
        return amax;
    }
}

internal static partial class ReferenceDot
{
    /// <summary>ggml_vec_dot_q8_0_q8_0 (generic): one int32 sum per block, sumf += (float)sumi · (dx·dy).</summary>
    public static float Q8_0_Q8_0(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var xb = BlocksFor<BlockQ8_0>(w, GgmlType.Q8_0, out int n);
        var yb = QuantRows.Blocks<BlockQ8_0>(x, n, GgmlType.Q8_0);
        float sumf = 0f;
        for (int i = 0; i < xb.Length; i++)
        {
            ReadOnlySpan<sbyte> qa = xb[i].Qs, qb = yb[i].Qs;
            int sumi = 0;
            for (int j = 0; j < 32; j++) sumi += qa[j] * qb[j];
            sumf += sumi * (Fp16.ToFloat(xb[i].D) * Fp16.ToFloat(yb[i].D));
        }
        return sumf;
    }
}
