using System.Numerics;

namespace SharpInfer.Quantization.Gptq;

/// <summary>
/// What GPTQ needs from a layer input's Hessian H = XᵀX: the upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU). Row j of U
/// says how the rounding error of column j spreads over the columns after it. Computed without forming H⁻¹: with J the
/// reversal permutation, chol(J·H·J) = L gives H = (JLJ)(JLJ)ᵀ, so H⁻¹ = UᵀU with U = J·L⁻¹·J — one Cholesky and one
/// triangular inverse (n³/3 multiply-adds in all instead of GPTQ's usual three n³ steps). Float arithmetic, blocked
/// for the cache and vectorized; every element is summed in a fixed order, so the result does not depend on the thread
/// count.
/// </summary>
internal static class InverseHessian
{
    /// <summary>GPTQ's damping: 1% of the mean diagonal is added to the diagonal (Frantar et al. 2022).</summary>
    public const float DampFraction = 0.01f;

    private const int Panel = 64;

    /// <summary>Damps <paramref name="h"/> (n×n, symmetric, row-major; overwritten) and returns U, the upper
    /// Cholesky factor of its inverse (n×n row-major, zeros below the diagonal). A column never seen (zero diagonal)
    /// gets a diagonal of 1, as in the reference implementation; its weights should be zeroed by the caller.</summary>
    public static float[] UpperCholeskyOfInverse(float[] h, int n, int threads)
    {
        if (h.Length != (long)n * n) throw new ArgumentException($"H has {h.Length} values, not {n}×{n}", nameof(h));
        double mean = 0;
        for (int i = 0; i < n; i++) mean += h[(long)i * n + i];
        mean /= n;
        if (!(mean > 0)) throw new QuantizationException("the calibration activations of a matrix input are all zero; GPTQ has nothing to go on");
        float damp = (float)(DampFraction * mean);
        // Reversed (J·H·J) and damped, into a fresh buffer that becomes L in place.
        var a = new float[(long)n * n];
        for (int i = 0; i < n; i++)
        {
            int ri = n - 1 - i;
            for (int j = 0; j <= i; j++) a[(long)i * n + j] = h[(long)ri * n + (n - 1 - j)];
            float d = h[(long)ri * n + ri];
            a[(long)i * n + i] = (d == 0f ? 1f : d) + damp;
        }
        Cholesky(a, n, threads);
        // X = L⁻¹ into h's buffer, then U = J·X·J back into a.
        Array.Clear(h);
        InvertLower(a, h, n, threads);
        Array.Clear(a);
        Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            long xi = (long)(n - 1 - i) * n;
            for (int k = i; k < n; k++) a[(long)i * n + k] = h[xi + (n - 1 - k)];
        });
        return a;
    }

    /// <summary>In-place lower Cholesky (A = LLᵀ, lower triangle used and overwritten, upper untouched), right-looking
    /// in panels of 64 columns: factor the panel, then subtract its outer product from the rest, row by row in parallel.</summary>
    public static void Cholesky(float[] a, int n, int threads)
    {
        var opts = new ParallelOptions { MaxDegreeOfParallelism = threads };
        var panelT = new float[(long)Panel * n];
        for (int k0 = 0; k0 < n; k0 += Panel)
        {
            int kb = Math.Min(Panel, n - k0), k1 = k0 + kb;
            // The diagonal block, unblocked.
            for (int j = k0; j < k1; j++)
            {
                long rj = (long)j * n;
                float d = a[rj + j];
                for (int m = k0; m < j; m++) d -= a[rj + m] * a[rj + m];
                if (!(d > 0f)) throw new QuantizationException("the damped Hessian is not positive definite (calibration activations too degenerate for GPTQ)");
                float ljj = MathF.Sqrt(d);
                a[rj + j] = ljj;
                for (int i = j + 1; i < k1; i++)
                {
                    long ri = (long)i * n;
                    float s = a[ri + j];
                    for (int m = k0; m < j; m++) s -= a[ri + m] * a[rj + m];
                    a[ri + j] = s / ljj;
                }
            }
            if (k1 >= n) break;
            // The rows below the diagonal block: solve against it.
            Parallel.For(k1, n, opts, i =>
            {
                long ri = (long)i * n;
                for (int j = k0; j < k1; j++)
                {
                    long rj = (long)j * n;
                    float s = a[ri + j];
                    for (int m = k0; m < j; m++) s -= a[ri + m] * a[rj + m];
                    a[ri + j] = s / a[rj + j];
                }
            });
            // The panel transposed (panelT[m, i] = L[i, k0 + m]) so the update below runs along rows.
            for (int i = k1; i < n; i++)
                for (int m = 0; m < kb; m++) panelT[(long)m * n + i] = a[(long)i * n + k0 + m];
            Parallel.For(k1, n, opts, i =>
            {
                long ri = (long)i * n;
                for (int m = 0; m < kb; m++)
                {
                    float lim = a[ri + k0 + m];
                    if (lim == 0f) continue;
                    Axpy(a.AsSpan().Slice((int)(ri + k1), i - k1 + 1), -lim, panelT.AsSpan().Slice((int)((long)m * n + k1), i - k1 + 1));
                }
            });
        }
    }

    /// <summary>X = L⁻¹ for lower-triangular L (only its lower triangle read), by independent blocks of 64 columns: each
    /// block is a forward substitution whose rows are combinations of earlier rows.</summary>
    public static void InvertLower(float[] l, float[] x, int n, int threads)
    {
        int blocks = (n + Panel - 1) / Panel;
        Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = threads }, () => new float[(long)n * Panel], (b, _, xb) =>
        {
            int c0 = b * Panel, cb = Math.Min(Panel, n - c0);
            Array.Clear(xb);
            for (int i = c0; i < n; i++)
            {
                var row = xb.AsSpan((i - c0) * Panel, Panel);
                if (i < c0 + cb) row[i - c0] = 1f;
                long ri = (long)i * n;
                for (int k = c0; k < i; k++)
                {
                    float lik = l[ri + k];
                    if (lik != 0f) Axpy(row, -lik, xb.AsSpan((k - c0) * Panel, Panel));
                }
                float inv = 1f / l[ri + i];
                for (int c = 0; c < cb; c++) x[ri + c0 + c] = row[c] * inv;
                for (int c = 0; c < Panel; c++) row[c] *= inv;
            }
            return xb;
        }, _ => { });
    }

    /// <summary>y += a·x, vectorized; the same operations for every element whatever the split.</summary>
    public static void Axpy(Span<float> y, float a, ReadOnlySpan<float> x)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && y.Length >= Vector<float>.Count)
        {
            var va = new Vector<float>(a);
            for (; i <= y.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var vy = new Vector<float>(y.Slice(i));
                (vy + va * new Vector<float>(x.Slice(i))).CopyTo(y.Slice(i));
            }
        }
        for (; i < y.Length; i++) y[i] += a * x[i];
    }
}
