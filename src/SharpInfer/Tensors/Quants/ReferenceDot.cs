using System.Buffers;

namespace SharpInfer.Tensors;

/// <summary>Scalar reference dot products of one weight row with one activation row. These define the
/// arithmetic that optimized kernels are tested against.</summary>
/// <remarks>
/// Two paths:
/// <list type="bullet">
/// <item><see cref="F32Activations"/>: exact weights (the dequantized floats) times float activations.</item>
/// <item><see cref="QuantizedActivations"/>: ggml's arithmetic. Activations are first quantized to
/// <see cref="ActivationType"/> (ggml's vec_dot_type), then integer dot products per block/sub-block are
/// scaled and accumulated exactly as ggml's generic scalar <c>ggml_vec_dot_*</c> (quants.c) do, operand
/// order included, with no fused multiply-adds. ggml's SIMD kernels compute the same integer sums but add
/// the float terms in other orders, so they agree with this only to within float rounding.</item>
/// </list>
/// </remarks>
internal static partial class ReferenceDot
{
    /// <summary>Elements per float partial sum for F32/F16/BF16 weights in <see cref="F32Activations"/>.</summary>
    public const int FloatGroup = 32;

    /// <summary>ggml's vec_dot_type: the format activations are quantized to before a dot with weights of
    /// <paramref name="weightType"/>.</summary>
    public static GgmlType ActivationType(GgmlType weightType) => weightType switch
    {
        GgmlType.F32 => GgmlType.F32,
        GgmlType.F16 => GgmlType.F16,
        GgmlType.BF16 => GgmlType.BF16,
        GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 or GgmlType.IQ4_NL or GgmlType.MXFP4 => GgmlType.Q8_0,
        GgmlType.Q4_1 or GgmlType.Q5_1 => GgmlType.Q8_1,
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K => GgmlType.Q8_K,
        _ => throw new ArgumentException($"no reference dot product for {GgmlTypeInfo.Name(weightType)} weights", nameof(weightType)),
    };

    /// <summary>The exact path: w = Dequantize.Row(weightRow) (bit-exact ggml weights), then
    /// Σ w[i]·x[i] in float. Order: the row is split into consecutive groups — one block of the weight type
    /// (32 or 256 elements), or <see cref="FloatGroup"/> elements for F32/F16/BF16 (the last group may be
    /// shorter) — each group's products are rounded to float and added left to right into a float partial
    /// sum starting at 0, and the partial sums are added left to right into a float total starting at 0.
    /// No FMA.</summary>
    public static float F32Activations(GgmlType wType, ReadOnlySpan<byte> weightRow, ReadOnlySpan<float> x)
    {
        if (!Dequantize.IsSupported(wType) || wType is GgmlType.Q8_1 or GgmlType.Q8_K)
            throw new ArgumentException($"no reference dot product for {GgmlTypeInfo.Name(wType)} weights", nameof(wType));
        int n = QuantRows.ElementCount(weightRow.Length, wType);
        if (x.Length != n)
            throw new ArgumentException($"weight row has {n} elements, activations {x.Length}", nameof(x));
        int group = GgmlTypeInfo.BlockSize(wType) == 1 ? FloatGroup : GgmlTypeInfo.BlockSize(wType);

        float[] rented = ArrayPool<float>.Shared.Rent(n);
        try
        {
            var w = rented.AsSpan(0, n);
            Dequantize.Row(wType, weightRow, w);
            float total = 0f;
            for (int start = 0; start < n; start += group)
            {
                int end = Math.Min(n, start + group);
                float partial = 0f;
                for (int i = start; i < end; i++) partial += w[i] * x[i];
                total += partial;
            }
            return total;
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>ggml's arithmetic: <paramref name="xQuantized"/> is the activation row already quantized to
    /// <see cref="ActivationType"/>(wType) (e.g. with <see cref="Quantize.Row"/>), with the same element count
    /// as the weight row. See the per-type methods for the exact order of operations.</summary>
    public static float QuantizedActivations(GgmlType wType, ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> xQuantized) => wType switch
    {
        GgmlType.F32 => F32_F32(weightRow, xQuantized),
        GgmlType.F16 => F16_F16(weightRow, xQuantized),
        GgmlType.BF16 => BF16_BF16(weightRow, xQuantized),
        GgmlType.Q4_0 => Q4_0_Q8_0(weightRow, xQuantized),
        GgmlType.Q4_1 => Q4_1_Q8_1(weightRow, xQuantized),
        GgmlType.Q5_0 => Q5_0_Q8_0(weightRow, xQuantized),
        GgmlType.Q5_1 => Q5_1_Q8_1(weightRow, xQuantized),
        GgmlType.Q8_0 => Q8_0_Q8_0(weightRow, xQuantized),
        GgmlType.Q2_K => Q2_K_Q8_K(weightRow, xQuantized),
        GgmlType.Q3_K => Q3_K_Q8_K(weightRow, xQuantized),
        GgmlType.Q4_K => Q4_K_Q8_K(weightRow, xQuantized),
        GgmlType.Q5_K => Q5_K_Q8_K(weightRow, xQuantized),
        GgmlType.Q6_K => Q6_K_Q8_K(weightRow, xQuantized),
        GgmlType.IQ4_NL => IQ4_NL_Q8_0(weightRow, xQuantized),
        GgmlType.MXFP4 => MXFP4_Q8_0(weightRow, xQuantized),
        _ => throw new ArgumentException($"no reference dot product for {GgmlTypeInfo.Name(wType)} weights", nameof(wType)),
    };

    /// <summary>The weight row as blocks, and its element count.</summary>
    private static ReadOnlySpan<T> BlocksFor<T>(ReadOnlySpan<byte> w, GgmlType type, out int n) where T : unmanaged
    {
        n = QuantRows.ElementCount(w.Length, type);
        return QuantRows.Blocks<T>(w, n, type);
    }
}
