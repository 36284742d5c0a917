namespace SharpInfer.Tensors.Kernels;

/// <summary>Which kernel multiplies which weight type, for each precision mode.</summary>
public static class KernelRegistry
{
    private static readonly DequantizedKernel Dequantized = new();
    private static readonly Q8_0Kernel Q8_0 = new();
    private static readonly FloatKernel Float = new();

    public static MatMulKernel For(GgmlType type, MatMulPrecision precision)
    {
        // widening F16/BF16 to float is exact, so float weights use the float kernel in both modes
        if (FloatKernel.Supports(type)) return Float;
        if (precision == MatMulPrecision.Exact) return Dequantized;
        return type switch
        {
            GgmlType.Q8_0 => Q8_0,
            _ => Dequantized,
        };
    }

    /// <summary>Per-thread scratch (floats) that covers every registered kernel for rows of <paramref name="cols"/>.</summary>
    public static long MaxScratchFloats(int cols) =>
        Math.Max(Dequantized.ScratchFloats(cols), Math.Max(Q8_0.ScratchFloats(cols), Float.ScratchFloats(cols)));
}
