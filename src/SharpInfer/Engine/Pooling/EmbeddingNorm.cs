namespace SharpInfer.Engine.Pooling;

/// <summary>llama.cpp's <c>common_embd_normalize</c>: scales a vector by 1 / its norm (nothing when the norm is 0).</summary>
internal static class EmbeddingNorm
{
    /// <summary>−1: no normalization; 0: max-absolute, scaled to the int16 range (÷ max|x| × 32760); 2: Euclidean;
    /// any other p &gt; 0: the p-norm.</summary>
    public static void Apply(Span<float> v, int norm)
    {
        double sum = 0;
        switch (norm)
        {
            case -1:
                return;
            case 0:
                foreach (var x in v) sum = Math.Max(sum, Math.Abs(x));
                sum /= 32760.0;
                break;
            case 2:
                foreach (var x in v) sum += (double)x * x;
                sum = Math.Sqrt(sum);
                break;
            default:
                foreach (var x in v) sum += Math.Pow(Math.Abs(x), norm);
                sum = Math.Pow(sum, 1.0 / norm);
                break;
        }
        float scale = sum > 0 ? (float)(1.0 / sum) : 0f;
        for (int i = 0; i < v.Length; i++) v[i] *= scale;
    }

    /// <summary>Whether <paramref name="norm"/> is one <see cref="Apply"/> knows (−1, 0 or a positive p).</summary>
    public static bool IsValid(int norm) => norm >= -1;
}
