namespace SharpInfer.Tensors;

/// <summary>Scalar reference dequantizers, bit-exact with ggml's <c>to_float</c> for each type (checked
/// against ggml's own output in the tests). Every value is computed with the same float operations in the
/// same order as ggml's C code and no fused multiply-adds.</summary>
internal static partial class Dequantize
{
    /// <summary>True for the types <see cref="Row"/> can decode.</summary>
    public static bool IsSupported(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or
        GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q8_0 or GgmlType.Q8_1 or
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K or GgmlType.Q8_K or
        GgmlType.IQ4_NL or GgmlType.MXFP4 => true,
        _ => false,
    };

    /// <summary>Decodes one row: <paramref name="dst"/>.Length elements from exactly
    /// <c>GgmlTypeInfo.RowSize(type, dst.Length)</c> bytes.</summary>
    /// <exception cref="ArgumentException">Unsupported type, or lengths that disagree / are not whole blocks.</exception>
    public static void Row(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case GgmlType.F32: F32(src, dst); break;
            case GgmlType.F16: F16(src, dst); break;
            case GgmlType.BF16: BF16(src, dst); break;
            case GgmlType.Q4_0: Q4_0(src, dst); break;
            case GgmlType.Q4_1: Q4_1(src, dst); break;
            case GgmlType.Q5_0: Q5_0(src, dst); break;
            case GgmlType.Q5_1: Q5_1(src, dst); break;
            case GgmlType.Q8_0: Q8_0(src, dst); break;
            case GgmlType.Q8_1: Q8_1(src, dst); break;
            case GgmlType.Q2_K: Q2_K(src, dst); break;
            case GgmlType.Q3_K: Q3_K(src, dst); break;
            case GgmlType.Q4_K: Q4_K(src, dst); break;
            case GgmlType.Q5_K: Q5_K(src, dst); break;
            case GgmlType.Q6_K: Q6_K(src, dst); break;
            case GgmlType.Q8_K: Q8_K(src, dst); break;
            case GgmlType.IQ4_NL: IQ4_NL(src, dst); break;
            case GgmlType.MXFP4: MXFP4(src, dst); break;
            default: throw new ArgumentException($"dequantizing {GgmlTypeInfo.Name(type)} is not supported", nameof(type));
        }
    }
}
