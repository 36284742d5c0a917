using System.Runtime.Intrinsics;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// Computes y[t·yStride + r] = dot(W row r, x token t) for a range of rows and all tokens of an input, for one
/// weight format and one activation format. Contract (batch invariance): the arithmetic for a (row, token) pair
/// is the same sequence of operations whatever the number of tokens, the row range or the thread, so a token's
/// output never depends on what else is in the batch.
/// </summary>
internal abstract unsafe class MatMulKernel
{
    public abstract ActivationFormat Format { get; }

    /// <summary>Floats of per-thread scratch the kernel needs for a matrix with <paramref name="cols"/> inputs.</summary>
    public virtual long ScratchFloats(int cols) => 0;

    public abstract void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch);

    /// <summary>Sum of 8 float lanes in a fixed order (used by every vector path so results are reproducible).</summary>
    public static float HorizontalSum(Vector256<float> v)
    {
        var h = v.GetLower() + v.GetUpper();
        return (h[0] + h[2]) + (h[1] + h[3]);
    }

    public static float HorizontalSum(Vector512<float> v) => HorizontalSum(v.GetLower() + v.GetUpper());
}
