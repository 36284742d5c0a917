using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tensors.Kernels;

namespace SharpInfer.Tests.Tensors.Kernels;

/// <summary>Every matmul kernel on every instruction path: against the scalar reference and for batch invariance,
/// with odd row counts, odd token counts and row lengths that leave tails.</summary>
public class MatMulKernelTests
{
    public static TheoryData<GgmlType, MatMulPrecision, int, int, int> Cases()
    {
        var d = new TheoryData<GgmlType, MatMulPrecision, int, int, int>();
        foreach (var (type, precision) in new[]
                 {
                     (GgmlType.Q8_0, MatMulPrecision.Fast),
                     (GgmlType.Q8_0, MatMulPrecision.Exact), (GgmlType.Q4_0, MatMulPrecision.Exact), (GgmlType.Q4_K, MatMulPrecision.Exact),
                     (GgmlType.Q6_K, MatMulPrecision.Exact), (GgmlType.F16, MatMulPrecision.Exact), (GgmlType.F32, MatMulPrecision.Exact),
                 })
        {
            int block = GgmlTypeInfo.BlockSize(type) == 256 ? 256 : 32;
            d.Add(type, precision, 13, block * 3, 7);
            d.Add(type, precision, 4, block * 8, 1);
            d.Add(type, precision, 9, block, 5);
        }
        // float weights: both modes use FloatKernel; any row length (tails past the 16-element chunks), several
        // K-blocks, token counts on both sides of the packing threshold and past one token block
        foreach (var type in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16 })
        {
            d.Add(type, MatMulPrecision.Fast, 13, 96, 7);
            d.Add(type, MatMulPrecision.Exact, 5, 1, 3);
            d.Add(type, MatMulPrecision.Fast, 7, 15, 2);
            d.Add(type, MatMulPrecision.Exact, 12, 17, 9);
            d.Add(type, MatMulPrecision.Fast, 11, 63, 1);
            d.Add(type, MatMulPrecision.Exact, 4, 1024, 6);
            d.Add(type, MatMulPrecision.Fast, 8, 2 * FloatKernel.KBlock + 48 + 5, 13);
            d.Add(type, MatMulPrecision.Exact, 6, 1037, FloatKernel.TokenBlock + 6);
        }
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void KernelMatchesReferenceOnEveryPathAndIsBatchInvariant(GgmlType type, MatMulPrecision precision, int rows, int cols, int tokens)
    {
        var kernel = KernelRegistry.For(type, precision);
        KernelHarness.Check(type, kernel, rows, cols, tokens, seed: rows * 1000 + cols + tokens);
    }

    [Fact]
    public unsafe void Q8_0ActivationQuantizationVectorPathEqualsScalar()
    {
        var rng = new Random(5);
        var x = new float[32 * 64];
        for (int i = 0; i < x.Length; i++) x[i] = (float)KernelHarness.Gaussian(rng) * (i % 5 == 0 ? 10 : 1);
        for (int i = 0; i < 64; i++) x[i * 32 + 3] = 63.5f / 127f * 2f * (i % 2 == 0 ? 1 : -1); // exact ties
        var qs = new sbyte[x.Length]; var qv = new sbyte[x.Length];
        var ds = new float[64]; var dv = new float[64];
        fixed (float* xp = x) fixed (sbyte* a = qs) fixed (sbyte* b = qv) fixed (float* da = ds) fixed (float* db = dv)
        {
            ActivationQuantizer.Row(ActivationFormat.Q8_0, xp, x.Length, a, da, null, null, IsaLevel.Scalar);
            ActivationQuantizer.Row(ActivationFormat.Q8_0, xp, x.Length, b, db, null, null, IsaLevel.Avx2);
        }
        Assert.Equal(qs, qv);
        Assert.Equal(ds, dv);
    }
}
