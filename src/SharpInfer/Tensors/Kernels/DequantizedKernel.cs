using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// The exact path for any supported weight type: rows are dequantized exactly (like ggml's to_float) into per-thread
/// scratch, a group at a time, and multiplied with float activations. No weight matrix is ever dequantized whole.
/// </summary>
internal sealed unsafe class DequantizedKernel : MatMulKernel
{
    public const int RowGroup = 8;
    public override ActivationFormat Format => ActivationFormat.F32;
    public override long ScratchFloats(int cols) => (long)RowGroup * cols;

    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch)
    {
        int cols = w.Cols;
        for (int g0 = r0; g0 < r1; g0 += RowGroup)
        {
            int g1 = Math.Min(r1, g0 + RowGroup);
            for (int r = g0; r < g1; r++)
                w.DequantizeRow(r, new Span<float>(scratch + (long)(r - g0) * cols, cols));
            for (int t = 0; t < x.Tokens; t++)
            {
                float* xt = x.F32 + (long)t * cols;
                float* yt = y + (long)t * yStride;
                for (int r = g0; r < g1; r++)
                    yt[r] = VecOps.Dot(scratch + (long)(r - g0) * cols, xt, cols, level);
            }
        }
    }
}
