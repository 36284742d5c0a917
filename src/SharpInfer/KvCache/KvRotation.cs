using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpInfer.KvCache;

/// <summary>
/// Hadamard rotation of quantized KV rows, as llama.cpp does it (llama-kv-cache.cpp, <c>attn_rot_k</c> /
/// <c>attn_rot_v</c>; off there with <c>LLAMA_ATTN_ROT_DISABLE=1</c>). A head row has a few large channels (outliers);
/// a block quantizer's scale follows the block's largest value, so every small value of that block is coded
/// coarsely. The orthonormal Walsh–Hadamard matrix H (H = Hᵀ, H·H = I) spreads each outlier over the whole block
/// before quantization, which lowers the block's amax relative to its spread and so the rounding error.
/// <list type="bullet">
/// <item>Keys: k and q are both rotated (after RoPE), so q·k = (Hq)·(Hk) is unchanged in exact arithmetic; H spans
/// the largest power of two (≥ 64) that divides head_dim.</item>
/// <item>Values: v is rotated in 64-value pieces before it is stored; attention's output Σ pⱼ·Hvⱼ = H·Σ pⱼ·vⱼ is
/// rotated back with the same H.</item>
/// </list>
/// Only quantized formats rotate (F32/F16 rows are stored as they are) and only when head_dim is a multiple of 64,
/// llama.cpp's conditions. The transform is ggml's <c>ggml_compute_forward_fwht_f32</c>: scale by 1/√n first, then
/// butterflies (u + v, u − v) of span 1, 2, 4, …; each output element has one rounding order whatever the
/// instruction path, so rotated rows are the same bits everywhere (batch invariance holds).
/// </summary>
internal static unsafe class KvRotation
{
    /// <summary>Smallest rotation llama.cpp uses, and the only one for values.</summary>
    public const int MinSize = 64;

    /// <summary>Rotation size for keys (and queries) in <paramref name="keys"/> format at <paramref name="headDim"/>,
    /// 0 for none: the largest power of two ≥ 64 dividing head_dim (llama_kv_cache::build_input_k_rot).</summary>
    public static int KeySize(KvFormat keys, int headDim)
    {
        if (!keys.IsQuantized || headDim <= 0 || headDim % MinSize != 0) return 0;
        int n = MinSize;
        while (headDim % (2 * n) == 0) n *= 2;
        return n;
    }

    /// <summary>Rotation size for values in <paramref name="values"/> format, 0 for none: 64 (llama.cpp found the
    /// smallest rotation best for V; llama_kv_cache::build_input_v_rot).</summary>
    public static int ValueSize(KvFormat values, int headDim) =>
        values.IsQuantized && headDim > 0 && headDim % MinSize == 0 ? MinSize : 0;

    /// <summary>Rotates <paramref name="count"/> floats in place as consecutive pieces of <paramref name="n"/> (a power
    /// of two dividing count; 0: nothing to do). H is its own inverse, so the same call undoes it.</summary>
    public static void Rotate(float* x, int count, int n)
    {
        if (n == 0) return;
        if (n < 2 || (n & (n - 1)) != 0 || count % n != 0)
            throw new ArgumentException($"a Hadamard rotation of {n} values needs a power of two dividing {count}", nameof(n));
        float scale = 1f / MathF.Sqrt(n);
        for (int i = 0; i < count; i += n) Transform(x + i, n, scale);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transform(float* x, int n, float scale)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(scale);
            for (; i + 8 <= n; i += 8) (Vector256.Load(x + i) * s).Store(x + i);
        }
        for (; i < n; i++) x[i] *= scale;
        int len = 1;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            // spans 1, 2 and 4 inside each 8-value vector: lane i meets lane i ^ len; the lower lane of a pair keeps
            // u + v, the upper one gets u − v (written b − a there, the same operands): ggml's bits
            for (int j = 0; j < n; j += 8)
            {
                var a = Vector256.Load(x + j);
                a = Butterfly(a, Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6), Vector256.Create(0, -1, 0, -1, 0, -1, 0, -1));
                a = Butterfly(a, Vector256.Create(2, 3, 0, 1, 6, 7, 4, 5), Vector256.Create(0, 0, -1, -1, 0, 0, -1, -1));
                a = Butterfly(a, Vector256.Create(4, 5, 6, 7, 0, 1, 2, 3), Vector256.Create(0, 0, 0, 0, -1, -1, -1, -1));
                a.Store(x + j);
            }
            len = 8;
        }
        // without vectors (or for pieces shorter than one), the small spans go element by element; + and − round the same
        for (; len < n && (len < 8 || !Vector256.IsHardwareAccelerated); len <<= 1)
            for (int b = 0; b < n; b += 2 * len)
                for (int j = b; j < b + len; j++)
                {
                    float u = x[j], v = x[j + len];
                    x[j] = u + v;
                    x[j + len] = u - v;
                }
        for (; len < n; len <<= 1)
            for (int b = 0; b < n; b += 2 * len)
                for (int j = b; j < b + len; j += 8)
                {
                    var u = Vector256.Load(x + j);
                    var v = Vector256.Load(x + j + len);
                    (u + v).Store(x + j);
                    (u - v).Store(x + j + len);
                }
    }

    /// <summary>One butterfly stage within a vector: partner lanes from <paramref name="partner"/>, upper lanes marked
    /// in <paramref name="upper"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Butterfly(Vector256<float> a, Vector256<int> partner, Vector256<int> upper)
    {
        var b = Vector256.Shuffle(a, partner);
        return Vector256.ConditionalSelect(upper.AsSingle(), b - a, a + b);
    }
}
