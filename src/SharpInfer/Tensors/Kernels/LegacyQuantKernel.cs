using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// A weight format with 32-element blocks (Q4_0, Q4_1, Q5_0, IQ4_NL) whose codes can be turned into unsigned bytes
/// u_j (0..255) such that ggml's exact integer block sum is Σ code_j·x_j = Σ u_j·x_j − <see cref="Offset"/>·Σ x_j.
/// u is the unsigned operand of vpdpbusd / vpmaddubsw against the signed int8 activations; Σx comes from
/// <see cref="ActivationView.Sums"/>.
/// </summary>
internal unsafe interface ILegacyBlockFormat
{
    static abstract int BlockBytes { get; }
    /// <summary>Byte offset of the 16 nibble bytes in a block.</summary>
    static abstract int QsOffset { get; }
    /// <summary>u_j − code_j (0 when the codes are used unsigned, as Q4_1's).</summary>
    static abstract int Offset { get; }
    /// <summary>Q4_1-style block minimum m (f16 at byte 2) adding m·s per block, s = the Q8_1 scaled sum.</summary>
    static abstract bool HasMin { get; }
    /// <summary>Some u exceed 128 (vpmaddubsw pair sums could saturate).</summary>
    static abstract bool WideCodes { get; }

    /// <summary>The signed code ggml multiplies element j of a block by (the scalar reference).</summary>
    static abstract int Code(byte* blk, int j);

    /// <summary>u of all 32 elements in element order, Vector128/256 only (portable path).</summary>
    static abstract Vector256<byte> UnpackPortable(byte* blk);

    /// <summary>u of all 32 elements in element order (AVX2).</summary>
    static abstract Vector256<byte> Unpack(byte* blk);

    /// <summary>Two blocks a and b (AVX2): lo = [u_a 0..15 | u_b 0..15], hi = [u_a 16..31 | u_b 16..31].</summary>
    static abstract void UnpackPair(byte* a, byte* b, out Vector256<byte> lo, out Vector256<byte> hi);
}

/// <summary>
/// Int8 matmul for the 32-element "legacy" formats (see <see cref="ILegacyBlockFormat"/>), ggml's arithmetic: per
/// block an exact integer sum isum = Σ code·x, then in float, for each (row, token) pair, in block order:
/// <c>acc = fma(d_w·d_x, (float)isum, acc)</c> and, for formats with a minimum, <c>acc = fma(m_w, s_x, acc)</c>.
/// That float sequence is the same on every path (scalar, portable, AVX2, AVX-512), for every tile shape and every
/// token count, so outputs are batch-invariant and the paths agree bit for bit; only the way the exact integer
/// sums are formed differs:
/// <list type="bullet">
/// <item>1–3 tokens (decode, memory-bound): 8 rows at a time straight from the weights; two rows' half blocks share
/// one 256-bit vpdpbusd, three horizontal adds reduce 8 rows' partial sums to one vector with a row per lane, and
/// the 8 rows' scales come from one gather, so the float step is one vector FMA per 8 row-blocks.</item>
/// <item>4+ tokens (prefill): each group of 8 rows is repacked once into per-thread scratch, 4-byte groups of
/// the 8 rows interleaved (lane r = row r), with the scales as floats; every token then needs only a broadcast of
/// 4 activation bytes per vpdpbusd, and tiles of 8 rows × 4 tokens reuse each loaded weight vector 4 times.</item>
/// </list>
/// Row counts that are not a multiple of 8 reuse the 8-row code with the missing rows aliased to the last real
/// row (their lanes are computed and dropped).
/// </summary>
internal static unsafe class LegacyQuantKernel<TF> where TF : struct, ILegacyBlockFormat
{
    /// <summary>Token count from which the AVX2 path repacks weights (below it, each token streams the weights).</summary>
    public const int GemmMinTokens = 4;
    /// <summary>Repacked bytes per block of 8 rows: 8 × 32 code bytes, 8 float scales, (Q4_1) 8 float minimums.</summary>
    private static int PackStride => TF.HasMin ? 320 : 288;

    public static long ScratchFloats(int cols) => (long)(cols / 32) * Math.Max(PackStride / 4, 8 * (GemmMinTokens - 1)) + 16;

