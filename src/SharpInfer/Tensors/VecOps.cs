using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors;

/// <summary>
/// Element-wise and reduction kernels on float vectors. Each has a scalar reference and vector paths picked by
/// <see cref="Isa.Level"/>. A given path always uses the same order of operations for a given length, so results
/// do not depend on batch composition (batch invariance).
/// </summary>
internal static unsafe class VecOps
{
    /// <summary>Dot product of two float vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(float* a, float* b, int n) => Dot(a, b, n, Isa.Level);

    /// <summary>Dot product on a chosen instruction path (tests compare paths in one process).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(float* a, float* b, int n, IsaLevel level)
    {
        if (level >= IsaLevel.Avx512 && Vector512.IsHardwareAccelerated) return Dot512(a, b, n);
        if (level >= IsaLevel.Portable) return Dot256(a, b, n);
        return DotScalar(a, b, n);
    }

    public static float DotScalar(float* a, float* b, int n)
    {
        float s = 0;
        for (int i = 0; i < n; i++) s += a[i] * b[i];
        return s;
    }

    private static float Dot512(float* a, float* b, int n)
    {
        var acc0 = Vector512<float>.Zero;
        var acc1 = Vector512<float>.Zero;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            acc0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), acc0);
            acc1 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 16), Vector512.Load(b + i + 16), acc1);
        }
        for (; i + 16 <= n; i += 16)
            acc0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), acc0);
        float s = Vector512.Sum(acc0 + acc1);
        for (; i < n; i++) s = MathF.FusedMultiplyAdd(a[i], b[i], s);
        return s;
    }

    private static float Dot256(float* a, float* b, int n)
    {
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), acc1);
        }
        for (; i + 8 <= n; i += 8)
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc0);
        float s = Vector256.Sum(acc0 + acc1);
        for (; i < n; i++) s = MathF.FusedMultiplyAdd(a[i], b[i], s);
        return s;
    }

    /// <summary>y = x * (1 / sqrt(mean(x²) + eps)) * w, with the sum of squares in double like ggml.</summary>
    public static void RmsNorm(float* x, float* w, float* y, int n, float eps)
    {
        double sum = 0;
        int i = 0;
        if (Isa.Level >= IsaLevel.Portable)
        {
            // Float squares (as ggml computes them) summed in double lanes: deterministic for a given n.
            var acc0 = Vector256<double>.Zero;
            var acc1 = Vector256<double>.Zero;
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(x + i);
                var sq = v * v;
                acc0 += Vector256.WidenLower(sq);
                acc1 += Vector256.WidenUpper(sq);
            }
            var acc = acc0 + acc1;
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++) sum += (double)x[i] * x[i];
        float scale = 1.0f / MathF.Sqrt((float)(sum / n) + eps);
        i = 0;
        if (Isa.Level >= IsaLevel.Portable)
        {
            var vs = Vector256.Create(scale);
            for (; i + 8 <= n; i += 8)
                Vector256.Store(Vector256.Load(x + i) * vs * Vector256.Load(w + i), y + i);
        }
        for (; i < n; i++) y[i] = x[i] * scale * w[i];
    }

    /// <summary>y += x.</summary>
    public static void Add(float* y, float* x, int n)
    {
        int i = 0;
        if (Isa.Level >= IsaLevel.Portable)
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(y + i) + Vector256.Load(x + i), y + i);
        for (; i < n; i++) y[i] += x[i];
    }

    /// <summary>g = silu(g) * u, silu(v) = v / (1 + e^-v).</summary>
    public static void SiluMul(float* g, float* u, int n) => SiluMul(g, u, n, Isa.Level);

    /// <summary>
    /// SiLU·mul on a chosen path. The scalar path uses <see cref="MathF.Exp"/>; the vector paths use
    /// <see cref="VecMath.Exp(Vector512{float})"/> (≤ 1.01 ulp, every width bit-identical), then the same
    /// (v / (1 + e)) · u. The last n mod width elements go through the same vector code (padded), so an element's
    /// result never depends on its position or on n (SiluMul runs over whole batches).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SiluMul(float* g, float* u, int n, IsaLevel level)
    {
        if (level >= IsaLevel.Avx512 && Vector512.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            int i = 0;
            for (; i + 16 <= n; i += 16) Vector512.Store(SiluMul(Vector512.Load(g + i), Vector512.Load(u + i)), g + i);
            if (i < n)
            {
                float* tg = stackalloc float[16];
                float* tu = stackalloc float[16];
                for (int j = 0; j < 16; j++) { tg[j] = i + j < n ? g[i + j] : 0; tu[j] = i + j < n ? u[i + j] : 0; }
                Vector512.Store(SiluMul(Vector512.Load(tg), Vector512.Load(tu)), tg);
                for (int j = 0; i + j < n; j++) g[i + j] = tg[j];
            }
        }
        else if (level >= IsaLevel.Avx2 && System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported)
        {
            int i = 0;
            for (; i + 8 <= n; i += 8) Vector256.Store(SiluMul(Vector256.Load(g + i), Vector256.Load(u + i)), g + i);
            if (i < n)
            {
                float* tg = stackalloc float[8];
                float* tu = stackalloc float[8];
                for (int j = 0; j < 8; j++) { tg[j] = i + j < n ? g[i + j] : 0; tu[j] = i + j < n ? u[i + j] : 0; }
                Vector256.Store(SiluMul(Vector256.Load(tg), Vector256.Load(tu)), tg);
                for (int j = 0; i + j < n; j++) g[i + j] = tg[j];
            }
        }
        else if (level >= IsaLevel.Portable)
        {
            int i = 0;
            for (; i + 4 <= n; i += 4) Vector128.Store(SiluMul(Vector128.Load(g + i), Vector128.Load(u + i)), g + i);
            if (i < n)
            {
                float* tg = stackalloc float[4];
                float* tu = stackalloc float[4];
                for (int j = 0; j < 4; j++) { tg[j] = i + j < n ? g[i + j] : 0; tu[j] = i + j < n ? u[i + j] : 0; }
                Vector128.Store(SiluMul(Vector128.Load(tg), Vector128.Load(tu)), tg);
                for (int j = 0; i + j < n; j++) g[i + j] = tg[j];
            }
        }
        else
        {
            for (int i = 0; i < n; i++)
            {
                float v = g[i];
                g[i] = v / (1.0f + MathF.Exp(-v)) * u[i];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> SiluMul(Vector512<float> v, Vector512<float> u) => v / (Vector512<float>.One + VecMath.Exp(-v)) * u;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> SiluMul(Vector256<float> v, Vector256<float> u) => v / (Vector256<float>.One + VecMath.Exp(-v)) * u;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> SiluMul(Vector128<float> v, Vector128<float> u) => v / (Vector128<float>.One + VecMath.Exp(-v)) * u;

    /// <summary>gpt-oss's clamped SwiGLU (ggml's swiglu_oai, llama.cpp's defaults alpha 1.702, limit 7):
    /// g = x·σ(alpha·x)·(y + 1) with x = min(g, limit), y = clamp(u, −limit, limit).</summary>
    public static void SwiGluOai(float* g, float* u, int n, float alpha = 1.702f, float limit = 7f) => SwiGluOai(g, u, n, alpha, limit, Isa.Level);

    /// <summary>
    /// Clamped SwiGLU on a chosen path, in ggml's order: x / (1 + e^(alpha·(−x))) · (y + 1), std::min / std::clamp
    /// semantics (a NaN input stays NaN). The scalar path uses <see cref="MathF.Exp"/>, the vector paths
    /// <see cref="VecMath.Exp(Vector512{float})"/>; as in <see cref="SiluMul(float*, float*, int, IsaLevel)"/> the tail is
    /// padded through the same vector code, so an element's result never depends on its position or on n.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SwiGluOai(float* g, float* u, int n, float alpha, float limit, IsaLevel level)
    {
        int width = level >= IsaLevel.Avx512 && Vector512.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? 16
            : level >= IsaLevel.Avx2 && System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported ? 8
            : level >= IsaLevel.Portable ? 4 : 1;
        if (width == 1)
        {
            for (int k = 0; k < n; k++)
            {
                float x = limit < g[k] ? limit : g[k];
                float y = u[k] < -limit ? -limit : limit < u[k] ? limit : u[k];
                g[k] = x / (1.0f + MathF.Exp(alpha * -x)) * (y + 1.0f);
            }
            return;
        }
        float* tg = stackalloc float[16];
        float* tu = stackalloc float[16];
        for (int i = 0; i < n; i += width)
        {
            float* pg = g + i, pu = u + i;
            bool tail = i + width > n;
            if (tail)
            {
                for (int j = 0; j < width; j++) { tg[j] = i + j < n ? g[i + j] : 0; tu[j] = i + j < n ? u[i + j] : 0; }
                pg = tg;
                pu = tu;
            }
            if (width == 16) Vector512.Store(SwiGluOai(Vector512.Load(pg), Vector512.Load(pu), Vector512.Create(alpha), Vector512.Create(limit)), pg);
            else if (width == 8) Vector256.Store(SwiGluOai(Vector256.Load(pg), Vector256.Load(pu), Vector256.Create(alpha), Vector256.Create(limit)), pg);
            else Vector128.Store(SwiGluOai(Vector128.Load(pg), Vector128.Load(pu), Vector128.Create(alpha), Vector128.Create(limit)), pg);
            if (tail)
                for (int j = 0; i + j < n; j++) g[i + j] = tg[j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> SwiGluOai(Vector512<float> g, Vector512<float> u, Vector512<float> alpha, Vector512<float> limit)
    {
        var x = Vector512.ConditionalSelect(Vector512.GreaterThan(g, limit), limit, g);
        var y = Vector512.ConditionalSelect(Vector512.LessThan(u, -limit), -limit, Vector512.ConditionalSelect(Vector512.GreaterThan(u, limit), limit, u));
        return x / (Vector512<float>.One + VecMath.Exp(alpha * -x)) * (y + Vector512<float>.One);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> SwiGluOai(Vector256<float> g, Vector256<float> u, Vector256<float> alpha, Vector256<float> limit)
    {
        var x = Vector256.ConditionalSelect(Vector256.GreaterThan(g, limit), limit, g);
        var y = Vector256.ConditionalSelect(Vector256.LessThan(u, -limit), -limit, Vector256.ConditionalSelect(Vector256.GreaterThan(u, limit), limit, u));
        return x / (Vector256<float>.One + VecMath.Exp(alpha * -x)) * (y + Vector256<float>.One);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> SwiGluOai(Vector128<float> g, Vector128<float> u, Vector128<float> alpha, Vector128<float> limit)
    {
        var x = Vector128.ConditionalSelect(Vector128.GreaterThan(g, limit), limit, g);
        var y = Vector128.ConditionalSelect(Vector128.LessThan(u, -limit), -limit, Vector128.ConditionalSelect(Vector128.GreaterThan(u, limit), limit, u));
        return x / (Vector128<float>.One + VecMath.Exp(alpha * -x)) * (y + Vector128<float>.One);
    }

    /// <summary>y *= a.</summary>
    public static void Scale(float* y, float a, int n)
    {
        int i = 0;
        if (Isa.Level >= IsaLevel.Portable)
        {
            var va = Vector256.Create(a);
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(y + i) * va, y + i);
        }
        for (; i < n; i++) y[i] *= a;
    }

    /// <summary>y += a·x.</summary>
    public static void AddScaled(float* y, float* x, float a, int n)
    {
        int i = 0;
        if (Isa.Level >= IsaLevel.Portable)
        {
            var va = Vector256.Create(a);
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.FusedMultiplyAdd(Vector256.Load(x + i), va, Vector256.Load(y + i)), y + i);
        }
        for (; i < n; i++) y[i] = MathF.FusedMultiplyAdd(x[i], a, y[i]);
    }
}
