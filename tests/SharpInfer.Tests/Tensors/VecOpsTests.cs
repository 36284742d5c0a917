using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tests.Tensors.Kernels;

namespace SharpInfer.Tests.Tensors;

/// <summary>The vectorized element-wise kernels (exp, SiLU·mul, RoPE) on every instruction path against their
/// scalar references, with lengths that leave tails.</summary>
public unsafe class VecOpsTests
{
    private static float[] ExpInputs()
    {
        var rng = new Random(11);
        var list = new List<float> { 0f, -0f, 1f, -1f, 88.72f, 88.73f, 89f, 100f, -87.3f, -87.4f, -100f, -103.97f, -104f, -110f,
                                     float.PositiveInfinity, float.NegativeInfinity, float.NaN, float.Epsilon, -float.Epsilon, 1e-10f };
        for (int i = 0; i < 400_000; i++) list.Add((float)(rng.NextDouble() * 200 - 108));
        for (int i = 0; i < 100_000; i++) list.Add((float)(rng.NextDouble() * 2 - 1));
        return list.ToArray();
    }

    /// <summary>Within 1.01 ulp of the exact e^x (subnormal results included), the specials right, and every
    /// vector width bit-identical.</summary>
    [Fact]
    public void VectorExpIsAccurateAndTheSameOnEveryWidth()
    {
        var xs = ExpInputs();
        for (int i = 0; i < xs.Length; i++)
        {
            float x = xs[i];
            float v128 = VecMath.Exp(Vector128.Create(x))[0];
            if (Avx2.IsSupported && Fma.IsSupported)
                Assert.Equal(BitConverter.SingleToInt32Bits(v128), BitConverter.SingleToInt32Bits(VecMath.Exp(Vector256.Create(x))[2]));
            if (Avx512F.IsSupported)
                Assert.Equal(BitConverter.SingleToInt32Bits(v128), BitConverter.SingleToInt32Bits(VecMath.Exp(Vector512.Create(x))[9]));
            double exact = Math.Exp(x);
            if (float.IsNaN(x)) { Assert.True(float.IsNaN(v128)); continue; }
            float rounded = (float)exact;
            if (float.IsInfinity(rounded) || rounded == 0) { Assert.Equal(rounded, v128); continue; }
            double ulp = (double)MathF.BitIncrement(rounded) - rounded;
            Assert.True(Math.Abs(v128 - exact) <= 1.01 * ulp, $"exp({x:R}) = {v128:R}, exact {exact:R} ({Math.Abs(v128 - exact) / ulp:F3} ulp)");
        }
    }

    [Fact]
    public void SiluMulVectorPathsMatchTheScalarPathAndDoNotDependOnPosition()
    {
        var rng = new Random(2);
        int n = 1001;
        var g = new float[n];
        var u = new float[n];
        for (int i = 0; i < n; i++)
        {
            g[i] = (float)(KernelHarness.Gaussian(rng) * (i % 10 == 0 ? 40 : 3));
            u[i] = (float)KernelHarness.Gaussian(rng);
        }
        g[5] = 0; g[6] = -0f; g[7] = 95f; g[8] = -95f; g[9] = 200f; g[10] = -200f;
        var scalar = (float[])g.Clone();
        fixed (float* sp = scalar) fixed (float* up = u) VecOps.SiluMul(sp, up, n, IsaLevel.Scalar);
        foreach (var level in KernelHarness.Levels())
        {
            var all = (float[])g.Clone();
            fixed (float* ap = all) fixed (float* up = u) VecOps.SiluMul(ap, up, n, level);
            for (int i = 0; i < n; i++)
                Assert.True(Math.Abs(all[i] - scalar[i]) <= 5e-7 * Math.Abs(scalar[i]) + 1e-37,
                    $"{level}: silu({g[i]:R})·{u[i]:R} = {all[i]:R}, scalar {scalar[i]:R}");
            // an element's result does not depend on where the call starts or how long it is
            foreach (var (start, len) in new[] { (0, 1), (3, 17), (1, 15), (100, 33), (990, 11), (7, 993) })
            {
                var part = (float[])g.Clone();
                fixed (float* pp = part) fixed (float* up = u) VecOps.SiluMul(pp + start, up + start, len, level);
                for (int i = start; i < start + len; i++)
                    Assert.Equal(BitConverter.SingleToInt32Bits(all[i]), BitConverter.SingleToInt32Bits(part[i]));
            }
        }
    }

    public static TheoryData<Enum, int, int, int> RopeShapes() => new()
    {
        { RopeStyle.Normal, 3, 64, 64 },
        { RopeStyle.NeoX, 3, 64, 64 },
        { RopeStyle.Normal, 2, 128, 128 },
        { RopeStyle.NeoX, 5, 128, 128 },
        { RopeStyle.Normal, 4, 30, 26 },      // partial rotation, pair count with a tail on every width
        { RopeStyle.NeoX, 4, 30, 26 },
        { RopeStyle.NeoX, 2, 96, 32 },
        { RopeStyle.Normal, 1, 8, 6 },
        { RopeStyle.NeoX, 1, 8, 6 },
    };

    [Theory]
    [MemberData(nameof(RopeShapes))]
    public void RopeEveryPathEqualsTheScalarReference(Enum styleValue, int heads, int headDim, int nRot)
    {
        var style = (RopeStyle)styleValue;
        var rng = new Random(headDim * 3 + nRot);
        var x = new float[heads * headDim];
        for (int i = 0; i < x.Length; i++) x[i] = (float)KernelHarness.Gaussian(rng) * 2;
        var cs = new float[nRot];
        foreach (int pos in new[] { 0, 1, 37, 4095, 100_000 })
        {
            fixed (float* c = cs) Rope.Angles(pos, nRot, 1e6f, 1f, null, c);
            var want = (float[])x.Clone();
            fixed (float* w = want) fixed (float* c = cs) Rope.ApplyScalar(w, heads, headDim, nRot, style, c);
            foreach (var level in KernelHarness.Levels())
            {
                var got = (float[])x.Clone();
                fixed (float* gp = got) fixed (float* c = cs) Rope.Apply(gp, heads, headDim, nRot, style, c, level);
                for (int i = 0; i < got.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(got[i]) == BitConverter.SingleToInt32Bits(want[i]),
                        $"{style} {level} pos {pos}: element {i} = {got[i]:R}, scalar {want[i]:R}");
            }
        }
    }
}
