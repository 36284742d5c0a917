namespace SharpInfer.Tensors.Kernels;

/// <summary>Which kernel multiplies which weight type, for each precision mode.</summary>
internal static class KernelRegistry
{
    private static readonly DequantizedKernel Dequantized = new();
    private static readonly Q8_0Kernel Q8_0 = new();
    private static readonly Q4_0Kernel Q4_0 = new();
    private static readonly Q4_1Kernel Q4_1 = new();
    private static readonly Q5_0Kernel Q5_0 = new();
    private static readonly IQ4_NLKernel IQ4_NL = new();
    private static readonly MXFP4Kernel MXFP4 = new();
    private static readonly Q2_KKernel Q2_K = new();
    private static readonly Q3_KKernel Q3_K = new();
    private static readonly Q4_KKernel Q4_K = new();
    private static readonly Q5_KKernel Q5_K = new();
    private static readonly Q6_KKernel Q6_K = new();
    private static readonly FloatKernel Float = new();

    public static MatMulKernel For(GgmlType type, MatMulPrecision precision)
    {
        // widening F16/BF16 to float is exact, so float weights use the float kernel in both modes
        if (FloatKernel.Supports(type)) return Float;
        if (precision == MatMulPrecision.Exact) return Dequantized;
        return type switch
        {
            GgmlType.Q8_0 => Q8_0,
            GgmlType.Q4_0 => Q4_0,
            GgmlType.Q4_1 => Q4_1,
            GgmlType.Q5_0 => Q5_0,
            GgmlType.IQ4_NL => IQ4_NL,
            GgmlType.MXFP4 => MXFP4,
            GgmlType.Q2_K => Q2_K,
            GgmlType.Q3_K => Q3_K,
            GgmlType.Q4_K => Q4_K,
            GgmlType.Q5_K => Q5_K,
            GgmlType.Q6_K => Q6_K,
            _ => Dequantized,
        };
    }

    /// <summary>Per-thread scratch (floats) that covers every registered kernel for rows of <paramref name="cols"/>.</summary>
    public static long MaxScratchFloats(int cols)
    {
        long max = 0;
        foreach (var k in All) max = Math.Max(max, k.ScratchFloats(cols));
        return max;
    }

    private static readonly MatMulKernel[] All = [Dequantized, Q8_0, Q4_0, Q4_1, Q5_0, IQ4_NL, MXFP4, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Float];
}
