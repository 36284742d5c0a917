namespace SharpInfer.Tensors.Kernels;

/// <summary>Which kernel multiplies which weight type, for each precision mode.</summary>
public static class KernelRegistry
{
    private static readonly DequantizedKernel Dequantized = new();
    private static readonly Q8_0Kernel Q8_0 = new();

    public static MatMulKernel For(GgmlType type, MatMulPrecision precision)
    {
        if (precision == MatMulPrecision.Exact) return Dequantized;
        return type switch
        {
            GgmlType.Q8_0 => Q8_0,
            _ => Dequantized,
        };
    }
}
