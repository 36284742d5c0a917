using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.KvCache;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Attention;

/// <summary>
/// One token's attention over a Q8_0 KV cache on AVX-512 (decode), reading the int8 blocks in place: each key or
/// value vector is widened in registers (16 codes → floats × the block's scale) and used by a pair of query heads,
/// so a decode step reads 34 bytes per 32 cached values instead of F16's 64 and writes no widened copy.
/// </summary>
/// <remarks>
/// Bit-exact with <see cref="PagedAttention"/>'s AVX-512 widening path: a widened value is code × scale (exact),
/// the same number the widening writes to scratch, and per head the scores, softmax update and p·V accumulation
/// are that path's operations in its order. The block's scales are converted once per block into scratch.
/// Requires Q8_0 keys and values with ggml's 32-value blocks (head dimension a multiple of 32), an even group
/// and a block size that is a multiple of 4.
/// </remarks>
internal static unsafe class Q8Attention512
{
    private static int Pad16(int n) => (n + 15) & ~15;

    public static bool Supports(IKvCache cache, int groupSize, int headDim) =>
        Avx512F.IsSupported && Fma.IsSupported && cache.KeyFormat.Type == KvDataType.Q8_0 && cache.ValueFormat.Type == KvDataType.Q8_0
        && groupSize % 2 == 0 && headDim % 32 == 0 && cache.BlockSize % 4 == 0;

    /// <summary>Scratch floats (no more than <see cref="PagedAttention.ScratchFloats"/>).</summary>
    public static long ScratchFloats(int groupSize, int headDim, int blockSize) =>
        (long)groupSize * Pad16(blockSize) + 3L * groupSize + 2L * blockSize * (headDim / 32);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Attend(IKvCache cache, int layer, int kvHead, BlockTable table, int length,
                              float* q, float* output, int G, int D, float scale, float* scratch)
    {
        int bs = cache.BlockSize, sp = Pad16(bs), qb = D / 32;
        int rowBytes = qb * 34;
        float* scAll = scratch, m = scAll + G * sp, l = m + G, corrs = l + G, ks = corrs + G, vs = ks + bs * qb;
        for (int h = 0; h < G; h++) { m[h] = float.NegativeInfinity; l[h] = 0; }
        new Span<float>(output, G * D).Clear();
        var vscale = Vector128.Create(scale);
        int nBlocks = (length + bs - 1) / bs;
        bool finite = !cache.MayHoldNonFinite;
        for (int b = 0; b < nBlocks; b++)
        {
            int n = Math.Min(bs, length - b * bs), n4 = Math.Min(bs, (n + 3) & ~3);
            byte* kb = cache.KeyBlock(layer, table[b], kvHead), vb = cache.ValueBlock(layer, table[b], kvHead);
            if (b + 1 < nBlocks) Prefetch(cache.KeyBlock(layer, table[b + 1], kvHead), cache.ValueBlock(layer, table[b + 1], kvHead), (long)bs * rowBytes);
            // scales of the rows the loops read (keys up to n4: positions past n are masked below; values up to n)
            Scales(kb, ks, n4 * qb, finite);
            Scales(vb, vs, n * qb, finite);
            for (int h = 0; h < G; h += 2)
            {
                float* sc = scAll + h * sp;
                ScoresPair(kb, ks, q + h * D, sc, sp, n4, D, qb, vscale);
                for (int j = n; j < sp; j++) { sc[j] = float.NegativeInfinity; sc[sp + j] = float.NegativeInfinity; }
            }
            PagedAttention.Avx512Path.Softmax(scAll, sp, m, l, corrs, G);
            for (int h = 0; h < G; h += 2)
                ValuesPair(vb, vs, scAll + h * sp, sp, output + h * D, corrs[h], corrs[h + 1], n, D, qb);
        }
        for (int h = 0; h < G; h++)
        {
            float* o = output + h * D;
            var inv = Vector512.Create(1.0f / l[h]);
            for (int c = 0; c < D; c += 16) (Vector512.Load(o + c) * inv).Store(o + c);
        }
    }

    /// <summary>The fp16 scales of <paramref name="count"/> consecutive Q8_0 blocks as floats: 16 at a time (a gather
    /// of the 34-byte-strided scales and <see cref="FloatConvert.LoadFiniteHalf16"/>'s conversion) while the cache
    /// holds only finite values, else (and for the tail) the exact table conversion.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scales(byte* blocks, float* dst, int count, bool finite)
    {
        int i = 0;
        if (finite)
        {
            var offsets = Vector256.Create(0, 34, 68, 102, 136, 170, 204, 238);
            for (; i + 16 <= count; i += 16)
            {
                int* p = (int*)(blocks + (long)i * 34);
                var h = Vector512.Create(Avx2.GatherVector256(p, offsets, 1), Avx2.GatherVector256((int*)((byte*)p + 272), offsets, 1));
                var sx = Vector512.ShiftRightArithmetic(Vector512.ShiftLeft(h, 16), 16);   // the half, sign-extended
                (((sx << 13) & Vector512.Create(unchecked((int)0x8FFFE000))).AsSingle() * Vector512.Create(TwoPow112)).Store(dst + i);
            }
        }
        for (; i < count; i++) dst[i] = Fp16.ToFloat(*(ushort*)(blocks + (long)i * 34));
    }

    private const float TwoPow112 = 5.192296858534828e33f;   // 2^112: rebias a half's exponent

