using System.Runtime.Intrinsics;
using SharpInfer.Models;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors;

/// <summary>
/// Rotary position embeddings, computed the way ggml does: angle_i = freqScale · p · base^(-2i/n_rot) / factor_i,
/// with base^(-2i/n_rot) built by repeated float multiplication as ggml's rope cache does, so positions rotate
/// identically. Normal style rotates pairs (2i, 2i+1), NeoX style (i, i + n_rot/2); dimensions past n_rot pass
/// through.
/// </summary>
internal static unsafe class Rope
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
    public static void Apply(float* x, int heads, int headDim, int nRot, RopeStyle style, float* cs) =>
        Apply(x, heads, headDim, nRot, style, cs, Isa.Level);

    /// <summary>
    /// <see cref="Apply(float*, int, int, int, RopeStyle, float*)"/> on a chosen path. Every path computes
    /// x0·c − x1·s and x0·s + x1·c with separately rounded products (no fused multiply-add), so all paths give
    /// the same bits: the vector paths lay cos/sin out once per call (duplicated per pair for the normal style,
    /// with −sin on even lanes; planar for NeoX) and use one pair swap per vector.
    /// </summary>
    public static void Apply(float* x, int heads, int headDim, int nRot, RopeStyle style, float* cs, IsaLevel level)
    {
        int half = nRot / 2;
        int width = level >= IsaLevel.Avx512 && Vector512.IsHardwareAccelerated ? 16
                  : level >= IsaLevel.Avx2 && Vector256.IsHardwareAccelerated ? 8
                  : level >= IsaLevel.Portable ? 4 : 0;
        if (width == 0 || nRot > 4096 || (style == RopeStyle.Normal ? nRot : half) < width)
        {
            ApplyScalar(x, heads, headDim, nRot, style, cs);
            return;
        }
        float* c = stackalloc float[nRot];
        float* sn = stackalloc float[nRot];
        if (style == RopeStyle.Normal)
        {
            for (int i = 0; i < half; i++)
            {
                c[2 * i] = c[2 * i + 1] = cs[2 * i];
                sn[2 * i] = -cs[2 * i + 1];
                sn[2 * i + 1] = cs[2 * i + 1];
            }
        }
        else
        {
            for (int i = 0; i < half; i++) { c[i] = cs[2 * i]; sn[i] = cs[2 * i + 1]; }
        }
        for (int h = 0; h < heads; h++)
        {
            float* v = x + h * headDim;
            int i = 0;
            if (style == RopeStyle.Normal)
            {
                if (width == 16)
                {
                    var swap = Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
                    for (; i + 16 <= nRot; i += 16)
                    {
                        var xv = Vector512.Load(v + i);
                        (xv * Vector512.Load(c + i) + Vector512.Shuffle(xv, swap) * Vector512.Load(sn + i)).Store(v + i);
                    }
                }
                else if (width == 8)
                {
                    var swap = Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6);
                    for (; i + 8 <= nRot; i += 8)
                    {
                        var xv = Vector256.Load(v + i);
                        (xv * Vector256.Load(c + i) + Vector256.Shuffle(xv, swap) * Vector256.Load(sn + i)).Store(v + i);
                    }
                }
                else
                {
                    var swap = Vector128.Create(1, 0, 3, 2);
                    for (; i + 4 <= nRot; i += 4)
                    {
                        var xv = Vector128.Load(v + i);
                        (xv * Vector128.Load(c + i) + Vector128.Shuffle(xv, swap) * Vector128.Load(sn + i)).Store(v + i);
                    }
                }
                for (i &= ~1; i < nRot - 1; i += 2)
                {
                    float x0 = v[i], x1 = v[i + 1];
                    v[i] = x0 * c[i] - x1 * sn[i + 1];
                    v[i + 1] = x0 * sn[i + 1] + x1 * c[i];
                }
            }
            else
            {
                if (width == 16)
                    for (; i + 16 <= half; i += 16)
                    {
                        var x0 = Vector512.Load(v + i); var x1 = Vector512.Load(v + i + half);
                        var cv = Vector512.Load(c + i); var sv = Vector512.Load(sn + i);
                        (x0 * cv - x1 * sv).Store(v + i);
                        (x0 * sv + x1 * cv).Store(v + i + half);
                    }
                else if (width == 8)
                    for (; i + 8 <= half; i += 8)
                    {
                        var x0 = Vector256.Load(v + i); var x1 = Vector256.Load(v + i + half);
                        var cv = Vector256.Load(c + i); var sv = Vector256.Load(sn + i);
                        (x0 * cv - x1 * sv).Store(v + i);
                        (x0 * sv + x1 * cv).Store(v + i + half);
                    }
                else
                    for (; i + 4 <= half; i += 4)
                    {
                        var x0 = Vector128.Load(v + i); var x1 = Vector128.Load(v + i + half);
                        var cv = Vector128.Load(c + i); var sv = Vector128.Load(sn + i);
                        (x0 * cv - x1 * sv).Store(v + i);
                        (x0 * sv + x1 * cv).Store(v + i + half);
                    }
                for (; i < half; i++)
                {
                    float x0 = v[i], x1 = v[i + half];
                    v[i] = x0 * c[i] - x1 * sn[i];
                    v[i + half] = x0 * sn[i] + x1 * c[i];
                }
            }
        }
    }

    /// <summary>The scalar reference.</summary>
    public static void ApplyScalar(float* x, int heads, int headDim, int nRot, RopeStyle style, float* cs)
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
