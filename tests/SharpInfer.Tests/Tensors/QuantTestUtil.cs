using SharpInfer.Tensors;

namespace SharpInfer.Tests.Tensors;

internal static class QuantTestUtil
{
    /// <summary>Seeded normal(0, sigma) samples.</summary>
    public static float[] Gaussian(int seed, int n, float sigma = 1f)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = (float)(sigma * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return x;
    }

    public static byte[] QuantizeRow(GgmlType type, ReadOnlySpan<float> x)
    {
        var q = new byte[GgmlTypeInfo.RowSize(type, x.Length)];
        Quantize.Row(type, x, q);
        return q;
    }

    public static float[] DequantizeRow(GgmlType type, ReadOnlySpan<byte> q, int n)
    {
        var y = new float[n];
        Dequantize.Row(type, q, y);
        return y;
    }

    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    public static double AbsDot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += Math.Abs((double)a[i] * b[i]);
        return s;
    }

    /// <summary>2^-24: the unit roundoff of float32.</summary>
    public const double U = 1.0 / (1 << 24);
}
