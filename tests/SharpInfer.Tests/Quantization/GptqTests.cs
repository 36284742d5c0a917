using SharpInfer.Quantization;
using SharpInfer.Quantization.Gptq;
using SharpInfer.Tensors;

namespace SharpInfer.Tests.Quantization;

/// <summary>GPTQ from first principles: the inverse-Hessian factor is what it claims to be; with H = I the error
/// feedback vanishes and each weight lands on the nearest point of the grid the format's own quantizer chose; on
/// correlated inputs the layer's output error is smaller than with plain (importance-weighted) rounding; the bytes do
/// not depend on the thread count.</summary>
public class GptqTests
{
    public static TheoryData<string> Types => new("q4_0", "q4_1", "q5_0", "q5_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K");

    private static GgmlType Parse(string name) => GgmlTypeInfo.TryParse(name, out var t) ? t : throw new ArgumentException(name);

    private static float[] Normal(Random rng, int count, double scale = 1)
    {
        var v = new float[count];
        for (int i = 0; i < count; i++)
            v[i] = (float)(scale * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return v;
    }

    /// <summary>X (tokens × n) with strongly correlated, unevenly scaled columns: Z·A plus a per-column scale.</summary>
    private static float[] CorrelatedInputs(Random rng, int tokens, int n)
    {
        int k = n / 4;
        var z = Normal(rng, tokens * k);
        var a = Normal(rng, k * n);
        var x = new float[tokens * n];
        for (int t = 0; t < tokens; t++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int m = 0; m < k; m++) s += z[t * k + m] * a[m * n + j];
                x[t * n + j] = (float)(s * (1 + 3 * ((j * 7919) % 13) / 13.0) / Math.Sqrt(k));
            }
        return x;
    }