    public static void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch)
    {
        int nb = w.Cols / 32;
        int T = x.Tokens;
        if (level == IsaLevel.Scalar)
        {
            for (int r = r0; r < r1; r++)
                for (int t = 0; t < T; t++) y[(long)t * yStride + r] = DotScalar(w.Row(r), x, t, nb);
            return;
        }
        if (level == IsaLevel.Portable || !Avx2.IsSupported || !Fma.IsSupported)
        {
            for (int r = r0; r < r1; r++)
                for (int t = 0; t < T; t++) y[(long)t * yStride + r] = DotPortable(w.Row(r), x, t, nb);
            return;
        }
        byte* pack = (byte*)(((nint)scratch + 63) & ~(nint)63);
        if (T < GemmMinTokens)
        {
            int* offsets = (int*)pack;
            if (TF.Offset != 0)
                for (int t = 0; t < T; t++) GemvOffsets(x, t, nb, offsets + (long)t * nb * 8);
            for (int r = r0; r < r1; r += 8)
                for (int t = 0; t < T; t++) Gemv8(w, r, Math.Min(8, r1 - r), x, t, nb, y + (long)t * yStride + r, offsets + (long)t * nb * 8);
            return;
        }
        for (int r = r0; r < r1; r += 8)
        {
            int n = Math.Min(8, r1 - r);
            Repack8(w, r, n, nb, pack);
            int t = 0;
            for (; t + 4 <= T; t += 4) Gemm8x4(pack, x, t, nb, y + (long)t * yStride + r, yStride, n);
            for (; t < T; t++) Gemm8x1(pack, x, t, nb, y + (long)t * yStride + r, n);
        }
    }

    // ---------------------------------------------------------------- scalar reference

    /// <summary>The scalar reference: per block the integer sum of code·x, then the float steps in block order.</summary>
    public static float DotScalar(byte* row, in ActivationView x, int t, int nb)
    {
        sbyte* xq = x.Q + (long)t * x.Cols;
        float* xd = x.D + (long)t * nb;
        float* xs = x.S + (long)t * nb;
        float acc = 0;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + (long)b * TF.BlockBytes;
            int isum = 0;
            for (int j = 0; j < 32; j++) isum += TF.Code(blk, j) * xq[b * 32 + j];
            acc = MathF.FusedMultiplyAdd(Fp16.ToFloat(*(ushort*)blk) * xd[b], isum, acc);
            if (TF.HasMin) acc = MathF.FusedMultiplyAdd(Fp16.ToFloat(*(ushort*)(blk + 2)), xs[b], acc);
        }
        return acc;
    }

    // ---------------------------------------------------------------- portable

    /// <summary>Portable Vector256 path (no x86 intrinsics): unsigned codes widened to int16 products.</summary>
    public static float DotPortable(byte* row, in ActivationView x, int t, int nb)
    {
        sbyte* xq = x.Q + (long)t * x.Cols;
        float* xd = x.D + (long)t * nb;
        float* xs = x.S + (long)t * nb;
        int* xsum = x.Sums + (long)t * nb;
        float acc = 0;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = row + (long)b * TF.BlockBytes;
            var (ul, uh) = Vector256.Widen(TF.UnpackPortable(blk));
            var (xl, xh) = Vector256.Widen(Vector256.Load(xq + b * 32));
            var pl = ul.AsInt16() * xl;                      // |u·x| <= 255·128 < 32768
            var ph = uh.AsInt16() * xh;
            var (a, c) = Vector256.Widen(pl);
            var (e, f) = Vector256.Widen(ph);
            int isum = Vector256.Sum((a + c) + (e + f));
            if (TF.Offset != 0) isum -= TF.Offset * xsum[b];
            acc = MathF.FusedMultiplyAdd(Fp16.ToFloat(*(ushort*)blk) * xd[b], isum, acc);
            if (TF.HasMin) acc = MathF.FusedMultiplyAdd(Fp16.ToFloat(*(ushort*)(blk + 2)), xs[b], acc);
        }
        return acc;
    }

    // ---------------------------------------------------------------- AVX2 (+ AVX-VNNI)

    /// <summary>acc + Σ over each 4 bytes of u·x (u unsigned, x signed int8 in [-127, 127]), exact in int32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> xv)
    {
        if (AvxVnni.IsSupported) return AvxVnni.MultiplyWideningAndAdd(acc, u, xv);
        var ones = Vector256.Create((short)1);
        // vpmaddubsw saturates pair sums to int16: exact for codes up to 128 (2·128·127 < 32768)
        if (!TF.WideCodes) return Avx2.Add(acc, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, xv), ones));
        // wider codes (IQ4_NL's u up to 241): split u = (u & 127) + (u & 128), each part exact
        var lo = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u & Vector256.Create((byte)127), xv), ones);
        var hi = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u & Vector256.Create((byte)128), xv), ones);
        return Avx2.Add(acc, Avx2.Add(lo, hi));
    }

    /// <summary>Exact f16 → f32 of the low 16 bits of each lane (upper bits are ignored), for every half value:
    /// normals and subnormals by moving the bits into place and scaling by 2^112 (exact), Inf/NaN by forcing the
    /// exponent. Bit-identical to <see cref="Fp16.ToFloat"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> HalfToFloat(Vector256<int> h)
    {
        var em = h & Vector256.Create(0x7FFF);
        var mag = Avx.Multiply(Avx2.ShiftLeftLogical(em, 13).AsSingle(), Vector256.Create(5.192296858534828e33f)); // 2^112
        var sign = Avx2.ShiftLeftLogical(h, 16) & Vector256.Create(unchecked((int)0x80000000));
        var special = Avx2.CompareGreaterThan(em, Vector256.Create(0x7BFF)) & Vector256.Create(0x7F800000);
        return (mag.AsInt32() | sign | special).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store8(Vector256<float> v, float* y, int n)
    {
        if (n == 8) { Vector256.Store(v, y); return; }
        for (int i = 0; i < n; i++) y[i] = v.GetElement(i);
    }

    /// <summary>8 rows (n real) × 1 token, straight from the weights.</summary>
    private static void Gemv8(WeightMatrix w, int r, int n, in ActivationView x, int t, int nb, float* y, int* offsets)
    {
        long rb = w.RowBytes;
        byte* p0 = w.Row(r);
        byte* p1 = p0 + Math.Min(1, n - 1) * rb, p2 = p0 + Math.Min(2, n - 1) * rb, p3 = p0 + Math.Min(3, n - 1) * rb;
        byte* p4 = p0 + Math.Min(4, n - 1) * rb, p5 = p0 + Math.Min(5, n - 1) * rb, p6 = p0 + Math.Min(6, n - 1) * rb;
        byte* p7 = p0 + Math.Min(7, n - 1) * rb;
        long next = 8 * rb; // the next 8-row group, prefetched while this one streams
        sbyte* xq = x.Q + (long)t * x.Cols;
        float* xd = x.D + (long)t * nb;
        float* xs = x.S + (long)t * nb;
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            long o = (long)b * TF.BlockBytes;
            if (b % 3 == 0)
            {
                // 54 bytes of each row per 3 blocks: every cache line of the next group gets touched
                long pf = o + next;
                Sse.Prefetch0(p0 + pf); Sse.Prefetch0(p1 + pf); Sse.Prefetch0(p2 + pf); Sse.Prefetch0(p3 + pf);
                Sse.Prefetch0(p4 + pf); Sse.Prefetch0(p5 + pf); Sse.Prefetch0(p6 + pf); Sse.Prefetch0(p7 + pf);
            }
            var xlo = Avx2.BroadcastVector128ToVector256(xq + b * 32);
            var xhi = Avx2.BroadcastVector128ToVector256(xq + b * 32 + 16);
            TF.UnpackPair(p0 + o, p4 + o, out var l0, out var h0);
            TF.UnpackPair(p1 + o, p5 + o, out var l1, out var h1);
            TF.UnpackPair(p2 + o, p6 + o, out var l2, out var h2);
            TF.UnpackPair(p3 + o, p7 + o, out var l3, out var h3);
            // the offset enters through lane 0 of each 128-bit half, so after the reduction every row has it once
            var init = TF.Offset != 0 ? Vector256.Load(offsets + b * 8) : Vector256<int>.Zero;
            var a0 = Dot(Dot(init, l0, xlo), h0, xhi);
            var a1 = Dot(Dot(init, l1, xlo), h1, xhi);
            var a2 = Dot(Dot(init, l2, xlo), h2, xhi);
            var a3 = Dot(Dot(init, l3, xlo), h3, xhi);
            // a_i = [row i partial sums ×4 | row i+4 partial sums ×4] → [rows 0..3 | rows 4..7]
            var isum = Avx2.HorizontalAdd(Avx2.HorizontalAdd(a0, a1), Avx2.HorizontalAdd(a2, a3));
            var heads = Vector256.Create(*(int*)(p0 + o), *(int*)(p1 + o), *(int*)(p2 + o), *(int*)(p3 + o),
                *(int*)(p4 + o), *(int*)(p5 + o), *(int*)(p6 + o), *(int*)(p7 + o));
            acc = Fma.MultiplyAdd(Avx.Multiply(HalfToFloat(heads), Vector256.Create(xd[b])), Avx.ConvertToVector256Single(isum), acc);
            if (TF.HasMin) acc = Fma.MultiplyAdd(HalfToFloat(Avx2.ShiftRightLogical(heads, 16)), Vector256.Create(xs[b]), acc);
        }
        Store8(acc, y, n);
    }

    /// <summary>Per block of token t, the vector [−Offset·Σx, 0, 0, 0 | −Offset·Σx, 0, 0, 0] that seeds <see cref="Gemv8"/>'s sums.</summary>
    private static void GemvOffsets(in ActivationView x, int t, int nb, int* dst)
    {
        int* xsum = x.Sums + (long)t * nb;
        for (int b = 0; b < nb; b++)
        {
            int v = -TF.Offset * xsum[b];
            Vector256.Store(Vector256.Create(v, 0, 0, 0, v, 0, 0, 0), dst + b * 8);
        }
    }

    /// <summary>Repacks 8 rows (n real) for the prefill tiles: per block, W_k (k = 0..7) = 32 bytes whose dword r is
    /// row r's u of elements 4k..4k+3; then the 8 scales as floats; then (Q4_1) the 8 minimums.</summary>
    private static void Repack8(WeightMatrix w, int r, int n, int nb, byte* pack)
    {
        long rb = w.RowBytes;
        byte* p0 = w.Row(r);
        byte* p1 = p0 + Math.Min(1, n - 1) * rb, p2 = p0 + Math.Min(2, n - 1) * rb, p3 = p0 + Math.Min(3, n - 1) * rb;
        byte* p4 = p0 + Math.Min(4, n - 1) * rb, p5 = p0 + Math.Min(5, n - 1) * rb, p6 = p0 + Math.Min(6, n - 1) * rb;
        byte* p7 = p0 + Math.Min(7, n - 1) * rb;
        int stride = PackStride;
        for (int b = 0; b < nb; b++)
        {
            long o = (long)b * TF.BlockBytes;
            byte* dst = pack + (long)b * stride;
            var u0 = TF.Unpack(p0 + o).AsInt32(); var u1 = TF.Unpack(p1 + o).AsInt32();
            var u2 = TF.Unpack(p2 + o).AsInt32(); var u3 = TF.Unpack(p3 + o).AsInt32();
            var u4 = TF.Unpack(p4 + o).AsInt32(); var u5 = TF.Unpack(p5 + o).AsInt32();
            var u6 = TF.Unpack(p6 + o).AsInt32(); var u7 = TF.Unpack(p7 + o).AsInt32();
            // 8×8 dword transpose
            var t0 = Avx2.UnpackLow(u0, u1); var t1 = Avx2.UnpackHigh(u0, u1);
            var t2 = Avx2.UnpackLow(u2, u3); var t3 = Avx2.UnpackHigh(u2, u3);
            var t4 = Avx2.UnpackLow(u4, u5); var t5 = Avx2.UnpackHigh(u4, u5);
            var t6 = Avx2.UnpackLow(u6, u7); var t7 = Avx2.UnpackHigh(u6, u7);
            var s0 = Avx2.UnpackLow(t0.AsInt64(), t2.AsInt64()).AsInt32(); var s1 = Avx2.UnpackHigh(t0.AsInt64(), t2.AsInt64()).AsInt32();
            var s2 = Avx2.UnpackLow(t1.AsInt64(), t3.AsInt64()).AsInt32(); var s3 = Avx2.UnpackHigh(t1.AsInt64(), t3.AsInt64()).AsInt32();
            var s4 = Avx2.UnpackLow(t4.AsInt64(), t6.AsInt64()).AsInt32(); var s5 = Avx2.UnpackHigh(t4.AsInt64(), t6.AsInt64()).AsInt32();
            var s6 = Avx2.UnpackLow(t5.AsInt64(), t7.AsInt64()).AsInt32(); var s7 = Avx2.UnpackHigh(t5.AsInt64(), t7.AsInt64()).AsInt32();
            Vector256.Store(Avx2.Permute2x128(s0, s4, 0x20), (int*)dst);
            Vector256.Store(Avx2.Permute2x128(s1, s5, 0x20), (int*)(dst + 32));
            Vector256.Store(Avx2.Permute2x128(s2, s6, 0x20), (int*)(dst + 64));
            Vector256.Store(Avx2.Permute2x128(s3, s7, 0x20), (int*)(dst + 96));
            Vector256.Store(Avx2.Permute2x128(s0, s4, 0x31), (int*)(dst + 128));
            Vector256.Store(Avx2.Permute2x128(s1, s5, 0x31), (int*)(dst + 160));
            Vector256.Store(Avx2.Permute2x128(s2, s6, 0x31), (int*)(dst + 192));
            Vector256.Store(Avx2.Permute2x128(s3, s7, 0x31), (int*)(dst + 224));
            var heads = Vector256.Create(*(int*)(p0 + o), *(int*)(p1 + o), *(int*)(p2 + o), *(int*)(p3 + o),
                *(int*)(p4 + o), *(int*)(p5 + o), *(int*)(p6 + o), *(int*)(p7 + o));
            Vector256.Store(HalfToFloat(heads), (float*)(dst + 256));
            if (TF.HasMin) Vector256.Store(HalfToFloat(Avx2.ShiftRightLogical(heads, 16)), (float*)(dst + 288));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Bcast4(sbyte* p) => Vector256.Create(*(int*)p).AsSByte();

    /// <summary>8 repacked rows × 4 tokens.</summary>
    private static void Gemm8x4(byte* pack, in ActivationView x, int t, int nb, float* y, int yStride, int n)
    {
        int cols = x.Cols;
        sbyte* x0 = x.Q + (long)t * cols, x1 = x0 + cols, x2 = x1 + cols, x3 = x2 + cols;
        float* d0 = x.D + (long)t * nb;
        float* s0 = x.S + (long)t * nb;
        int* c0 = x.Sums + (long)t * nb;
        int stride = PackStride;
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default;
        for (int b = 0; b < nb; b++)
        {
            byte* pb = pack + (long)b * stride;
            int xo = b * 32;
            Vector256<int> i0, i1, i2, i3;
            if (TF.Offset != 0)
            {
                i0 = Vector256.Create(-TF.Offset * c0[b]); i1 = Vector256.Create(-TF.Offset * c0[b + nb]);
                i2 = Vector256.Create(-TF.Offset * c0[b + 2 * nb]); i3 = Vector256.Create(-TF.Offset * c0[b + 3 * nb]);
            }
            else i0 = i1 = i2 = i3 = Vector256<int>.Zero;
            for (int k = 0; k < 32; k += 4)
            {
                var wk = Vector256.Load(pb + k * 8);
                i0 = Dot(i0, wk, Bcast4(x0 + xo + k));
                i1 = Dot(i1, wk, Bcast4(x1 + xo + k));
                i2 = Dot(i2, wk, Bcast4(x2 + xo + k));
                i3 = Dot(i3, wk, Bcast4(x3 + xo + k));
            }
            var dw = Vector256.Load((float*)(pb + 256));
            f0 = Fma.MultiplyAdd(Avx.Multiply(dw, Vector256.Create(d0[b])), Avx.ConvertToVector256Single(i0), f0);
            f1 = Fma.MultiplyAdd(Avx.Multiply(dw, Vector256.Create(d0[b + nb])), Avx.ConvertToVector256Single(i1), f1);
            f2 = Fma.MultiplyAdd(Avx.Multiply(dw, Vector256.Create(d0[b + 2 * nb])), Avx.ConvertToVector256Single(i2), f2);
            f3 = Fma.MultiplyAdd(Avx.Multiply(dw, Vector256.Create(d0[b + 3 * nb])), Avx.ConvertToVector256Single(i3), f3);
            if (TF.HasMin)
            {
                var m = Vector256.Load((float*)(pb + 288));
                f0 = Fma.MultiplyAdd(m, Vector256.Create(s0[b]), f0);
                f1 = Fma.MultiplyAdd(m, Vector256.Create(s0[b + nb]), f1);
                f2 = Fma.MultiplyAdd(m, Vector256.Create(s0[b + 2 * nb]), f2);
                f3 = Fma.MultiplyAdd(m, Vector256.Create(s0[b + 3 * nb]), f3);
            }
        }
        Store8(f0, y, n); Store8(f1, y + yStride, n); Store8(f2, y + 2L * yStride, n); Store8(f3, y + 3L * yStride, n);
    }

    /// <summary>8 repacked rows × 1 token (same per-lane arithmetic as <see cref="Gemm8x4"/>).</summary>
    private static void Gemm8x1(byte* pack, in ActivationView x, int t, int nb, float* y, int n)
    {
        sbyte* x0 = x.Q + (long)t * x.Cols;
        float* d0 = x.D + (long)t * nb;
        float* s0 = x.S + (long)t * nb;
        int* c0 = x.Sums + (long)t * nb;
        int stride = PackStride;
        Vector256<float> f0 = default;
        for (int b = 0; b < nb; b++)
        {
            byte* pb = pack + (long)b * stride;
            int xo = b * 32;
            var i0 = TF.Offset != 0 ? Vector256.Create(-TF.Offset * c0[b]) : Vector256<int>.Zero;
            for (int k = 0; k < 32; k += 4) i0 = Dot(i0, Vector256.Load(pb + k * 8), Bcast4(x0 + xo + k));
            var dw = Vector256.Load((float*)(pb + 256));
            f0 = Fma.MultiplyAdd(Avx.Multiply(dw, Vector256.Create(d0[b])), Avx.ConvertToVector256Single(i0), f0);
            if (TF.HasMin) f0 = Fma.MultiplyAdd(Vector256.Load((float*)(pb + 288)), Vector256.Create(s0[b]), f0);
        }
        Store8(f0, y, n);
    }

    // ---------------------------------------------------------------- unpacking helpers for the formats

    /// <summary>16 nibble bytes → 32 bytes (low nibbles = elements 0..15, high nibbles = 16..31), AVX2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<byte> Nibbles(byte* qs)
    {
        var v = Vector128.Load(qs);
        var hi = Sse2.ShiftRightLogical(v.AsUInt16(), 4).AsByte();
        return Vector256.Create(v, hi) & Vector256.Create((byte)0x0F);
    }

    /// <summary>Two blocks' nibbles: lo = [a low nibbles | b low nibbles], hi = [a high | b high], AVX2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void NibblePair(byte* qa, byte* qb, out Vector256<byte> lo, out Vector256<byte> hi)
    {
        var v = Vector256.Create(Vector128.Load(qa), Vector128.Load(qb));
        var m = Vector256.Create((byte)0x0F);
        lo = v & m;
        hi = HighNibbles(v);
    }

    /// <summary>Each byte's high nibble moved to the low 4 bits: one GFNI affine transform where available.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<byte> HighNibbles(Vector256<byte> v)
    {
        // bit matrix: result bit i = input bit i+4 (i < 4), 0 above
        if (Gfni.V256.IsSupported) return Gfni.V256.GaloisFieldAffineTransform(v, Vector256.Create(0x1020408000000000UL).AsByte(), 0);
        return Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & Vector256.Create((byte)0x0F);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<byte> NibblesPortable(byte* qs)
    {
        var v = Vector128.Load(qs);
        var m = Vector128.Create((byte)0x0F);
        return Vector256.Create(v & m, Vector128.ShiftRightLogical(v, 4));
    }
}
