using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.KvCache;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Attention;

/// <summary>
/// Prefill attention on AVX-512 for a tile of consecutive query tokens of one sequence and one KV head: all
/// tokens × GQA-group query heads ("rows") walk the sequence's blocks together, so each cache block is widened once
/// for the whole tile and each loaded key or value vector feeds four rows (4 rows × 4 keys of scores, 4 rows × 4
/// positions of p·V per step) instead of one or two. The causal mask only matters on the diagonal blocks: a block
/// every row sees whole takes the 4-row kernels, a block a row sees in part takes that row alone, masked.
/// </summary>
/// <remarks>
/// Bit-exact with <see cref="PagedAttention"/>'s per-token AVX-512 path: each row's scores, softmax update and p·V
/// accumulation are the same operations in the same order (one accumulator per key over the head dimension and
/// the same tree reduction; four p·V accumulators taking positions in turn), only interleaved with other rows. So a
/// token's output does not depend on which tile it landed in, and batch and chunking invariance carry over.
/// Rows see keys [first, end): first is 0 today (a sliding window would raise it per token); end is the token's
/// position + 1. Requires a head dimension that is a multiple of 16 and a block size that is a multiple of 4.
/// </remarks>
internal static unsafe class TileAttention512
{
    /// <summary>Query tokens per tile: with a group of 2, 32 rows share each widened block, so the block's widening,
    /// prefetch and per-block bookkeeping are paid once for twice the rows of 8-token tiles (measured 2026-12-07 on
    /// Zen 5, qwen3-0.6b q8_0, nine alternated pairs: pp40 @ d1200 median 1.15×, pp512 @ d2048 1.13× over 8; 32 was no
    /// better than 16). The tile's queries and outputs (32 rows × 512 B each for heads of 128) and the widened block
    /// (16 KiB for blocks of 16) are about the size of L1 (48 KiB on Zen 5); the block is what each row reuses.</summary>
    public const int MaxTokens = 16;

    private static int Pad16(int n) => (n + 15) & ~15;

    public static bool Supports(int headDim, int blockSize) =>
        Avx512F.IsSupported && Fma.IsSupported && headDim % 16 == 0 && blockSize % 4 == 0;

    /// <summary>Scratch floats for tiles of up to <see cref="MaxTokens"/> tokens.</summary>
    public static long ScratchFloats(int groupSize, int headDim, int blockSize) =>
        2L * blockSize * headDim + (long)MaxTokens * groupSize * (Pad16(blockSize) + 3) + 16;