    private static float[] Gram(float[] x, int tokens, int n)
    {
        var h = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int t = 0; t < tokens; t++) s += (double)x[t * n + i] * x[t * n + j];
                h[i * n + j] = (float)s;
            }
        return h;
    }

    [Theory]
    [InlineData(100)]
    [InlineData(130)]
    public void The_factor_is_the_upper_Cholesky_factor_of_the_damped_inverse(int n)
    {
        var rng = new Random(n);
        var x = CorrelatedInputs(rng, 3 * n, n);
        var h = Gram(x, 3 * n, n);
        var damped = (float[])h.Clone();
        double mean = 0;
        for (int i = 0; i < n; i++) mean += h[i * n + i];
        for (int i = 0; i < n; i++) damped[i * n + i] += (float)(InverseHessian.DampFraction * mean / n);
        var u = InverseHessian.UpperCholeskyOfInverse(h, n, 2);
        // U upper triangular with a positive diagonal, and Uᵀ·U·H = I.
        for (int i = 0; i < n; i++)
        {
            Assert.True(u[i * n + i] > 0);
            for (int j = 0; j < i; j++) Assert.Equal(0f, u[i * n + j]);
        }
        var inv = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int k = 0; k <= Math.Min(i, j); k++) s += (double)u[k * n + i] * u[k * n + j];
                inv[i * n + j] = s;
            }
        double worst = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int k = 0; k < n; k++) s += inv[i * n + k] * damped[k * n + j];
                worst = Math.Max(worst, Math.Abs(s - (i == j ? 1 : 0)));
            }
        Assert.True(worst < 2e-3, $"Uᵀ·U·H differs from I by {worst}");
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void With_H_equal_to_I_each_weight_rounds_to_the_nearest_point_of_the_formats_grid(string typeName)
    {
        var type = Parse(typeName);
        const int rows = 6, n = 512;
        var rng = new Random((int)type);
        var w = Normal(rng, rows * n, 0.02);
        var identity = new float[n * n];
        for (int i = 0; i < n; i++) identity[i * n + i] = 1f;
        var u = InverseHessian.UpperCholeskyOfInverse(identity, n, 1);
        var importance = Enumerable.Repeat(1f, n).ToArray();
        int rowBytes = (int)GgmlTypeInfo.RowSize(type, n), blockElems = GgmlTypeInfo.BlockSize(type), blockBytes = GgmlTypeInfo.TypeSize(type);
        var gptq = new byte[rows * rowBytes];
        GptqQuantizer.Quantize(type, w, rows, n, u, importance, null, gptq, 2);

        var reference = new byte[rowBytes];
        var scratch = new byte[blockBytes];
        float[] off = new float[blockElems], step = new float[blockElems], refOff = new float[blockElems], refStep = new float[blockElems];
        var decoded = new float[n];
        int maxCode = BlockCodes.MaxCode(type);
        for (int r = 0; r < rows; r++)
        {
            var x = w.AsSpan(r * n, n);
            var row = gptq.AsSpan(r * rowBytes, rowBytes);
            Dequantize.Row(type, row, decoded);
            for (int b = 0; b < n / blockElems; b++)
            {
                // The grid is the one the format's quantizer picks for the untouched weights (nothing was fed back) ...
                WeightedQuantize.Row(type, x.Slice(b * blockElems, blockElems), importance.AsSpan(b * blockElems, blockElems), reference.AsSpan(0, blockBytes));
                BlockCodes.Grid(type, reference.AsSpan(0, blockBytes), scratch, refOff, refStep);
                BlockCodes.Grid(type, row.Slice(b * blockBytes, blockBytes), scratch, off, step);
                Assert.Equal(refOff, off);
                Assert.Equal(refStep, step);
                // ... and every weight sits on its nearest point.
                for (int e = 0; e < blockElems; e++)
                {
                    float xe = x[b * blockElems + e], got = decoded[b * blockElems + e];
                    float tolerance = 1e-6f * Math.Max(1f, Math.Abs(step[e]) * maxCode);
                    for (int c = 0; c <= maxCode; c++)
                        Assert.True(Math.Abs(xe - got) <= Math.Abs(xe - (off[e] + c * step[e])) + tolerance,
                            $"row {r} element {b * blockElems + e}: {got} is not the nearest grid point to {xe} (code {c} is nearer)");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Gptq_has_a_smaller_layer_output_error_than_plain_rounding_on_correlated_inputs(string typeName)
    {
        var type = Parse(typeName);
        const int rows = 16, n = 256, tokens = 768;
        var rng = new Random(100 + (int)type);
        var x = CorrelatedInputs(rng, tokens, n);
        var w = Normal(rng, rows * n, 0.05);
        var h = Gram(x, tokens, n);
        var importance = new float[n];
        for (int i = 0; i < n; i++) importance[i] = h[i * n + i] / tokens;
        var u = InverseHessian.UpperCholeskyOfInverse((float[])h.Clone(), n, 2);
        int rowBytes = (int)GgmlTypeInfo.RowSize(type, n);
        var gptq = new byte[rows * rowBytes];
        GptqQuantizer.Quantize(type, w, rows, n, u, importance, null, gptq, 2);
        var plain = new byte[rows * rowBytes];
        for (int r = 0; r < rows; r++) WeightedQuantize.Row(type, w.AsSpan(r * n, n), importance, plain.AsSpan(r * rowBytes, rowBytes));

        double OutputError(byte[] q)
        {
            var d = new float[n];
            double sum = 0;
            for (int r = 0; r < rows; r++)
            {
                Dequantize.Row(type, q.AsSpan(r * rowBytes, rowBytes), d);
                for (int t = 0; t < tokens; t++)
                {
                    double e = 0;
                    for (int j = 0; j < n; j++) e += (double)x[t * n + j] * (w[r * n + j] - d[j]);
                    sum += e * e;
                }
            }
            return sum;
        }
        double eg = OutputError(gptq), ep = OutputError(plain);
        Assert.True(eg < 0.9 * ep, $"{type}: GPTQ output error {eg:G4}, plain rounding {ep:G4}");
    }

    [Theory]
    [InlineData("q4_0")]
    [InlineData("q3_K")]
    public void The_bytes_do_not_depend_on_the_thread_count(string typeName)
    {
        var type = Parse(typeName);
        const int rows = 40, n = 512, tokens = 600;
        var rng = new Random(7);
        var x = CorrelatedInputs(rng, tokens, n);
        var w = Normal(rng, rows * n, 0.05);
        var h = Gram(x, tokens, n);
        var u1 = InverseHessian.UpperCholeskyOfInverse((float[])h.Clone(), n, 1);
        var u3 = InverseHessian.UpperCholeskyOfInverse((float[])h.Clone(), n, 3);
        Assert.Equal(u1, u3);
        int rowBytes = (int)GgmlTypeInfo.RowSize(type, n);
        byte[] a = new byte[rows * rowBytes], b = new byte[rows * rowBytes];
        GptqQuantizer.Quantize(type, w, rows, n, u1, null, null, a, 1);
        GptqQuantizer.Quantize(type, w, rows, n, u1, null, null, b, 3);
        Assert.Equal(a, b);
    }
}
