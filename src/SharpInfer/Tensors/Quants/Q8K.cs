using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

// Q8_K: the activation format for all K-quant weights. Unlike every stored format its scale is a float32,
// and it carries the sums of each 16 codes (bsums) so that the weight mins of Q2_K/Q4_K/Q5_K cost one
// multiply per sub-block instead of a pass over the activations.

/// <summary>ggml's block_q8_K (292 bytes): v = d·q with d a float32 (not fp16).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ8_K
{
    public const int QK = 256, Size = 292, OffsetD = 0, OffsetQs = 4, OffsetBSums = 260;
    public float D;
    public SBytes256 Qs;
    /// <summary>bsums[j] = Σ qs[16j .. 16j+15].</summary>
    public Int16x16 BSums;
}

internal static partial class Dequantize
{
    /// <summary>dequantize_row_q8_K: d·q.</summary>
    public static void Q8_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ8_K>(src, dst.Length, GgmlType.Q8_K);
        for (int i = 0; i < blocks.Length; i++)
        {
            float d = blocks[i].D;
            ReadOnlySpan<sbyte> qs = blocks[i].Qs;
            var y = dst.Slice(i * 256, 256);
            for (int j = 0; j < 256; j++) y[j] = d * qs[j];
        }
    }
}

internal static partial class Quantize
{
    /// <summary>quantize_row_q8_K_ref: iscale = −127/max where max is the signed value of largest magnitude
    /// (first wins ties), q = min(127, nearest_int(iscale·x)) — ties to even, unlike Q8_0's roundf — and
    /// d = 1/iscale stored as float. An all-zero block gets d = 0 and zero codes; ggml leaves its bsums
    /// unwritten there, we write zeros (the true sums).</summary>
    public static void Q8_K(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ8_K>(dst, src.Length, GgmlType.Q8_K);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(i * 256, 256);
            ref var b = ref blocks[i];
            float max = 0f, amax = 0f;
            for (int j = 0; j < 256; j++)
            {
                float ax = MathF.Abs(x[j]);
                if (ax > amax) { amax = ax; max = x[j]; }
            }
            Span<sbyte> qs = b.Qs;
            Span<short> bsums = b.BSums;
            if (amax == 0f)
            {
                b.D = 0f;
                qs.Clear();
                bsums.Clear();
                continue;
            }
            float iscale = -127f / max;
            for (int j = 0; j < 256; j++) qs[j] = (sbyte)Math.Min(127, QuantMath.NearestInt(iscale * x[j]));
            for (int j = 0; j < 16; j++)
            {
                int sum = 0;
                for (int ii = 0; ii < 16; ii++) sum += qs[16 * j + ii];
                bsums[j] = (short)sum;
            }
            b.D = 1f / iscale;
        }
    }
}