    private static void Prefetch(byte* k, byte* v, long bytes)
    {
        for (long i = 0; i < bytes; i += 64) { Sse.Prefetch0(k + i); Sse.Prefetch0(v + i); }
    }

    /// <summary>16 values of a Q8_0 row from dimension c (a multiple of 16): codes × the block's scale.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Load16(byte* row, int c, float scale) =>
        Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)row + (c >> 5) * 34 + 2 + (c & 16))))
        * Vector512.Create(scale);

    /// <summary>Scores of two heads against positions [0, n4) of a Q8_0 block: per head the widening path's
    /// accumulation (one accumulator per position over 16-value chunks in order, then its tree reduction).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScoresPair(byte* K, float* ks, float* q0, float* sc0, int sp, int n4, int D, int qb, Vector128<float> vscale)
    {
        float* q1 = q0 + D;
        int rowBytes = qb * 34;
        for (int j = 0; j < n4; j += 4)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
            byte* k0 = K + (long)j * rowBytes, k1 = k0 + rowBytes, k2 = k1 + rowBytes, k3 = k2 + rowBytes;
            float* s = ks + j * qb;
            for (int c = 0; c < D; c += 16)
            {
                int blk = c >> 5;
                var qa = Vector512.Load(q0 + c);
                var qv = Vector512.Load(q1 + c);
                var x0 = Load16(k0, c, s[blk]);
                a0 = Avx512F.FusedMultiplyAdd(qa, x0, a0);
                b0 = Avx512F.FusedMultiplyAdd(qv, x0, b0);
                var x1 = Load16(k1, c, s[qb + blk]);
                a1 = Avx512F.FusedMultiplyAdd(qa, x1, a1);
                b1 = Avx512F.FusedMultiplyAdd(qv, x1, b1);
                var x2 = Load16(k2, c, s[2 * qb + blk]);
                a2 = Avx512F.FusedMultiplyAdd(qa, x2, a2);
                b2 = Avx512F.FusedMultiplyAdd(qv, x2, b2);
                var x3 = Load16(k3, c, s[3 * qb + blk]);
                a3 = Avx512F.FusedMultiplyAdd(qa, x3, a3);
                b3 = Avx512F.FusedMultiplyAdd(qv, x3, b3);
            }
            (PagedAttention.Avx512Path.Reduce4(a0, a1, a2, a3) * vscale).Store(sc0 + j);
            (PagedAttention.Avx512Path.Reduce4(b0, b1, b2, b3) * vscale).Store(sc0 + sp + j);
        }
    }

    /// <summary>o = o·c + Σ_{j &lt; n} p_j·v_j for two heads over a Q8_0 block: per head four accumulators taking
    /// positions in turn, the widening path's order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ValuesPair(byte* V, float* vs, float* p0, int sp, float* o0, float corr0, float corr1, int n, int D, int qb)
    {
        float* p1 = p0 + sp, o1 = o0 + D;
        int rowBytes = qb * 34;
        var c0 = Vector512.Create(corr0);
        var c1 = Vector512.Create(corr1);
        for (int c = 0; c < D; c += 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
            int blk = c >> 5;
            int jj = 0;
            for (; jj + 4 <= n; jj += 4)
            {
                byte* r = V + (long)jj * rowBytes;
                var v0 = Load16(r, c, vs[jj * qb + blk]);
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(p0[jj]), v0, a0);
                b0 = Avx512F.FusedMultiplyAdd(Vector512.Create(p1[jj]), v0, b0);
                var v1 = Load16(r + rowBytes, c, vs[(jj + 1) * qb + blk]);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(p0[jj + 1]), v1, a1);
                b1 = Avx512F.FusedMultiplyAdd(Vector512.Create(p1[jj + 1]), v1, b1);
                var v2 = Load16(r + 2 * rowBytes, c, vs[(jj + 2) * qb + blk]);
                a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(p0[jj + 2]), v2, a2);
                b2 = Avx512F.FusedMultiplyAdd(Vector512.Create(p1[jj + 2]), v2, b2);
                var v3 = Load16(r + 3 * rowBytes, c, vs[(jj + 3) * qb + blk]);
                a3 = Avx512F.FusedMultiplyAdd(Vector512.Create(p0[jj + 3]), v3, a3);
                b3 = Avx512F.FusedMultiplyAdd(Vector512.Create(p1[jj + 3]), v3, b3);
            }
            for (int i = 0; jj + i < n; i++)   // at most 3 positions: accumulators 0, 1, 2 in turn
            {
                var v = Load16(V + (long)(jj + i) * rowBytes, c, vs[(jj + i) * qb + blk]);
                if (i == 0) { a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(p0[jj]), v, a0); b0 = Avx512F.FusedMultiplyAdd(Vector512.Create(p1[jj]), v, b0); }
                else if (i == 1) { a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(p0[jj + 1]), v, a1); b1 = Avx512F.FusedMultiplyAdd(Vector512.Create(p1[jj + 1]), v, b1); }
                else { a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(p0[jj + 2]), v, a2); b2 = Avx512F.FusedMultiplyAdd(Vector512.Create(p1[jj + 2]), v, b2); }
            }
            Avx512F.FusedMultiplyAdd(Vector512.Load(o0 + c), c0, (a0 + a1) + (a2 + a3)).Store(o0 + c);
            Avx512F.FusedMultiplyAdd(Vector512.Load(o1 + c), c1, (b0 + b1) + (b2 + b3)).Store(o1 + c);
        }
    }
}
