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
            _ => Dequantized,
        };
    }
}
