using SharpInfer.Models;

namespace SharpInfer.Tensors;

/// <summary>
/// Rotary position embeddings, computed the way ggml does: angle_i = freqScale · p · base^(-2i/n_rot) / factor_i,
/// with base^(-2i/n_rot) built by repeated float multiplication as ggml's rope cache does, so positions rotate
/// identically. Normal style rotates pairs (2i, 2i+1), NeoX style (i, i + n_rot/2); dimensions past n_rot pass
/// through.
/// </summary>
public static unsafe class Rope
{
    /// <summary>Fills cos/sin for one position: cs[2i] = cos(angle_i), cs[2i+1] = sin(angle_i), i &lt; n_rot/2.</summary>
    public static void Angles(int position, int nRot, float freqBase, float freqScale, float[]? factors, float* cs)
    {
        float thetaScale = MathF.Pow(freqBase, -2.0f / nRot);
        float theta = position;
        for (int i = 0; i < nRot / 2; i++)
        {
            float ff = factors != null ? factors[i] : 1.0f;
            float angle = freqScale * (theta / ff);
            cs[2 * i] = MathF.Cos(angle);
            cs[2 * i + 1] = MathF.Sin(angle);
            theta *= thetaScale;
        }
    }

    /// <summary>Rotates <paramref name="heads"/> consecutive heads of size <paramref name="headDim"/> in place.</summary>
    public static void Apply(float* x, int heads, int headDim, int nRot, RopeStyle style, float* cs)
    {
        int half = nRot / 2;
        for (int h = 0; h < heads; h++)
        {
            float* v = x + h * headDim;
            if (style == RopeStyle.Normal)
            {
                for (int i = 0; i < half; i++)
                {
                    float c = cs[2 * i], s = cs[2 * i + 1];
                    float x0 = v[2 * i], x1 = v[2 * i + 1];
                    v[2 * i] = x0 * c - x1 * s;
                    v[2 * i + 1] = x0 * s + x1 * c;
                }
            }
            else
            {
                for (int i = 0; i < half; i++)
                {
                    float c = cs[2 * i], s = cs[2 * i + 1];
                    float x0 = v[i], x1 = v[i + half];
                    v[i] = x0 * c - x1 * s;
                    v[i + half] = x0 * s + x1 * c;
                }
            }
        }
    }
}
