namespace SharpInfer.Tensors.Kernels;

/// <summary>Which kernel multiplies which weight type, for each precision mode.</summary>
public static class KernelRegistry
{
    private static readonly DequantizedKernel Dequantized = new();
    private static readonly Q8_0Kernel Q8_0 = new();
    private static readonly Q4_0Kernel Q4_0 = new();
    private static readonly Q4_1Kernel Q4_1 = new();
    private static readonly Q5_0Kernel Q5_0 = new();
    private static readonly IQ4_NLKernel IQ4_NL = new();
    private static readonly Q2_KKernel Q2_K = new();
    private static readonly Q3_KKernel Q3_K = new();
    private static readonly Q4_KKernel Q4_K = new();
    private static readonly Q5_KKernel Q5_K = new();
    private static readonly Q6_KKernel Q6_K = new();

    public static MatMulKernel For(GgmlType type, MatMulPrecision precision)
    {
        if (precision == MatMulPrecision.Exact) return Dequantized;
        return type switch
        {
            GgmlType.Q8_0 => Q8_0,
            GgmlType.Q4_0 => Q4_0,
            GgmlType.Q4_1 => Q4_1,
            GgmlType.Q5_0 => Q5_0,
            GgmlType.IQ4_NL => IQ4_NL,
            GgmlType.Q2_K => Q2_K,
            GgmlType.Q3_K => Q3_K,
            GgmlType.Q4_K => Q4_K,
            GgmlType.Q5_K => Q5_K,
            GgmlType.Q6_K => Q6_K,
            _ => Dequantized,
        };
    }
}