    /// <summary>Attention of <paramref name="tokens"/> consecutive tokens at positions firstPosition.. of one
    /// sequence against KV head <paramref name="kvHead"/>: token t's query heads are at q + t·rowStride (groupSize
    /// heads, headDim apart), its output likewise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Attend(IKvCache cache, int layer, int kvHead, BlockTable table, int firstPosition, int tokens,
                              float* q, float* output, int rowStride, int G, int D, float scale, float* scratch)
    {
        int bs = cache.BlockSize, sp = Pad16(bs), R = tokens * G;
        float* kf = scratch, vf = kf + bs * D, scAll = vf + bs * D, m = scAll + R * sp, l = m + R, corrs = l + R;
        // each row's query and output address, once (the block loop and AttendShared's rows read them alike)
        nint* qRows = stackalloc nint[R], oRows = stackalloc nint[R];
        for (int r = 0; r < R; r++)
        {
            qRows[r] = (nint)Row(q, r, G, D, rowStride);
            oRows[r] = (nint)Row(output, r, G, D, rowStride);
            m[r] = float.NegativeInfinity;
            l[r] = 0;
            new Span<float>((float*)oRows[r], D).Clear();
        }
        var vscale = Vector128.Create(scale);
        const int first = 0;                       // first key any row sees (a window would raise it per token)
        int end = firstPosition + tokens;          // one past the last key the last token sees
        int nBlocks = (end + bs - 1) / bs;
        bool finite = !cache.MayHoldNonFinite;
        for (int b = first / bs; b < nBlocks; b++)
        {
            int start = b * bs, n = Math.Min(bs, end - start);
            PrefetchBlock(cache, layer, kvHead, table, b + 1, nBlocks, end);
            float* K = cache.KeyFormat.Widen(cache.KeyBlock(layer, table[b], kvHead), kf, n, D, IsaLevel.Avx512, finite);
            float* V = cache.ValueFormat.Widen(cache.ValueBlock(layer, table[b], kvHead), vf, n, D, IsaLevel.Avx512, finite);
            // token t sees keys [first, firstPosition + t + 1): tokens before tSeen see none of this block, tokens from
            // tWhole see all of it (rows are token-major, so both are row suffixes)
            int tSeen = Math.Clamp(start - firstPosition, 0, tokens);
            int tWhole = Math.Clamp(start + bs - 1 - firstPosition, tSeen, tokens);
            for (int r = tSeen * G; r < tWhole * G; r++)       // the diagonal: one row at a time, masked
            {
                int seen = firstPosition + r / G + 1 - start;
                float* sc = scAll + r * sp;
                ScoresRow(K, (float*)qRows[r], sc, seen, Math.Min(bs, (seen + 3) & ~3), D, vscale);
                for (int j = seen; j < sp; j++) sc[j] = float.NegativeInfinity;
                PagedAttention.Avx512Path.Softmax(sc, sp, m + r, l + r, corrs + r, 1);
                PvRow(V, sc, (float*)oRows[r], corrs[r], seen, D);
            }
            int r0 = tWhole * G;
            if (r0 < R)
                WholeBlock(K, V, qRows + r0, oRows + r0, R - r0, scAll + r0 * sp, sp, bs, D, vscale, m + r0, l + r0, corrs + r0);
        }
        for (int r = 0; r < R; r++)
        {
            float* o = (float*)oRows[r];
            var inv = Vector512.Create(1.0f / l[r]);
            for (int c = 0; c < D; c += 16) (Vector512.Load(o + c) * inv).Store(o + c);
        }
    }

    /// <summary>Cascade attention's shared part: <paramref name="R"/> rows of tokens of several sequences whose block
    /// tables start with the same <paramref name="blocks"/> physical blocks (a prefix-cache hit they all share), every
    /// one of them seen whole by every row, walk those blocks together, so each block is read and widened once for all
    /// the rows instead of once per sequence. Row r's query is at qRows[r], its output (the accumulator, zeroed by the
    /// caller) at oRows[r]; <paramref name="m"/> and <paramref name="l"/> (−∞ and 0 to start) carry each row's state on
    /// to <see cref="PagedAttention.Avx512Path.AttendFrom"/> for the row's own blocks. Per row these are the whole-block
    /// operations of <see cref="Attend"/>, so each token gets the bits of attending alone. Scratch: the widened block
    /// and the rows' scores, below m, l and corrs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AttendShared(IKvCache cache, int layer, int kvHead, BlockTable table, int blocks, nint* qRows, nint* oRows,
                                    int R, int D, float scale, float* scratch, float* m, float* l, float* corrs)
    {
        int bs = cache.BlockSize, sp = Pad16(bs);
        float* kf = scratch, vf = kf + bs * D, scAll = vf + bs * D;
        var vscale = Vector128.Create(scale);
        bool finite = !cache.MayHoldNonFinite;
        for (int b = 0; b < blocks; b++)
        {
            PrefetchBlock(cache, layer, kvHead, table, b + 1, blocks, blocks * bs);
            float* K = cache.KeyFormat.Widen(cache.KeyBlock(layer, table[b], kvHead), kf, bs, D, IsaLevel.Avx512, finite);
            float* V = cache.ValueFormat.Widen(cache.ValueBlock(layer, table[b], kvHead), vf, bs, D, IsaLevel.Avx512, finite);
            WholeBlock(K, V, qRows, oRows, R, scAll, sp, bs, D, vscale, m, l, corrs);
        }
    }

    /// <summary>One block for <paramref name="R"/> rows that all see it whole: scores (4 rows at a time, then the rest
    /// one by one), the online-softmax update, and p·V. Row r's query is at qRows[r], its output at oRows[r]; its scores
    /// at scAll + r·sp and its state at m[r], l[r], corrs[r].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WholeBlock(float* K, float* V, nint* qRows, nint* oRows, int R, float* scAll, int sp, int bs, int D,
                                   Vector128<float> vscale, float* m, float* l, float* corrs)
    {
        int r4 = R & ~3;
        for (int r = 0; r < r4; r += 4)
            ScoresQuad(K, (float*)qRows[r], (float*)qRows[r + 1], (float*)qRows[r + 2], (float*)qRows[r + 3], scAll + r * sp, sp, bs, D, vscale);
        for (int r = r4; r < R; r++) ScoresRow(K, (float*)qRows[r], scAll + r * sp, bs, bs, D, vscale);
        if (sp > bs)
            for (int r = 0; r < R; r++)
                for (int j = bs; j < sp; j++) scAll[r * sp + j] = float.NegativeInfinity;
        PagedAttention.Avx512Path.Softmax(scAll, sp, m, l, corrs, R);
        for (int r = 0; r < r4; r += 4)
            PvQuad(V, scAll + r * sp, sp, (float*)oRows[r], (float*)oRows[r + 1], (float*)oRows[r + 2], (float*)oRows[r + 3], corrs + r, bs, D);
        for (int r = r4; r < R; r++) PvRow(V, scAll + r * sp, (float*)oRows[r], corrs[r], bs, D);
    }

    /// <summary>Row r (token r / G, head r % G) of a [tokens × rowStride] query or output array.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* Row(float* p, int r, int G, int D, int rowStride) => p + (long)(r / G) * rowStride + (r % G) * D;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchBlock(IKvCache cache, int layer, int kvHead, BlockTable table, int b, int nBlocks, int end)
    {
        if (b >= nBlocks) return;
        int rows = Math.Min(cache.BlockSize, end - b * cache.BlockSize);
        long kBytes = rows * cache.KeyFormat.RowBytes(cache.HeadDim), vBytes = rows * cache.ValueFormat.RowBytes(cache.HeadDim);
        byte* k = cache.KeyBlock(layer, table[b], kvHead), v = cache.ValueBlock(layer, table[b], kvHead);
        for (long i = 0; i < kBytes; i += 64) Sse.Prefetch0(k + i);
        for (long i = 0; i < vBytes; i += 64) Sse.Prefetch0(v + i);
    }

    /// <summary>Scores of one row against positions [0, n4) of a widened block (n4 a multiple of 4), scaled: the
    /// per-token path's loop.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScoresRow(float* K, float* qh, float* sc, int n, int n4, int D, Vector128<float> vscale)
    {
        for (int j = 0; j < n4; j += 4)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            float* k0 = K + j * D, k1 = k0 + D, k2 = k1 + D, k3 = k2 + D;
            for (nint c = 0; c < D; c += 16)
            {
                var qv = Vector512.Load(qh + c);
                a0 = Avx512F.FusedMultiplyAdd(qv, Vector512.Load(k0 + c), a0);
                a1 = Avx512F.FusedMultiplyAdd(qv, Vector512.Load(k1 + c), a1);
                a2 = Avx512F.FusedMultiplyAdd(qv, Vector512.Load(k2 + c), a2);
                a3 = Avx512F.FusedMultiplyAdd(qv, Vector512.Load(k3 + c), a3);
            }
            (PagedAttention.Avx512Path.Reduce4(a0, a1, a2, a3) * vscale).Store(sc + j);
        }
    }

    /// <summary>Scores of four rows against a whole block: each key vector loaded once for the four rows; per row the
    /// operations of <see cref="ScoresRow"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScoresQuad(float* K, float* q0, float* q1, float* q2, float* q3, float* sc, int sp, int n, int D, Vector128<float> vscale)
    {
        for (int j = 0; j < n; j += 4)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
            Vector512<float> d0 = default, d1 = default, d2 = default, d3 = default;
            float* k0 = K + j * D, k1 = k0 + D, k2 = k1 + D, k3 = k2 + D;
            for (nint c = 0; c < D; c += 16)
            {
                var x0 = Vector512.Load(k0 + c);
                var x1 = Vector512.Load(k1 + c);
                var x2 = Vector512.Load(k2 + c);
                var x3 = Vector512.Load(k3 + c);
                var qa = Vector512.Load(q0 + c);
                a0 = Avx512F.FusedMultiplyAdd(qa, x0, a0);
                a1 = Avx512F.FusedMultiplyAdd(qa, x1, a1);
                a2 = Avx512F.FusedMultiplyAdd(qa, x2, a2);
                a3 = Avx512F.FusedMultiplyAdd(qa, x3, a3);
                var qb = Vector512.Load(q1 + c);
                b0 = Avx512F.FusedMultiplyAdd(qb, x0, b0);
                b1 = Avx512F.FusedMultiplyAdd(qb, x1, b1);
                b2 = Avx512F.FusedMultiplyAdd(qb, x2, b2);
                b3 = Avx512F.FusedMultiplyAdd(qb, x3, b3);
                var qc = Vector512.Load(q2 + c);
                c0 = Avx512F.FusedMultiplyAdd(qc, x0, c0);
                c1 = Avx512F.FusedMultiplyAdd(qc, x1, c1);
                c2 = Avx512F.FusedMultiplyAdd(qc, x2, c2);
                c3 = Avx512F.FusedMultiplyAdd(qc, x3, c3);
                var qd = Vector512.Load(q3 + c);
                d0 = Avx512F.FusedMultiplyAdd(qd, x0, d0);
                d1 = Avx512F.FusedMultiplyAdd(qd, x1, d1);
                d2 = Avx512F.FusedMultiplyAdd(qd, x2, d2);
                d3 = Avx512F.FusedMultiplyAdd(qd, x3, d3);
            }
            (PagedAttention.Avx512Path.Reduce4(a0, a1, a2, a3) * vscale).Store(sc + j);
            (PagedAttention.Avx512Path.Reduce4(b0, b1, b2, b3) * vscale).Store(sc + sp + j);
            (PagedAttention.Avx512Path.Reduce4(c0, c1, c2, c3) * vscale).Store(sc + 2 * sp + j);
            (PagedAttention.Avx512Path.Reduce4(d0, d1, d2, d3) * vscale).Store(sc + 3 * sp + j);
        }
    }

    /// <summary>o = o·corr + Σ_{j &lt; n} p_j·v_j for one row: four accumulators taking positions in turn, the
    /// per-token path's loop.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PvRow(float* V, float* p, float* o, float corr, int n, int D)
    {
        var vcorr = Vector512.Create(corr);
        for (int c = 0; c < D; c += 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            float* vc = V + c;
            int jj = 0;
            for (; jj + 4 <= n; jj += 4)
            {
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(p[jj]), Vector512.Load(vc + jj * D), a0);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(p[jj + 1]), Vector512.Load(vc + (jj + 1) * D), a1);
                a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(p[jj + 2]), Vector512.Load(vc + (jj + 2) * D), a2);
                a3 = Avx512F.FusedMultiplyAdd(Vector512.Create(p[jj + 3]), Vector512.Load(vc + (jj + 3) * D), a3);
            }
            if (jj < n) a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(p[jj]), Vector512.Load(vc + jj * D), a0);
            if (jj + 1 < n) a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(p[jj + 1]), Vector512.Load(vc + (jj + 1) * D), a1);
            if (jj + 2 < n) a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(p[jj + 2]), Vector512.Load(vc + (jj + 2) * D), a2);
            Avx512F.FusedMultiplyAdd(Vector512.Load(o + c), vcorr, (a0 + a1) + (a2 + a3)).Store(o + c);
        }
    }

    /// <summary><see cref="PvRow"/> for four rows (p rows sp apart) over a whole block (n a multiple of 4): each
    /// value vector loaded once for the four rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PvQuad(float* V, float* p, int sp, float* o0, float* o1, float* o2, float* o3, float* corr, int n, int D)
    {
        float* p1 = p + sp, p2 = p1 + sp, p3 = p2 + sp;
        for (int c = 0; c < D; c += 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
            Vector512<float> d0 = default, d1 = default, d2 = default, d3 = default;
            // pointers that step (rather than indices scaled inside the loop): the JIT keeps them in registers
            float* vr = V + c, pa = p, pb = p1, pc = p2, pd = p3;
            for (int jj = 0; jj < n; jj += 4, vr += 4 * D, pa += 4, pb += 4, pc += 4, pd += 4)
            {
                var v0 = Vector512.Load(vr);
                var v1 = Vector512.Load(vr + D);
                var v2 = Vector512.Load(vr + 2 * D);
                var v3 = Vector512.Load(vr + 3 * D);
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(pa[0]), v0, a0);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(pa[1]), v1, a1);
                a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(pa[2]), v2, a2);
                a3 = Avx512F.FusedMultiplyAdd(Vector512.Create(pa[3]), v3, a3);
                b0 = Avx512F.FusedMultiplyAdd(Vector512.Create(pb[0]), v0, b0);
                b1 = Avx512F.FusedMultiplyAdd(Vector512.Create(pb[1]), v1, b1);
                b2 = Avx512F.FusedMultiplyAdd(Vector512.Create(pb[2]), v2, b2);
                b3 = Avx512F.FusedMultiplyAdd(Vector512.Create(pb[3]), v3, b3);
                c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(pc[0]), v0, c0);
                c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(pc[1]), v1, c1);
                c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(pc[2]), v2, c2);
                c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(pc[3]), v3, c3);
                d0 = Avx512F.FusedMultiplyAdd(Vector512.Create(pd[0]), v0, d0);
                d1 = Avx512F.FusedMultiplyAdd(Vector512.Create(pd[1]), v1, d1);
                d2 = Avx512F.FusedMultiplyAdd(Vector512.Create(pd[2]), v2, d2);
                d3 = Avx512F.FusedMultiplyAdd(Vector512.Create(pd[3]), v3, d3);
            }
            Avx512F.FusedMultiplyAdd(Vector512.Load(o0 + c), Vector512.Create(corr[0]), (a0 + a1) + (a2 + a3)).Store(o0 + c);
            Avx512F.FusedMultiplyAdd(Vector512.Load(o1 + c), Vector512.Create(corr[1]), (b0 + b1) + (b2 + b3)).Store(o1 + c);
            Avx512F.FusedMultiplyAdd(Vector512.Load(o2 + c), Vector512.Create(corr[2]), (c0 + c1) + (c2 + c3)).Store(o2 + c);
            Avx512F.FusedMultiplyAdd(Vector512.Load(o3 + c), Vector512.Create(corr[3]), (d0 + d1) + (d2 + d3)).Store(o3 + c);
        }
    }
}
