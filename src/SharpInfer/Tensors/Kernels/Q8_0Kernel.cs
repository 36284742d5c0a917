using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// Q8_0 weights × Q8_0 activations, ggml's arithmetic: per 32-block an exact int32 dot product of the int8
/// values, scaled by d_w·d_x and accumulated in float. Vector paths keep one 8-lane float accumulator per
/// (row, token) pair: lane i holds Σ over blocks of d_w·d_x·(int dot of elements 4i..4i+3) and the lanes are
/// summed once at the end, as ggml's AVX2 kernel does. Tiles of 4 rows × 4 tokens reuse each loaded block.
/// </summary>
public sealed unsafe class Q8_0Kernel : MatMulKernel
{
    private const int BlockBytes = 34;
    public override ActivationFormat Format => ActivationFormat.Q8_0;

    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch)
    {
        int nb = w.Cols / 32;
        int T = x.Tokens;
        if (level < IsaLevel.Avx2 || !Avx2.IsSupported)
        {
            bool portable = level >= IsaLevel.Portable;
            for (int row = r0; row < r1; row++)
                for (int t = 0; t < T; t++)
                    y[(long)t * yStride + row] = portable ? DotPortable(w.Row(row), x, t, nb) : DotScalar(w.Row(row), x, t, nb);
            return;
        }
        int r = r0;
        for (; r + 4 <= r1; r += 4)
        {
            int t = 0;
            for (; t + 4 <= T; t += 4) Tile4x4(w, r, x, t, nb, y, yStride);
            for (; t < T; t++) Tile4x1(w, r, x, t, nb, y, yStride);
        }
        for (; r < r1; r++)
            for (int t = 0; t < T; t++) y[(long)t * yStride + r] = Dot1x1(w.Row(r), x, t, nb);
    }

    /// <summary>The scalar reference: per block, integer dot then (d_w·d_x)·sum accumulated in order.</summary>
    public static float DotScalar(byte* row, in ActivationView x, int t, int nb)
    {
        sbyte* xq = x.Q + (long)t * x.Cols;
        float* xd = x.D + (long)t * nb;
        float sum = 0;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + b * BlockBytes;
            sbyte* wq = (sbyte*)(blk + 2);
            int isum = 0;
            for (int j = 0; j < 32; j++) isum += wq[j] * xq[b * 32 + j];
            sum += isum * (Fp16.ToFloat(*(ushort*)blk) * xd[b]);
        }
        return sum;
    }

    /// <summary>Portable Vector256 path (no x86 intrinsics): widening multiplies, same lane grouping idea.</summary>
    public static float DotPortable(byte* row, in ActivationView x, int t, int nb)
    {
        sbyte* xq = x.Q + (long)t * x.Cols;
        float* xd = x.D + (long)t * nb;
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + b * BlockBytes;
            var wv = Vector256.Load((sbyte*)(blk + 2));
            var xv = Vector256.Load(xq + b * 32);
            var (wl, wh) = Vector256.Widen(wv);
            var (xl, xh) = Vector256.Widen(xv);
            var p = wl * xl + wh * xh;                       // 16 int16 products pairs (|p| <= 2·128·127)
            var (pl, ph) = Vector256.Widen(p);
            var isum = pl + ph;                              // 8 int32
            float s = Fp16.ToFloat(*(ushort*)blk) * xd[b];
            acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(isum), Vector256.Create(s), acc);
        }
        return HorizontalSum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> IntDot(Vector256<sbyte> w, Vector256<sbyte> xv)
    {
        var aw = Avx2.Abs(w);                  // |w| as unsigned bytes (|-128| = 128 fits)
        var sx = Avx2.Sign(xv, w);             // x with w's sign; |x| <= 127
        if (AvxVnni.IsSupported) return AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, aw, sx);
        var p16 = Avx2.MultiplyAddAdjacent(aw, sx);              // no saturation: 2·128·127 < 32768
        return Avx2.MultiplyAddAdjacent(p16, Vector256.Create((short)1));
    }

    private static float Dot1x1(byte* row, in ActivationView x, int t, int nb)
    {
        sbyte* xq = x.Q + (long)t * x.Cols;
        float* xd = x.D + (long)t * nb;
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + b * BlockBytes;
            var d = Fp16.ToFloat(*(ushort*)blk) * xd[b];
            var q = Avx.ConvertToVector256Single(IntDot(Vector256.Load((sbyte*)(blk + 2)), Vector256.Load(xq + b * 32)));
            acc = Fma.MultiplyAdd(Vector256.Create(d), q, acc);
        }
        return HorizontalSum(acc);
    }

    private static void Tile4x1(WeightMatrix w, int r, in ActivationView x, int t, int nb, float* y, int yStride)
    {
        byte* w0 = w.Row(r), w1 = w.Row(r + 1), w2 = w.Row(r + 2), w3 = w.Row(r + 3);
        sbyte* xq = x.Q + (long)t * x.Cols;
        float* xd = x.D + (long)t * nb;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int b = 0; b < nb; b++)
        {
            long o = (long)b * BlockBytes;
            var xv = Vector256.Load(xq + b * 32);
            float dx = xd[b];
            a0 = Fma.MultiplyAdd(Vector256.Create(Fp16.ToFloat(*(ushort*)(w0 + o)) * dx), Avx.ConvertToVector256Single(IntDot(Vector256.Load((sbyte*)(w0 + o + 2)), xv)), a0);
            a1 = Fma.MultiplyAdd(Vector256.Create(Fp16.ToFloat(*(ushort*)(w1 + o)) * dx), Avx.ConvertToVector256Single(IntDot(Vector256.Load((sbyte*)(w1 + o + 2)), xv)), a1);
            a2 = Fma.MultiplyAdd(Vector256.Create(Fp16.ToFloat(*(ushort*)(w2 + o)) * dx), Avx.ConvertToVector256Single(IntDot(Vector256.Load((sbyte*)(w2 + o + 2)), xv)), a2);
            a3 = Fma.MultiplyAdd(Vector256.Create(Fp16.ToFloat(*(ushort*)(w3 + o)) * dx), Avx.ConvertToVector256Single(IntDot(Vector256.Load((sbyte*)(w3 + o + 2)), xv)), a3);
        }
        float* yt = y + (long)t * yStride + r;
        yt[0] = HorizontalSum(a0); yt[1] = HorizontalSum(a1); yt[2] = HorizontalSum(a2); yt[3] = HorizontalSum(a3);
    }

    private static void Tile4x4(WeightMatrix w, int r, in ActivationView x, int t, int nb, float* y, int yStride)
    {
        byte* w0 = w.Row(r), w1 = w.Row(r + 1), w2 = w.Row(r + 2), w3 = w.Row(r + 3);
        int cols = x.Cols;
        sbyte* x0 = x.Q + (long)t * cols, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        float* d0 = x.D + (long)t * nb, d1 = d0 + nb, d2 = d1 + nb, d3 = d2 + nb;
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector256<float> a30 = default, a31 = default, a32 = default, a33 = default;
        for (int b = 0; b < nb; b++)
        {
            long o = (long)b * BlockBytes;
            int xo = b * 32;
            var xv0 = Vector256.Load(x0 + xo); var xv1 = Vector256.Load(x1 + xo);
            var xv2 = Vector256.Load(x2 + xo); var xv3 = Vector256.Load(x3 + xo);
            float e0 = d0[b], e1 = d1[b], e2 = d2[b], e3 = d3[b];

            var wv = Vector256.Load((sbyte*)(w0 + o + 2)); float dw = Fp16.ToFloat(*(ushort*)(w0 + o));
            a00 = Fma.MultiplyAdd(Vector256.Create(dw * e0), Avx.ConvertToVector256Single(IntDot(wv, xv0)), a00);
            a01 = Fma.MultiplyAdd(Vector256.Create(dw * e1), Avx.ConvertToVector256Single(IntDot(wv, xv1)), a01);
            a02 = Fma.MultiplyAdd(Vector256.Create(dw * e2), Avx.ConvertToVector256Single(IntDot(wv, xv2)), a02);
            a03 = Fma.MultiplyAdd(Vector256.Create(dw * e3), Avx.ConvertToVector256Single(IntDot(wv, xv3)), a03);

            wv = Vector256.Load((sbyte*)(w1 + o + 2)); dw = Fp16.ToFloat(*(ushort*)(w1 + o));
            a10 = Fma.MultiplyAdd(Vector256.Create(dw * e0), Avx.ConvertToVector256Single(IntDot(wv, xv0)), a10);
            a11 = Fma.MultiplyAdd(Vector256.Create(dw * e1), Avx.ConvertToVector256Single(IntDot(wv, xv1)), a11);
            a12 = Fma.MultiplyAdd(Vector256.Create(dw * e2), Avx.ConvertToVector256Single(IntDot(wv, xv2)), a12);
            a13 = Fma.MultiplyAdd(Vector256.Create(dw * e3), Avx.ConvertToVector256Single(IntDot(wv, xv3)), a13);

            wv = Vector256.Load((sbyte*)(w2 + o + 2)); dw = Fp16.ToFloat(*(ushort*)(w2 + o));
            a20 = Fma.MultiplyAdd(Vector256.Create(dw * e0), Avx.ConvertToVector256Single(IntDot(wv, xv0)), a20);
            a21 = Fma.MultiplyAdd(Vector256.Create(dw * e1), Avx.ConvertToVector256Single(IntDot(wv, xv1)), a21);
            a22 = Fma.MultiplyAdd(Vector256.Create(dw * e2), Avx.ConvertToVector256Single(IntDot(wv, xv2)), a22);
            a23 = Fma.MultiplyAdd(Vector256.Create(dw * e3), Avx.ConvertToVector256Single(IntDot(wv, xv3)), a23);

            wv = Vector256.Load((sbyte*)(w3 + o + 2)); dw = Fp16.ToFloat(*(ushort*)(w3 + o));
            a30 = Fma.MultiplyAdd(Vector256.Create(dw * e0), Avx.ConvertToVector256Single(IntDot(wv, xv0)), a30);
            a31 = Fma.MultiplyAdd(Vector256.Create(dw * e1), Avx.ConvertToVector256Single(IntDot(wv, xv1)), a31);
            a32 = Fma.MultiplyAdd(Vector256.Create(dw * e2), Avx.ConvertToVector256Single(IntDot(wv, xv2)), a32);
            a33 = Fma.MultiplyAdd(Vector256.Create(dw * e3), Avx.ConvertToVector256Single(IntDot(wv, xv3)), a33);
        }
        float* y0 = y + (long)t * yStride + r, y1 = y0 + yStride, y2 = y1 + yStride, y3 = y2 + yStride;
        y0[0] = HorizontalSum(a00); y0[1] = HorizontalSum(a10); y0[2] = HorizontalSum(a20); y0[3] = HorizontalSum(a30);
        y1[0] = HorizontalSum(a01); y1[1] = HorizontalSum(a11); y1[2] = HorizontalSum(a21); y1[3] = HorizontalSum(a31);
        y2[0] = HorizontalSum(a02); y2[1] = HorizontalSum(a12); y2[2] = HorizontalSum(a22); y2[3] = HorizontalSum(a32);
        y3[0] = HorizontalSum(a03); y3[1] = HorizontalSum(a13); y3[2] = HorizontalSum(a23); y3[3] = HorizontalSum(a33);
    }
}
