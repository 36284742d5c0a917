using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors.Attention;

namespace SharpInfer.Tensors;

/// <summary>
/// Causal attention over a paged KV cache for every token of a forward batch, flash-attention style: for each
/// (token, KV head) the query heads that share that KV head walk the sequence's blocks in position order, one
/// block at a time, keeping a running max, running sum and output accumulator (online softmax). No score matrix
/// is formed; memory is O(head_dim) per query head whatever the context length. Tiles are whole cache blocks,
/// aligned to absolute positions, so a token's result does not depend on which other tokens share the batch or
/// on how its prompt was chunked.
/// </summary>
/// <remarks>
/// Per block: an F16 block's keys and values are widened once (vectorized) into scratch and shared by the whole
/// query group, and the next block is prefetched. Then, phase by phase over the group's heads (so the heads'
/// independent dependency chains overlap): scores of 4 positions at a time (one FMA accumulator per position over the
/// head dimension, reduced together), scaled; the block max; p = e^(s − m_new) with <see cref="VecMath"/>'s exp
/// on the vector paths (<see cref="MathF.Exp"/> on the scalar path); l = l·c + Σp; and o = o·c + Σ p_j·v_j with 4
/// accumulators taking positions in turn, where c = e^(m_old − m_new). Positions past the sequence end inside the
/// last block are masked to −∞. Every operation depends only on the token's query, its length and the cached
/// keys/values, so results are batch- and chunking-invariant on every path. The AVX2 path does the AVX-512 path's
/// 16-lane arithmetic (each 16-lane accumulator as two 8-lane halves, the same reduction tree), so the two give the same
/// bits: a model's output does not depend on which of the two CPUs runs it. The portable path (non-x86) has its own order.
/// </remarks>
internal sealed unsafe class PagedAttention : IParallelWork, IDisposable
{
    private readonly ComputePool _pool;
    private readonly NativeBuffer<float>[] _scratch;
    private readonly int _groupSize, _headDim, _kvHeads, _qStride;
    /// <summary>Prefill runs of consecutive tokens of one sequence go to <see cref="TileAttention512"/> (AVX-512) or to
    /// the AVX2 path's tile (each block widened once per tile).</summary>
    private readonly bool _tiles;
    // current job's tiles: first batch token and token count of each (grown with the batch, never per token)
    private int[] _tileStart = new int[64], _tileCount = new int[64];
    private int _tileTotal;
    /// <summary>The job's work items: tiles, and groups of decode tokens sharing cached prefix blocks (cascade).</summary>
    private readonly CascadePlan _plan = new();
    /// <summary>Cascade attention is available (the AVX-512 tiles) and not switched off (SHARPINFER_NO_CASCADE=1, a
    /// diagnostic switch for A/B measurements; the results are the same bits either way).</summary>
    private readonly bool _cascade;
    /// <summary>Per thread: a cascade group's query and output row addresses.</summary>
    private readonly nint[][] _rowQ, _rowO;

    public IsaLevel Level { get; }

    /// <summary>Cascade groups (decode tokens sharing prefix blocks, attended together) in the last <see cref="Run"/>.</summary>
    internal int LastCascadeGroups { get; private set; }

    // current job
    private IKvCache _cache = null!;
    private ForwardBatch _batch = null!;
    private int _layer, _tokenOffset;
    private float* _q, _out;
    private float _scale;
    /// <summary>Hadamard rotation sizes of the cache's keys and values (<see cref="KvRotation"/>; 0: stored as is).</summary>
    private int _keyRotation, _valueRotation;
    /// <summary>Where in each thread's scratch the rotated copy of a tile's queries goes.</summary>
    private readonly long _rotatedQueryOffset, _packedTileOffset;
    private int[]? _firstVisible;
    private float[]? _sinks;

    public PagedAttention(ComputePool pool, ModelConfig c, int blockSize, IsaLevel? level = null)
    {
        _pool = pool;
        _groupSize = c.GroupSize;
        _headDim = c.HeadDim;
        _kvHeads = c.KvHeadCount;
        _qStride = c.QueryDim;
        Level = level ?? Isa.Level;
        _tiles = Level >= IsaLevel.Avx512 ? TileAttention512.Supports(_headDim, blockSize)
            : Level == IsaLevel.Avx2 && Avx2.IsSupported && Fma.IsSupported;
        long scratch = ScratchFloats(_groupSize, _headDim, blockSize);
        // (also enough for the AVX2 tile: its widened block, one token's scores and a softmax state per token)
        if (_tiles) scratch = Math.Max(scratch, TileAttention512.ScratchFloats(_groupSize, _headDim, blockSize));
        // a rotated copy of a tile's queries, laid out like the batch rows (token stride _qStride)
        _rotatedQueryOffset = (scratch + 15) & ~15L;
        scratch = _rotatedQueryOffset + (long)(TileAttention512.MaxTokens - 1) * _qStride + (long)_groupSize * _headDim;
        // the AVX2 tile's queries and outputs, packed (see Execute)
        _packedTileOffset = (scratch + 15) & ~15L;
        scratch = _packedTileOffset + 2L * TileAttention512.MaxTokens * _groupSize * _headDim;
        _scratch = new NativeBuffer<float>[pool.Threads];
        for (int i = 0; i < _scratch.Length; i++)
            _scratch[i] = new NativeBuffer<float>(scratch);
        _cascade = _tiles && Level >= IsaLevel.Avx512 && Environment.GetEnvironmentVariable("SHARPINFER_NO_CASCADE") != "1";
        _rowQ = new nint[pool.Threads][];
        _rowO = new nint[pool.Threads][];
        for (int i = 0; i < pool.Threads; i++)
        {
            _rowQ[i] = new nint[TileAttention512.MaxTokens * _groupSize];
            _rowO[i] = new nint[TileAttention512.MaxTokens * _groupSize];
        }
    }

    /// <summary>Scratch floats <see cref="Attend(IKvCache, int, int, BlockTable, int, float*, float*, int, int, float, float*, IsaLevel)"/> needs.</summary>
    public static long ScratchFloats(int groupSize, int headDim, int blockSize) =>
        2L * blockSize * headDim + (long)groupSize * Pad16(blockSize) + 3L * groupSize + 16;

    private static int Pad16(int n) => (n + 15) & ~15;

    /// <summary>Attention for batch tokens [tokenOffset, tokenOffset + count): q is [count × n_head·D], out likewise.
    /// <paramref name="firstVisible"/> (sliding-window layers): per token t of the range, the first key position it
    /// sees (keys before it are skipped); null: every token sees its whole prefix. <paramref name="sinks"/> (gpt-oss):
    /// one logit per query head that joins each softmax's max and denominator without a value; null: none. A quantized
    /// cache holds keys and values Hadamard-rotated (<see cref="KvRotation"/>, as the model writes them): queries are
    /// rotated on the way in (into scratch) and outputs back on the way out, so q and output stay in the model's basis.</summary>
    public void Run(IKvCache cache, ForwardBatch batch, int layer, int tokenOffset, int count, float* q, float* output,
                    int[]? firstVisible = null, float[]? sinks = null)
    {
        _cache = cache; _batch = batch; _layer = layer; _tokenOffset = tokenOffset; _q = q; _out = output;
        _firstVisible = firstVisible;
        _sinks = sinks;
        _scale = 1.0f / MathF.Sqrt(_headDim);
        _keyRotation = KvRotation.KeySize(cache.KeyFormat, _headDim);
        _valueRotation = KvRotation.ValueSize(cache.ValueFormat, _headDim);
        MakeTiles(count);
        // rotated caches attend with rotated query copies per tile, windows and sinks per token: those stay tile by tile
        bool cascade = _cascade && firstVisible == null && sinks == null && _keyRotation == 0 && _valueRotation == 0;
        _plan.Plan(_tileTotal, _tileStart, _tileCount, batch, tokenOffset, cache.GroupOf(layer), cache.BlockSize,
                   TileAttention512.MaxTokens, cascade);
        LastCascadeGroups = _plan.Groups;
        _pool.Run(this, _plan.Total * _kvHeads);
    }

    /// <summary>Query tokens per tile on the AVX2 path (its 16 registers hold half the AVX-512 tile's work; measured
    /// there: tiles of 2 or 4 tokens slower than 8; 16 not measured on an AVX2 machine). The scratch is sized for
    /// <see cref="TileAttention512.MaxTokens"/>, the larger.</summary>
    private const int Avx2TileTokens = 8;

    /// <summary>Cuts the job's tokens into tiles: runs of up to <see cref="TileAttention512.MaxTokens"/> (AVX-512) or
    /// <see cref="Avx2TileTokens"/> tokens of one
    /// sequence at consecutive positions (one token a tile without the tiled kernel). A token's bits do not depend
    /// on its tile, so neither does the result on the batch's composition.</summary>
    private void MakeTiles(int count)
    {
        if (_tileStart.Length < count)
        {
            _tileStart = new int[count];
            _tileCount = new int[count];
        }
        // sliding-window layers and attention sinks go token by token (the tiled kernel has neither yet)
        int max = _tiles && _firstVisible == null && _sinks == null ? (Level >= IsaLevel.Avx512 ? TileAttention512.MaxTokens : Avx2TileTokens) : 1, n = 0;
        for (int t = 0; t < count;)
        {
            int bt = _tokenOffset + t, len = 1;
            while (len < max && t + len < count && _batch.SequenceOf[bt + len] == _batch.SequenceOf[bt]
                   && _batch.Positions[bt + len] == _batch.Positions[bt] + len)
                len++;
            _tileStart[n] = t;
            _tileCount[n++] = len;
            t += len;
        }
        _tileTotal = n;
    }

    public void Execute(int task, int thread)
    {
        // latest items first: they see the most keys, so the long tasks start early and the short ones fill the end
        int item = _plan.Total - 1 - task / _kvHeads, g = task % _kvHeads;
        if (_plan.Count[item] == 1) ExecuteTile(_plan.Members[_plan.First[item]], g, thread);
        else ExecuteGroup(item, g, thread);
    }

    /// <summary>A cascade group on KV head g: its decode tokens walk the blocks they share together
    /// (<see cref="TileAttention512.AttendShared"/>), then each its own (<see cref="Avx512Path.AttendFrom"/>).</summary>
    private void ExecuteGroup(int item, int g, int thread)
    {
        int first = _plan.First[item], count = _plan.Count[item], shared = _plan.Shared[item];
        int G = _groupSize, D = _headDim, R = count * G, groupFloats = G * D;
        float* scratch = _scratch[thread].Pointer;
        // the rows' running state sits where the tile kernel keeps it, above the widened block and the rows' scores
        float* m = scratch + 2L * _cache.BlockSize * D + (long)R * Pad16(_cache.BlockSize), l = m + R, corrs = l + R;
        nint[] rowQ = _rowQ[thread], rowO = _rowO[thread];
        int kvGroup = _cache.GroupOf(_layer);
        for (int i = 0; i < count; i++)
        {
            int t = _tileStart[_plan.Members[first + i]];
            float* q = _q + (long)t * _qStride + g * groupFloats, o = _out + (long)t * _qStride + g * groupFloats;
            new Span<float>(o, groupFloats).Clear();
            for (int h = 0; h < G; h++)
            {
                rowQ[i * G + h] = (nint)(q + h * D);
                rowO[i * G + h] = (nint)(o + h * D);
                m[i * G + h] = float.NegativeInfinity;
                l[i * G + h] = 0;
            }
        }
        var leader = _batch.Table(_batch.SequenceOf[_tokenOffset + _tileStart[_plan.Members[first]]], kvGroup);
        fixed (nint* pq = rowQ, po = rowO)
            TileAttention512.AttendShared(_cache, _layer, g, leader, shared, pq, po, R, D, _scale, scratch, m, l, corrs);
        for (int i = 0; i < count; i++)
        {
            int bt = _tokenOffset + _tileStart[_plan.Members[first + i]];
            var table = _batch.Table(_batch.SequenceOf[bt], kvGroup);
            Avx512Path.AttendFrom(_cache, _layer, g, table, _batch.Positions[bt] + 1, (float*)rowQ[i * G], (float*)rowO[i * G],
                G, D, _scale, scratch, shared, m + i * G, l + i * G, corrs + i * G);
        }
    }

    private void ExecuteTile(int tile, int g, int thread)
    {
        int t = _tileStart[tile], tokens = _tileCount[tile];
        int bt = _tokenOffset + t;
        int position = _batch.Positions[bt];
        var table = _batch.Table(_batch.SequenceOf[bt], _cache.GroupOf(_layer));
        float* q = _q + (long)t * _qStride + g * _groupSize * _headDim;
        float* o = _out + (long)t * _qStride + g * _groupSize * _headDim;
        float* scratch = _scratch[thread].Pointer;
        int groupFloats = _groupSize * _headDim;
        if (_keyRotation > 0)
        {
            // keys are stored rotated: attend with H·q (a copy; the caller's queries stay as they are)
            float* rq = scratch + _rotatedQueryOffset;
            for (int i = 0; i < tokens; i++)
            {
                Buffer.MemoryCopy(q + (long)i * _qStride, rq + (long)i * _qStride, 4L * groupFloats, 4L * groupFloats);
                KvRotation.Rotate(rq + (long)i * _qStride, groupFloats, _keyRotation);
            }
            q = rq;
        }
        if (tokens == 1)
        {
            int first = _firstVisible != null ? _firstVisible[t] : 0;
            // a windowed group's table has let go of the blocks before the window: reading one would be garbage
            if (first < table.FirstLive * _cache.BlockSize)
                throw new InvalidOperationException($"layer {_layer}: position {position} sees from {first}, but its blocks start at {table.FirstLive * _cache.BlockSize}");
            fixed (float* sinks = _sinks)   // pinned (ModelWeights' vectors): no copy, no allocation
                Attend(_cache, _layer, g, table, position + 1, q, o, _groupSize, _headDim, _scale, scratch, Level, first,
                    sinks == null ? null : sinks + g * _groupSize);
        }
        else if (Level >= IsaLevel.Avx512)
            TileAttention512.Attend(_cache, _layer, g, table, position, tokens, q, o, _qStride, _groupSize, _headDim, _scale, scratch);
        else
        {
            // The tile reads its tokens' queries and writes their outputs packed together: at the batch rows' stride
            // (the query width, a multiple of 4 KiB for 8+ heads of 128) every token's rows fall into the same L1
            // sets beside the widened block (measured with the head pairs of the same commit: attention at depth ~5%
            // less time for both together; docs/benchmarks.md)
            float* pq = scratch + _packedTileOffset, po = pq + (long)TileAttention512.MaxTokens * groupFloats;
            for (int i = 0; i < tokens; i++)
                Buffer.MemoryCopy(q + (long)i * _qStride, pq + (long)i * groupFloats, 4L * groupFloats, 4L * groupFloats);
            Avx2Path.AttendTile(_cache, _layer, g, table, position, tokens, pq, po, groupFloats, _groupSize, _headDim, _scale, scratch);
            for (int i = 0; i < tokens; i++)
                Buffer.MemoryCopy(po + (long)i * groupFloats, o + (long)i * _qStride, 4L * groupFloats, 4L * groupFloats);
        }
        // values are stored rotated: Σ p·Hv = H·Σ p·v, and H·H = I
        if (_valueRotation > 0)
            for (int i = 0; i < tokens; i++) KvRotation.Rotate(o + (long)i * _qStride, groupFloats, _valueRotation);
    }

    /// <summary>Attention of <paramref name="groupSize"/> query heads (consecutive, headDim apart) against the
    /// first <paramref name="length"/> positions of one KV head of a sequence.</summary>
    public static void Attend(IKvCache cache, int layer, int kvHead, BlockTable table, int length,
                              float* q, float* output, int groupSize, int headDim, float scale, float* scratch) =>
        Attend(cache, layer, kvHead, table, length, q, output, groupSize, headDim, scale, scratch, Isa.Level);

    /// <summary>As above on a chosen instruction path (scratch: <see cref="ScratchFloats"/>), seeing only positions
    /// [<paramref name="first"/>, length): whole blocks before <paramref name="first"/> are skipped and the positions
    /// before it inside its block are masked to −∞ (sliding-window layers). <paramref name="sinks"/>: one logit per
    /// query head of the group (attention sinks) or null.</summary>
    public static void Attend(IKvCache cache, int layer, int kvHead, BlockTable table, int length,
                              float* q, float* output, int groupSize, int headDim, float scale, float* scratch, IsaLevel level, int first = 0,
                              float* sinks = null)
    {
        if ((uint)first >= (uint)length) throw new ArgumentOutOfRangeException(nameof(first), $"first visible position {first} is outside [0, {length})");
        // the in-place Q8_0 kernel and the query tiles see whole prefixes only; a windowed token takes the general
        // path, which gives the same bits (both kernels are bit-identical to it), so windows keep batch invariance
        if (first == 0 && sinks == null && level >= IsaLevel.Avx512 && Q8Attention512.Supports(cache, groupSize, headDim))
            Q8Attention512.Attend(cache, layer, kvHead, table, length, q, output, groupSize, headDim, scale, scratch);
        else if (level >= IsaLevel.Avx512 && Avx512F.IsSupported && Fma.IsSupported)
            Avx512Path.Attend(cache, layer, kvHead, table, length, q, output, groupSize, headDim, scale, scratch, first, sinks);
        else if (level >= IsaLevel.Avx2 && Avx2.IsSupported && Fma.IsSupported)
            Avx2Path.Attend(cache, layer, kvHead, table, length, q, output, groupSize, headDim, scale, scratch, first, sinks);
        else if (level >= IsaLevel.Portable)
            PortablePath.Attend(cache, layer, kvHead, table, length, q, output, groupSize, headDim, scale, scratch, first, sinks);
        else
            AttendScalar(cache, layer, kvHead, table, length, q, output, groupSize, headDim, scale, scratch, first, sinks);
    }

    /// <summary>Sliding window: in the first visited block, the <paramref name="count"/> positions before the first
    /// visible one get score −∞ (p = 0) in each head's row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MaskBefore(float* scAll, int rowStride, int groupSize, int count)
    {
        for (int h = 0; h < groupSize; h++)
            for (int j = 0; j < count; j++) scAll[h * rowStride + j] = float.NegativeInfinity;
    }

    /// <summary>Common set-up: running max −∞, running sum 0, output 0.</summary>
    private static void Init(float* m, float* l, float* output, int groupSize, int headDim)
    {
        for (int h = 0; h < groupSize; h++) { m[h] = float.NegativeInfinity; l[h] = 0; }
        new Span<float>(output, groupSize * headDim).Clear();
    }

    /// <summary>The first <paramref name="rows"/> rows of a block's keys or values as floats: in place for F32,
    /// otherwise widened into scratch by the format (F16 with the shorter conversion while the cache holds only finite
    /// values: same bits, about a third of attention saved; quantized formats dequantize exactly).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* BlockFloats(IKvCache cache, KvFormat format, byte* src, float* dst, int rows, IsaLevel level) =>
        format.Widen(src, dst, rows, cache.HeadDim, level, finite: !cache.MayHoldNonFinite);

    /// <summary>How many blocks ahead the F16 head-pair decode asks for a block into L2 (besides into L1 two blocks
    /// ahead): measured 2026-12-08 on Zen 5, qwen3-0.6b q8_0 tg128 at depth 4096, 2 threads: L1 two ahead alone ~20–21
    /// t/s, with L2 3–8 ahead 22–25 t/s (flat over that range), L2 alone 17–20. A decode token walks each KV head's
    /// blocks once, 32 KiB apart in the arena, so the hardware prefetcher sees only 4 KiB runs.</summary>
    private const int L2PrefetchBlocks = 6;

    /// <summary>Asks for the next block's keys and values while this one is computed: a sequence's blocks are
    /// anywhere in the arena, so the hardware prefetcher cannot run ahead across a block boundary. Into L1, or with
    /// <paramref name="l2"/> into L2 (prefetcht1, for blocks further ahead).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchBlock(IKvCache cache, int layer, int kvHead, BlockTable table, int b, int nBlocks, int length, bool l2 = false)
    {
        if (b >= nBlocks || !Sse.IsSupported) return;
        int rows = Math.Min(cache.BlockSize, length - b * cache.BlockSize);
        long kBytes = rows * cache.KeyFormat.RowBytes(cache.HeadDim), vBytes = rows * cache.ValueFormat.RowBytes(cache.HeadDim);
        byte* k = cache.KeyBlock(layer, table[b], kvHead), v = cache.ValueBlock(layer, table[b], kvHead);
        if (l2)
        {
            for (long i = 0; i < kBytes; i += 64) Sse.Prefetch1(k + i);
            for (long i = 0; i < vBytes; i += 64) Sse.Prefetch1(v + i);
            return;
        }
        for (long i = 0; i < kBytes; i += 64) Sse.Prefetch0(k + i);
        for (long i = 0; i < vBytes; i += 64) Sse.Prefetch0(v + i);
    }

    /// <summary>The scalar reference path.</summary>
    private static void AttendScalar(IKvCache cache, int layer, int kvHead, BlockTable table, int length,
                                     float* q, float* output, int groupSize, int D, float scale, float* scratch, int first,
                                     float* sinks)
    {
        int bs = cache.BlockSize;
        float* kf = scratch, vf = kf + bs * D, sc = vf + bs * D, m = sc + Pad16(bs), l = m + groupSize;
        Init(m, l, output, groupSize, D);
        int nBlocks = (length + bs - 1) / bs;
        for (int b = first / bs; b < nBlocks; b++)
        {
            int n = Math.Min(bs, length - b * bs), masked = Math.Max(0, first - b * bs);
            float* K = BlockFloats(cache, cache.KeyFormat, cache.KeyBlock(layer, table[b], kvHead), kf, n, IsaLevel.Scalar);
            float* V = BlockFloats(cache, cache.ValueFormat, cache.ValueBlock(layer, table[b], kvHead), vf, n, IsaLevel.Scalar);
            for (int h = 0; h < groupSize; h++)
            {
                float* qh = q + h * D, oh = output + h * D;
                float blockMax = float.NegativeInfinity;
                for (int j = 0; j < n; j++)
                {
                    float s = 0;
                    for (int d = 0; d < D; d++) s = MathF.FusedMultiplyAdd(qh[d], K[j * D + d], s);
                    sc[j] = j < masked ? float.NegativeInfinity : s * scale;
                    blockMax = MathF.Max(blockMax, sc[j]);
                }
                float mNew = MathF.Max(m[h], blockMax);
                float corr = m[h] == float.NegativeInfinity ? 0f : MathF.Exp(m[h] - mNew);
                float sum = 0;
                for (int j = 0; j < n; j++) { sc[j] = MathF.Exp(sc[j] - mNew); sum += sc[j]; }
                l[h] = l[h] * corr + sum;
                m[h] = mNew;
                for (int d = 0; d < D; d++)
                {
                    float acc = 0;
                    for (int j = 0; j < n; j++) acc = MathF.FusedMultiplyAdd(sc[j], V[j * D + d], acc);
                    oh[d] = MathF.FusedMultiplyAdd(oh[d], corr, acc);
                }
            }
        }
        if (sinks != null) FoldSinks(output, m, l, sinks, groupSize, D);
        for (int h = 0; h < groupSize; h++)
        {
            float inv = 1.0f / l[h];
            for (int d = 0; d < D; d++) output[h * D + d] *= inv;
        }
    }

    /// <summary>Attention sinks (gpt-oss), folded in after the last block as ggml's flash attention does: head h's sink
    /// logit s joins the softmax like one more score with no value: when s exceeds the running max m the accumulated
    /// output and sum are rescaled by e^(m − s) and the sink adds 1, otherwise it adds e^(s − m) to the sum (ggml's
    /// soft_max with sinks is the same max and sum, computed unfused).</summary>
    private static void FoldSinks(float* output, float* m, float* l, float* sinks, int groupSize, int D)
    {
        for (int h = 0; h < groupSize; h++)
        {
            float s = sinks[h];
            if (s > m[h])
            {
                float ms = MathF.Exp(m[h] - s);
                for (int d = 0; d < D; d++) output[h * D + d] *= ms;
                l[h] = l[h] * ms + 1f;
                m[h] = s;
            }
            else l[h] += MathF.Exp(s - m[h]);
        }
    }

    // ----------------------------------------------------------------------------------------------------------

    internal static class Avx512Path
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Attend(IKvCache cache, int layer, int kvHead, BlockTable table, int length,
                                  float* q, float* output, int groupSize, int D, float scale, float* scratch, int first,
                                  float* sinks = null)
        {
            int bs = cache.BlockSize, sp = Pad16(bs);
            float* m = scratch + 2L * bs * D + (long)groupSize * sp, l = m + groupSize, corrs = l + groupSize;
            Init(m, l, output, groupSize, D);
            Blocks(cache, layer, kvHead, table, length, q, output, groupSize, D, scale, scratch, first, first / bs, m, l, corrs);
            if (sinks != null) FoldSinks(output, m, l, sinks, groupSize, D);
            Normalize(output, l, groupSize, D);
        }

        /// <summary>The rest of a token's attention after a cascade's shared blocks (<see cref="TileAttention512.AttendShared"/>):
        /// blocks from <paramref name="fromBlock"/> on, continuing the running max <paramref name="m"/>, sum
        /// <paramref name="l"/> and output accumulators of the group's heads, then the normalization — the same
        /// operations the token's own <see cref="Attend"/> applies to those blocks, so the same bits. Scratch: the first
        /// <see cref="ScratchFloats"/> floats less the state (<paramref name="m"/>, <paramref name="l"/>,
        /// <paramref name="corrs"/> live elsewhere).</summary>
        public static void AttendFrom(IKvCache cache, int layer, int kvHead, BlockTable table, int length, float* q, float* output,
                                      int groupSize, int D, float scale, float* scratch, int fromBlock, float* m, float* l, float* corrs)
        {
            Blocks(cache, layer, kvHead, table, length, q, output, groupSize, D, scale, scratch, 0, fromBlock, m, l, corrs);
            Normalize(output, l, groupSize, D);
        }

        /// <summary>Online-softmax updates over blocks [fromBlock, ⌈length / bs⌉) of the sequence; positions before
        /// <paramref name="first"/> are masked (sliding windows).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Blocks(IKvCache cache, int layer, int kvHead, BlockTable table, int length, float* q, float* output,
                                   int groupSize, int D, float scale, float* scratch, int first, int fromBlock, float* m, float* l, float* corrs)
        {
            int bs = cache.BlockSize, sp = Pad16(bs), D16 = D & ~15;
            float* kf = scratch, vf = kf + bs * D, scAll = vf + bs * D;
            var vscale = Vector128.Create(scale);
            int nBlocks = (length + bs - 1) / bs;
            // finite F16 blocks with whole vectors and 4-position steps: head pairs read the halves directly
            bool pairs = cache.KeyFormat.IsF16 && cache.ValueFormat.IsF16 && !cache.MayHoldNonFinite && groupSize is 2 or 4 && D % 16 == 0 && bs % 4 == 0;
            if (pairs)
            {
                // the scaled F16 form (FloatConvert.LoadFiniteHalf16Scaled) needs q·2^112 finite: |q| < 2^16
                if (FloatConvert.ScalesUpFinite(q, groupSize * D))
                {
                    for (int i = 0; i < groupSize * D; i += 16)
                        (Vector512.Load(q + i) * Vector512.Create(FloatConvert.HalfScaleUp)).Store(vf + i);
                    PairBlocks<ScaledHalves>(cache, layer, kvHead, table, length, vf, output, groupSize, D, vscale, kf, scAll, first, fromBlock, m, l, corrs);
                }
                else
                    PairBlocks<ExactHalves>(cache, layer, kvHead, table, length, q, output, groupSize, D, vscale, kf, scAll, first, fromBlock, m, l, corrs);
                return;
            }
            for (int b = fromBlock; b < nBlocks; b++)
            {
                int n = Math.Min(bs, length - b * bs), masked = Math.Max(0, first - b * bs);
                PrefetchBlock(cache, layer, kvHead, table, b + 1, nBlocks, length);
                int n4 = Math.Min(bs, (n + 3) & ~3);
                float* K = BlockFloats(cache, cache.KeyFormat, cache.KeyBlock(layer, table[b], kvHead), kf, n, IsaLevel.Avx512);
                float* V = BlockFloats(cache, cache.ValueFormat, cache.ValueBlock(layer, table[b], kvHead), vf, n, IsaLevel.Avx512);
                // phase 1: every head's scores (independent chains per head overlap)
                for (int h = 0; h < groupSize; h++)
                {
                    float* qh = q + h * D, sc = scAll + h * sp;
                    // scores, 4 positions at a time (positions n..n4 are in the block but masked below)
                    int j = 0;
                    for (; j + 4 <= n4; j += 4)
                    {
                        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                        float* k0 = K + j * D, k1 = k0 + D, k2 = k1 + D, k3 = k2 + D;
                        for (int c = 0; c < D16; c += 16)
                        {
                            var qv = Vector512.Load(qh + c);
                            a0 = Avx512F.FusedMultiplyAdd(qv, Vector512.Load(k0 + c), a0);
                            a1 = Avx512F.FusedMultiplyAdd(qv, Vector512.Load(k1 + c), a1);
                            a2 = Avx512F.FusedMultiplyAdd(qv, Vector512.Load(k2 + c), a2);
                            a3 = Avx512F.FusedMultiplyAdd(qv, Vector512.Load(k3 + c), a3);
                        }
                        var s = Reduce4(a0, a1, a2, a3);
                        if (D16 < D) s = DimTail(s, qh, k0, D16, D);
                        (s * vscale).Store(sc + j);
                    }
                    for (; j < n; j++)       // block sizes that are not a multiple of 4
                    {
                        var a = Vector512<float>.Zero;
                        float* kj = K + j * D;
                        for (int c = 0; c < D16; c += 16) a = Avx512F.FusedMultiplyAdd(Vector512.Load(qh + c), Vector512.Load(kj + c), a);
                        float s = Kernels.MatMulKernel.HorizontalSum(a);
                        for (int d = D16; d < D; d++) s = MathF.FusedMultiplyAdd(qh[d], kj[d], s);
                        sc[j] = s * scale;
                    }
                    for (j = n; j < sp; j++) sc[j] = float.NegativeInfinity;

                }
                if (masked > 0) MaskBefore(scAll, sp, groupSize, masked);
                // phase 2: running max, correction, p = e^(s - m), running sum
                Softmax(scAll, sp, m, l, corrs, groupSize);
                // phase 3: o = o·corr + Σ p_j v_j
                for (int h = 0; h < groupSize; h++)
                {
                    float* sc = scAll + h * sp, oh = output + h * D;
                    float corr = corrs[h];

                    var vcorr = Vector512.Create(corr);
                    for (int c = 0; c < D16; c += 16)
                    {
                        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                        float* vc = V + c;
                        int jj = 0;
                        for (; jj + 4 <= n; jj += 4)
                        {
                            a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(sc[jj]), Vector512.Load(vc + jj * D), a0);
                            a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(sc[jj + 1]), Vector512.Load(vc + (jj + 1) * D), a1);
                            a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(sc[jj + 2]), Vector512.Load(vc + (jj + 2) * D), a2);
                            a3 = Avx512F.FusedMultiplyAdd(Vector512.Create(sc[jj + 3]), Vector512.Load(vc + (jj + 3) * D), a3);
                        }
                        if (jj < n) a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(sc[jj]), Vector512.Load(vc + jj * D), a0);
                        if (jj + 1 < n) a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(sc[jj + 1]), Vector512.Load(vc + (jj + 1) * D), a1);
                        if (jj + 2 < n) a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(sc[jj + 2]), Vector512.Load(vc + (jj + 2) * D), a2);
                        Avx512F.FusedMultiplyAdd(Vector512.Load(oh + c), vcorr, (a0 + a1) + (a2 + a3)).Store(oh + c);
                    }
                    if (D16 < D) PvTail(sc, V, oh, n, D16, D, corr);
                }
            }
        }

        /// <summary><see cref="Blocks"/> for finite F16 blocks and head pairs, software-pipelined: the next block's scores
        /// are computed between this block's softmax and its p·V, so the softmax's long dependency chain (maximum, exp of
        /// the correction, row sums) overlaps independent work instead of stalling the p·V behind it. The two blocks'
        /// scores alternate between two buffers (<paramref name="spare"/>: the widening scratch, unused by F16 pairs).
        /// Per head the same operations on the same values as block by block, so the same bits.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void PairBlocks<TH>(IKvCache cache, int layer, int kvHead, BlockTable table, int length, float* q, float* output,
                                       int groupSize, int D, Vector128<float> vscale, float* spare, float* scAll, int first, int fromBlock,
                                       float* m, float* l, float* corrs) where TH : struct, IHalfRows
        {
            int bs = cache.BlockSize, sp = Pad16(bs), nBlocks = (length + bs - 1) / bs;
            if (fromBlock >= nBlocks) return;
            float* cur = scAll, next = spare;
            PrefetchBlock(cache, layer, kvHead, table, fromBlock + 1, nBlocks, length);
            PairScores<TH>(cache, layer, kvHead, table, fromBlock, length, q, cur, groupSize, D, vscale);
            for (int b = fromBlock; b < nBlocks; b++)
            {
                int n = Math.Min(bs, length - b * bs), masked = Math.Max(0, first - b * bs);
                if (masked > 0) MaskBefore(cur, sp, groupSize, masked);
                Softmax(cur, sp, m, l, corrs, groupSize);
                if (b + 1 < nBlocks)
                {
                    PrefetchBlock(cache, layer, kvHead, table, b + 2, nBlocks, length);
                    PrefetchBlock(cache, layer, kvHead, table, b + L2PrefetchBlocks, nBlocks, length, l2: true);
                    PairScores<TH>(cache, layer, kvHead, table, b + 1, length, q, next, groupSize, D, vscale);
                }
                if (TH.Scaled)     // p·2^112 against values read as v·2^-112 (p ≤ 1: finite, and exact)
                    for (int i = 0; i < groupSize * sp; i += 16)
                        (Vector512.Load(cur + i) * Vector512.Create(FloatConvert.HalfScaleUp)).Store(cur + i);
                var vh = (ushort*)cache.ValueBlock(layer, table[b], kvHead);
                for (int h = 0; h < groupSize; h += 2) ValuesPair<TH>(vh, cur + h * sp, sp, output + h * D, corrs[h], corrs[h + 1], n, D);
                float* t = cur; cur = next; next = t;
            }
        }

        /// <summary>Every head pair's scaled scores against block <paramref name="b"/> into rows sp apart from sc.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void PairScores<TH>(IKvCache cache, int layer, int kvHead, BlockTable table, int b, int length, float* q, float* sc,
                                           int groupSize, int D, Vector128<float> vscale) where TH : struct, IHalfRows
        {
            int bs = cache.BlockSize, sp = Pad16(bs), n = Math.Min(bs, length - b * bs), n4 = Math.Min(bs, (n + 3) & ~3);
            var kh = (ushort*)cache.KeyBlock(layer, table[b], kvHead);
            for (int h = 0; h < groupSize; h += 2) ScoresPair<TH>(kh, q + h * D, sc + h * sp, sp, n, n4, D, vscale);
        }

        /// <summary>How the pair kernels read finite F16 rows: as their values, or (<see cref="ScaledHalves"/>) as
        /// value·2^-112 against a query and probabilities pre-scaled by 2^112 — the same products, so the same bits,
        /// for one multiplication less per 16 halves.</summary>
        internal interface IHalfRows
        {
            static abstract bool Scaled { get; }
            static abstract Vector512<float> Load(ushort* p);
        }

        internal struct ExactHalves : IHalfRows
        {
            public static bool Scaled => false;
            [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(ushort* p) => FloatConvert.LoadFiniteHalf16(p);
        }

        internal struct ScaledHalves : IHalfRows
        {
            public static bool Scaled => true;
            [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(ushort* p) => FloatConvert.LoadFiniteHalf16Scaled(p);
        }


        /// <summary>Per row (query head): the block max, the correction c = e^(m_old − m_new), p = e^(s − m_new) in place
        /// of the scores, and l = l·c + Σp. In three passes over the rows, so that the rows' short dependency chains
        /// overlap and the corrections of 16 rows take one exp (lane for lane the one-value exp: VecMath's widths agree
        /// bit for bit) and the sums of 4 rows one <see cref="Reduce4"/> (the tree of
        /// <see cref="Kernels.MatMulKernel.HorizontalSum(Vector512{float})"/>): the same bits as row by row.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static void Softmax(float* scAll, int sp, float* m, float* l, float* corrs, int rows)
        {
            if (rows < 4) SoftmaxRows(scAll, sp, m, l, corrs, rows);
            else SoftmaxTile(scAll, sp, m, l, corrs, rows);
        }

        /// <summary><see cref="Softmax"/> row by row, for a decode step's group (one or two heads; small enough to
        /// inline into the decode kernels).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void SoftmaxRows(float* scAll, int sp, float* m, float* l, float* corrs, int rows)
        {
            for (int h = 0; h < rows; h++)
            {
                float* sc = scAll + h * sp;
                var mx = Vector512.Load(sc);
                for (int c = 16; c < sp; c += 16) mx = Vector512.Max(mx, Vector512.Load(sc + c));
                float mOld = m[h], mNew = MathF.Max(mOld, MaxLanes(mx));
                float corr = mOld == float.NegativeInfinity ? 0f : VecMath.Exp(Vector128.CreateScalarUnsafe(mOld - mNew)).ToScalar();
                l[h] = l[h] * corr + Kernels.MatMulKernel.HorizontalSum(ExpRow(sc, sp, mNew));
                m[h] = mNew;
                corrs[h] = corr;
            }
        }

        /// <summary><see cref="Softmax"/> for a tile's rows, in passes.</summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void SoftmaxTile(float* scAll, int sp, float* m, float* l, float* corrs, int rows)
        {
            // pass 1: each row's new running max, parked in corrs
            for (int h = 0; h < rows; h++)
            {
                float* sc = scAll + h * sp;
                var mx = Vector512.Load(sc);
                for (int c = 16; c < sp; c += 16) mx = Vector512.Max(mx, Vector512.Load(sc + c));
                corrs[h] = MathF.Max(m[h], MaxLanes(mx));
            }
            // pass 2: c = e^(m_old − m_new), 0 for a row that has seen nothing yet (m_old = −∞); m = m_new
            int v = 0;
            for (; v + 16 <= rows; v += 16)
            {
                var mOld = Vector512.Load(m + v);
                var mNew = Vector512.Load(corrs + v);
                var corr = Vector512.ConditionalSelect(Vector512.Equals(mOld, Vector512.Create(float.NegativeInfinity)),
                                                       Vector512<float>.Zero, VecMath.Exp(mOld - mNew));
                mNew.Store(m + v);
                corr.Store(corrs + v);
            }
            for (; v < rows; v++)
            {
                float mOld = m[v], mNew = corrs[v];
                corrs[v] = mOld == float.NegativeInfinity ? 0f : VecMath.Exp(Vector128.CreateScalarUnsafe(mOld - mNew)).ToScalar();
                m[v] = mNew;
            }
            // pass 3: p = e^(s − m_new) in place, l = l·c + Σp (4 rows a reduction)
            int r = 0;
            for (; r + 4 <= rows; r += 4)
            {
                var s0 = ExpRow(scAll + r * sp, sp, m[r]);
                var s1 = ExpRow(scAll + (r + 1) * sp, sp, m[r + 1]);
                var s2 = ExpRow(scAll + (r + 2) * sp, sp, m[r + 2]);
                var s3 = ExpRow(scAll + (r + 3) * sp, sp, m[r + 3]);
                (Vector128.Load(l + r) * Vector128.Load(corrs + r) + Reduce4(s0, s1, s2, s3)).Store(l + r);
            }
            for (; r < rows; r++)
                l[r] = l[r] * corrs[r] + Kernels.MatMulKernel.HorizontalSum(ExpRow(scAll + r * sp, sp, m[r]));
        }

        /// <summary>p = e^(s − max) over one row of scores, in place; returns the lane sums of p.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> ExpRow(float* sc, int sp, float max)
        {
            var vm = Vector512.Create(max);
            var psum = Vector512<float>.Zero;
            for (int c = 0; c < sp; c += 16)
            {
                var p = VecMath.Exp(Vector512.Load(sc + c) - vm);
                p.Store(sc + c);
                psum += p;
            }
            return psum;
        }

        /// <summary>Scores of two heads (q0 and q0 + D, rows sc0 and sc0 + sp) against a block of finite F16 keys: each
        /// key vector is widened once in registers and used by both heads. Per head the same operations in the same
        /// order as the one-head loop over widened keys, so the bits are the same.</summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void ScoresPair<TH>(ushort* K, float* q0, float* sc0, int sp, int n, int n4, int D, Vector128<float> vscale)
            where TH : struct, IHalfRows
        {
            float* q1 = q0 + D, sc1 = sc0 + sp;
            for (int j = 0; j + 4 <= n4; j += 4)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
                ushort* k0 = K + j * D, k1 = k0 + D, k2 = k1 + D, k3 = k2 + D;
                for (nint c = 0; c < D; c += 16)
                {
                    var qa = Vector512.Load(q0 + c);
                    var qb = Vector512.Load(q1 + c);
                    var x0 = TH.Load(k0 + c);
                    a0 = Avx512F.FusedMultiplyAdd(qa, x0, a0);
                    b0 = Avx512F.FusedMultiplyAdd(qb, x0, b0);
                    var x1 = TH.Load(k1 + c);
                    a1 = Avx512F.FusedMultiplyAdd(qa, x1, a1);
                    b1 = Avx512F.FusedMultiplyAdd(qb, x1, b1);
                    var x2 = TH.Load(k2 + c);
                    a2 = Avx512F.FusedMultiplyAdd(qa, x2, a2);
                    b2 = Avx512F.FusedMultiplyAdd(qb, x2, b2);
                    var x3 = TH.Load(k3 + c);
                    a3 = Avx512F.FusedMultiplyAdd(qa, x3, a3);
                    b3 = Avx512F.FusedMultiplyAdd(qb, x3, b3);
                }
                (Reduce4(a0, a1, a2, a3) * vscale).Store(sc0 + j);
                (Reduce4(b0, b1, b2, b3) * vscale).Store(sc1 + j);
            }
            // slots past the sequence end (read above, never used) are masked
            for (int j = n; j < sp; j++) { sc0[j] = float.NegativeInfinity; sc1[j] = float.NegativeInfinity; }
        }

        /// <summary>o = o·c + Σ p_j·v_j for two heads (p rows p0 and p0 + sp, outputs o0 and o0 + D) over a block of finite
        /// F16 values widened once in registers; per head the one-head loop's operations and order.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void ValuesPair<TH>(ushort* V, float* p0, int sp, float* o0, float corr0, float corr1, int n, int D)
            where TH : struct, IHalfRows
        {
            float* p1 = p0 + sp, o1 = o0 + D;
            var c0 = Vector512.Create(corr0);
            var c1 = Vector512.Create(corr1);
            nint d = D;
            for (int c = 0; c < D; c += 16)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
                // pointers that step (rather than indices multiplied by D for every load): the JIT keeps them in registers
                ushort* vr = V + c;
                float* pa = p0, pb = p1;
                int jj = 0;
                for (; jj + 4 <= n; jj += 4, vr += 4 * d, pa += 4, pb += 4)
                {
                    var v0 = TH.Load(vr);
                    a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(pa[0]), v0, a0);
                    b0 = Avx512F.FusedMultiplyAdd(Vector512.Create(pb[0]), v0, b0);
                    var v1 = TH.Load(vr + d);
                    a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(pa[1]), v1, a1);
                    b1 = Avx512F.FusedMultiplyAdd(Vector512.Create(pb[1]), v1, b1);
                    var v2 = TH.Load(vr + 2 * d);
                    a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(pa[2]), v2, a2);
                    b2 = Avx512F.FusedMultiplyAdd(Vector512.Create(pb[2]), v2, b2);
                    var v3 = TH.Load(vr + 3 * d);
                    a3 = Avx512F.FusedMultiplyAdd(Vector512.Create(pa[3]), v3, a3);
                    b3 = Avx512F.FusedMultiplyAdd(Vector512.Create(pb[3]), v3, b3);
                }
                if (jj < n)
                {
                    var v0 = TH.Load(vr);
                    a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(pa[0]), v0, a0);
                    b0 = Avx512F.FusedMultiplyAdd(Vector512.Create(pb[0]), v0, b0);
                }
                if (jj + 1 < n)
                {
                    var v1 = TH.Load(vr + d);
                    a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(pa[1]), v1, a1);
                    b1 = Avx512F.FusedMultiplyAdd(Vector512.Create(pb[1]), v1, b1);
                }
                if (jj + 2 < n)
                {
                    var v2 = TH.Load(vr + 2 * d);
                    a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(pa[2]), v2, a2);
                    b2 = Avx512F.FusedMultiplyAdd(Vector512.Create(pb[2]), v2, b2);
                }
                Avx512F.FusedMultiplyAdd(Vector512.Load(o0 + c), c0, (a0 + a1) + (a2 + a3)).Store(o0 + c);
                Avx512F.FusedMultiplyAdd(Vector512.Load(o1 + c), c1, (b0 + b1) + (b2 + b3)).Store(o1 + c);
            }
        }

        /// <summary>Tree sums (as <see cref="Kernels.MatMulKernel.HorizontalSum(Vector512{float})"/>) of four accumulators.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static Vector128<float> Reduce4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
        {
            var ab = Avx512F.Shuffle4x128(a, b, 0x44) + Avx512F.Shuffle4x128(a, b, 0xEE);
            var cd = Avx512F.Shuffle4x128(c, d, 0x44) + Avx512F.Shuffle4x128(c, d, 0xEE);
            var s = Avx512F.Shuffle4x128(ab, cd, 0x88) + Avx512F.Shuffle4x128(ab, cd, 0xDD);
            s += Avx512F.Permute4x32(s, 0x4E);
            s += Avx512F.Permute4x32(s, 0xB1);
            return Avx512F.PermuteVar16x32(s, Vector512.Create(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).GetLower().GetLower();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float MaxLanes(Vector512<float> v)
        {
            var h = Vector256.Max(v.GetLower(), v.GetUpper());
            var g = Vector128.Max(h.GetLower(), h.GetUpper());
            return MathF.Max(MathF.Max(g[0], g[1]), MathF.Max(g[2], g[3]));
        }
    }

    /// <summary>Head dimensions past the last full vector: scalar FMAs into each of 4 positions' scores.</summary>
    private static Vector128<float> DimTail(Vector128<float> s, float* qh, float* k0, int d0, int D)
    {
        float* r = stackalloc float[4];
        s.Store(r);
        for (int i = 0; i < 4; i++)
            for (int d = d0; d < D; d++) r[i] = MathF.FusedMultiplyAdd(qh[d], k0[i * D + d], r[i]);
        return Vector128.Load(r);
    }

    /// <summary>Head dimensions past the last full vector of the p·V accumulation.</summary>
    private static void PvTail(float* p, float* V, float* oh, int n, int d0, int D, float corr)
    {
        for (int d = d0; d < D; d++)
        {
            float acc = 0;
            for (int j = 0; j < n; j++) acc = MathF.FusedMultiplyAdd(p[j], V[j * D + d], acc);
            oh[d] = MathF.FusedMultiplyAdd(oh[d], corr, acc);
        }
    }

    private static void Normalize(float* output, float* l, int groupSize, int D)
    {
        for (int h = 0; h < groupSize; h++)
        {
            float inv = 1.0f / l[h];
            float* oh = output + h * D;
            int d = 0;
            var vi = Vector128.Create(inv);
            for (; d + 4 <= D; d += 4) (Vector128.Load(oh + d) * vi).Store(oh + d);
            for (; d < D; d++) oh[d] *= inv;
        }
    }

    // ----------------------------------------------------------------------------------------------------------

    private static class Avx2Path
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Attend(IKvCache cache, int layer, int kvHead, BlockTable table, int length,
                                  float* q, float* output, int groupSize, int D, float scale, float* scratch, int first,
                                  float* sinks = null)
        {
            int bs = cache.BlockSize, sp = Pad16(bs);
            float* kf = scratch, vf = kf + bs * D, scAll = vf + bs * D, m = scAll + groupSize * sp, l = m + groupSize, corrs = l + groupSize;
            Init(m, l, output, groupSize, D);
            int nBlocks = (length + bs - 1) / bs;
            for (int b = first / bs; b < nBlocks; b++)
            {
                int n = Math.Min(bs, length - b * bs), masked = Math.Max(0, first - b * bs);
                PrefetchBlock(cache, layer, kvHead, table, b + 1, nBlocks, length);
                float* K = BlockFloats(cache, cache.KeyFormat, cache.KeyBlock(layer, table[b], kvHead), kf, n, IsaLevel.Avx2);
                float* V = BlockFloats(cache, cache.ValueFormat, cache.ValueBlock(layer, table[b], kvHead), vf, n, IsaLevel.Avx2);
                Block(K, V, n, masked, bs, q, output, m, l, corrs, scAll, groupSize, D, scale);
            }
            if (sinks != null) FoldSinks(output, m, l, sinks, groupSize, D);
            Normalize(output, l, groupSize, D);
        }

        /// <summary>Prefill tile: tokens at positions [position, position + tokens) of one sequence (queries and
        /// outputs <paramref name="qStride"/> apart), each block's keys and values widened once for all of them
        /// instead of once per token. Every token runs exactly <see cref="Attend"/>'s steps on the blocks it sees, so
        /// its bits are those of attending it alone.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void AttendTile(IKvCache cache, int layer, int kvHead, BlockTable table, int position, int tokens,
                                      float* q, float* output, int qStride, int groupSize, int D, float scale, float* scratch)
        {
            int bs = cache.BlockSize, sp = Pad16(bs), G3 = 3 * groupSize;
            float* kf = scratch, vf = kf + bs * D, scAll = vf + bs * D, state = scAll + groupSize * sp;
            for (int i = 0; i < tokens; i++)
                Init(state + i * G3, state + i * G3 + groupSize, output + (long)i * qStride, groupSize, D);
            int lengthLast = position + tokens, nBlocks = (lengthLast + bs - 1) / bs;
            for (int b = 0; b < nBlocks; b++)
            {
                int nMax = Math.Min(bs, lengthLast - b * bs);
                PrefetchBlock(cache, layer, kvHead, table, b + 1, nBlocks, lengthLast);
                float* K = BlockFloats(cache, cache.KeyFormat, cache.KeyBlock(layer, table[b], kvHead), kf, nMax, IsaLevel.Avx2);
                float* V = BlockFloats(cache, cache.ValueFormat, cache.ValueBlock(layer, table[b], kvHead), vf, nMax, IsaLevel.Avx2);
                // token i sees position + i + 1 keys: this block only when it starts before that
                for (int i = Math.Max(0, b * bs - position); i < tokens; i++)
                {
                    int n = Math.Min(bs, position + i + 1 - b * bs);
                    float* m = state + i * G3;
                    Block(K, V, n, 0, bs, q + (long)i * qStride, output + (long)i * qStride, m, m + groupSize, m + 2 * groupSize, scAll, groupSize, D, scale);
                }
            }
            for (int i = 0; i < tokens; i++) Normalize(output + (long)i * qStride, state + i * G3 + groupSize, groupSize, D);
        }

        /// <summary>One block of keys and values (n rows seen, the first <paramref name="masked"/> of them masked) into
        /// one token's running softmax state and outputs.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Block(float* K, float* V, int n, int masked, int bs, float* q, float* output, float* m, float* l, float* corrs,
                                  float* scAll, int groupSize, int D, float scale)
        {
            int sp = Pad16(bs);
            int n4 = Math.Min(bs, (n + 3) & ~3);
            // phase 1: every head's scores, two heads at a time (each key vector loaded once for both; per head the
            // same operations as alone)
            int h2 = groupSize & ~1;
            for (int h = 0; h < h2; h += 2)
                ScoresPair(K, q + h * D, q + (h + 1) * D, scAll + h * sp, scAll + (h + 1) * sp, n, n4, sp, D, scale);
            if (h2 < groupSize) ScoresOne(K, q + h2 * D, scAll + h2 * sp, n, n4, sp, D, scale);
            if (masked > 0) MaskBefore(scAll, sp, groupSize, masked);
            // phase 2: running max, correction, p = e^(s - m), running sum
            for (int h = 0; h < groupSize; h++)
            {
                float* sc = scAll + h * sp;
                var mx = Vector256.Load(sc);
                for (int c = 8; c < sp; c += 8) mx = Vector256.Max(mx, Vector256.Load(sc + c));
                var g4 = Vector128.Max(mx.GetLower(), mx.GetUpper());
                float mOld = m[h], mNew = MathF.Max(mOld, MathF.Max(MathF.Max(g4[0], g4[1]), MathF.Max(g4[2], g4[3])));
                float corr = mOld == float.NegativeInfinity ? 0f : VecMath.Exp(Vector128.CreateScalarUnsafe(mOld - mNew)).ToScalar();
                // Σp in the AVX-512 path's 16 lanes (sp is a multiple of 16), as two halves
                var vm = Vector256.Create(mNew);
                Vector256<float> psum = Vector256<float>.Zero, pupper = Vector256<float>.Zero;
                for (int c = 0; c < sp; c += 16)
                {
                    var p = VecMath.Exp(Vector256.Load(sc + c) - vm);
                    p.Store(sc + c);
                    psum += p;
                    p = VecMath.Exp(Vector256.Load(sc + c + 8) - vm);
                    p.Store(sc + c + 8);
                    pupper += p;
                }
                l[h] = l[h] * corr + Kernels.MatMulKernel.HorizontalSum(psum + pupper);
                m[h] = mNew;
                corrs[h] = corr;
            }
            // phase 3: o = o·corr + Σ p_j v_j, two heads at a time (each value vector loaded once for both)
            for (int h = 0; h < h2; h += 2)
                PvPair(V, scAll + h * sp, scAll + (h + 1) * sp, output + h * D, output + (h + 1) * D, corrs[h], corrs[h + 1], n, D);
            if (h2 < groupSize) PvOne(V, scAll + h2 * sp, output + h2 * D, corrs[h2], n, D);
        }

        /// <summary>One head's scaled scores against keys [0, n) of a widened block (−∞ up to the padded width):
        /// groups of 4 keys, each with the AVX-512 path's 16 lanes as two accumulators (dimensions c..c+7 and c+8..c+15
        /// of every 16), added and reduced with its tree, so both paths give the same bits; the rest one key at a time.</summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void ScoresOne(float* K, float* qh, float* sc, int n, int n4, int sp, int D, float scale)
        {
            int D16 = D & ~15, j = 0;
            for (; j + 4 <= n4; j += 4)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                Vector256<float> u0 = default, u1 = default, u2 = default, u3 = default;
                float* k0 = K + j * D, k1 = k0 + D, k2 = k1 + D, k3 = k2 + D;
                for (int c = 0; c < D16; c += 16)
                {
                    var ql = Vector256.Load(qh + c);
                    var qu = Vector256.Load(qh + c + 8);
                    a0 = Fma.MultiplyAdd(ql, Vector256.Load(k0 + c), a0);
                    u0 = Fma.MultiplyAdd(qu, Vector256.Load(k0 + c + 8), u0);
                    a1 = Fma.MultiplyAdd(ql, Vector256.Load(k1 + c), a1);
                    u1 = Fma.MultiplyAdd(qu, Vector256.Load(k1 + c + 8), u1);
                    a2 = Fma.MultiplyAdd(ql, Vector256.Load(k2 + c), a2);
                    u2 = Fma.MultiplyAdd(qu, Vector256.Load(k2 + c + 8), u2);
                    a3 = Fma.MultiplyAdd(ql, Vector256.Load(k3 + c), a3);
                    u3 = Fma.MultiplyAdd(qu, Vector256.Load(k3 + c + 8), u3);
                }
                StoreScores(Reduce4(a0 + u0, a1 + u1, a2 + u2, a3 + u3), qh, k0, sc + j, D, scale);
            }
            ScoresTail(K, qh, sc, j, n, sp, D, scale);
        }

        /// <summary><see cref="ScoresOne"/> for two heads, two keys at a time (8 accumulators; 16 would not fit the
        /// registers), each key vector loaded once for both.</summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void ScoresPair(float* K, float* qa, float* qb, float* sca, float* scb, int n, int n4, int sp, int D, float scale)
        {
            int D16 = D & ~15, j = 0;
            for (; j + 2 <= n4; j += 2)
            {
                Vector256<float> a0 = default, a1 = default, au0 = default, au1 = default;
                Vector256<float> b0 = default, b1 = default, bu0 = default, bu1 = default;
                float* k0 = K + j * D, k1 = k0 + D;
                for (int c = 0; c < D16; c += 16)
                {
                    var qal = Vector256.Load(qa + c);
                    var qbl = Vector256.Load(qb + c);
                    var x = Vector256.Load(k0 + c);
                    a0 = Fma.MultiplyAdd(qal, x, a0);
                    b0 = Fma.MultiplyAdd(qbl, x, b0);
                    x = Vector256.Load(k1 + c);
                    a1 = Fma.MultiplyAdd(qal, x, a1);
                    b1 = Fma.MultiplyAdd(qbl, x, b1);
                    var qau = Vector256.Load(qa + c + 8);
                    var qbu = Vector256.Load(qb + c + 8);
                    x = Vector256.Load(k0 + c + 8);
                    au0 = Fma.MultiplyAdd(qau, x, au0);
                    bu0 = Fma.MultiplyAdd(qbu, x, bu0);
                    x = Vector256.Load(k1 + c + 8);
                    au1 = Fma.MultiplyAdd(qau, x, au1);
                    bu1 = Fma.MultiplyAdd(qbu, x, bu1);
                }
                // lanes: keys j and j + 1 of head a, then of head b; the head dimension's tail as DimTail adds it
                var s = Reduce4(a0 + au0, a1 + au1, b0 + bu0, b1 + bu1);
                float s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
                for (int d = D16; d < D; d++)
                {
                    s0 = MathF.FusedMultiplyAdd(qa[d], k0[d], s0);
                    s1 = MathF.FusedMultiplyAdd(qa[d], k1[d], s1);
                    s2 = MathF.FusedMultiplyAdd(qb[d], k0[d], s2);
                    s3 = MathF.FusedMultiplyAdd(qb[d], k1[d], s3);
                }
                sca[j] = s0 * scale; sca[j + 1] = s1 * scale;
                scb[j] = s2 * scale; scb[j + 1] = s3 * scale;
            }
            ScoresTail(K, qa, sca, j, n, sp, D, scale);
            ScoresTail(K, qb, scb, j, n, sp, D, scale);
        }

        /// <summary>Four keys' reduced sums (keys k0, k0 + D, ..) with the head dimension's tail added, scaled and stored.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreScores(Vector128<float> s, float* qh, float* k0, float* sc, int D, float scale)
        {
            int D16 = D & ~15;
            if (D16 < D) s = DimTail(s, qh, k0, D16, D);
            (s * Vector128.Create(scale)).Store(sc);
        }

        /// <summary>[HorizontalSum(a0), .., HorizontalSum(a3)] (<see cref="Kernels.MatMulKernel.HorizontalSum(Vector256{float})"/>:
        /// h = lo + hi, then (h₀ + h₂) + (h₁ + h₃)) with the same additions done for the four at once after a 4 × 4
        /// transpose, instead of lane extractions and scalar adds (which cost half as many instructions as the FMAs).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector128<float> Reduce4(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3)
        {
            var h0 = a0.GetLower() + a0.GetUpper();
            var h1 = a1.GetLower() + a1.GetUpper();
            var h2 = a2.GetLower() + a2.GetUpper();
            var h3 = a3.GetLower() + a3.GetUpper();
            var t0 = Sse.UnpackLow(h0, h1);    // h0[0] h1[0] h0[1] h1[1]
            var t1 = Sse.UnpackHigh(h0, h1);   // h0[2] h1[2] h0[3] h1[3]
            var t2 = Sse.UnpackLow(h2, h3);
            var t3 = Sse.UnpackHigh(h2, h3);
            var c0 = Sse.MoveLowToHigh(t0, t2);   // lane i: h_i[0]
            var c1 = Sse.MoveHighToLow(t2, t0);   // h_i[1]
            var c2 = Sse.MoveLowToHigh(t1, t3);   // h_i[2]
            var c3 = Sse.MoveHighToLow(t3, t1);   // h_i[3]
            return (c0 + c2) + (c1 + c3);
        }

        /// <summary>Keys [j, n) one at a time, then −∞ up to the padded width <paramref name="sp"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void ScoresTail(float* K, float* qh, float* sc, int j, int n, int sp, int D, float scale)
        {
            int D16 = D & ~15;
            for (; j < n; j++)
            {
                Vector256<float> a = Vector256<float>.Zero, u = Vector256<float>.Zero;
                float* kj = K + j * D;
                for (int c = 0; c < D16; c += 16)
                {
                    a = Fma.MultiplyAdd(Vector256.Load(qh + c), Vector256.Load(kj + c), a);
                    u = Fma.MultiplyAdd(Vector256.Load(qh + c + 8), Vector256.Load(kj + c + 8), u);
                }
                float s = Kernels.MatMulKernel.HorizontalSum(a + u);
                for (int d = D16; d < D; d++) s = MathF.FusedMultiplyAdd(qh[d], kj[d], s);
                sc[j] = s * scale;
            }
            for (j = n; j < sp; j++) sc[j] = float.NegativeInfinity;
        }

        /// <summary>o = o·corr + Σ_{j &lt; n} p_j·v_j for one head: per 8 output columns, four accumulators taking the
        /// positions in turn.</summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void PvOne(float* V, float* sc, float* oh, float corr, int n, int D)
        {
            int D16 = D & ~15;   // the AVX-512 path's vector columns; the rest by PvTail as there
            var vcorr = Vector256.Create(corr);
            for (int c = 0; c < D16; c += 8)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                float* vc = V + c;
                int jj = 0;
                for (; jj + 4 <= n; jj += 4)
                {
                    a0 = Fma.MultiplyAdd(Vector256.Create(sc[jj]), Vector256.Load(vc + jj * D), a0);
                    a1 = Fma.MultiplyAdd(Vector256.Create(sc[jj + 1]), Vector256.Load(vc + (jj + 1) * D), a1);
                    a2 = Fma.MultiplyAdd(Vector256.Create(sc[jj + 2]), Vector256.Load(vc + (jj + 2) * D), a2);
                    a3 = Fma.MultiplyAdd(Vector256.Create(sc[jj + 3]), Vector256.Load(vc + (jj + 3) * D), a3);
                }
                if (jj < n) a0 = Fma.MultiplyAdd(Vector256.Create(sc[jj]), Vector256.Load(vc + jj * D), a0);
                if (jj + 1 < n) a1 = Fma.MultiplyAdd(Vector256.Create(sc[jj + 1]), Vector256.Load(vc + (jj + 1) * D), a1);
                if (jj + 2 < n) a2 = Fma.MultiplyAdd(Vector256.Create(sc[jj + 2]), Vector256.Load(vc + (jj + 2) * D), a2);
                Fma.MultiplyAdd(Vector256.Load(oh + c), vcorr, (a0 + a1) + (a2 + a3)).Store(oh + c);
            }
            if (D16 < D) PvTail(sc, V, oh, n, D16, D, corr);
        }

        /// <summary><see cref="PvOne"/> for two heads: each value vector loaded once for both.</summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void PvPair(float* V, float* pa, float* pb, float* oa, float* ob, float corrA, float corrB, int n, int D)
        {
            int D16 = D & ~15;   // the AVX-512 path's vector columns; the rest by PvTail as there
            var vca = Vector256.Create(corrA);
            var vcb = Vector256.Create(corrB);
            for (int c = 0; c < D16; c += 8)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
                float* vc = V + c;
                int jj = 0;
                for (; jj + 4 <= n; jj += 4)
                {
                    var v = Vector256.Load(vc + jj * D);
                    a0 = Fma.MultiplyAdd(Vector256.Create(pa[jj]), v, a0);
                    b0 = Fma.MultiplyAdd(Vector256.Create(pb[jj]), v, b0);
                    v = Vector256.Load(vc + (jj + 1) * D);
                    a1 = Fma.MultiplyAdd(Vector256.Create(pa[jj + 1]), v, a1);
                    b1 = Fma.MultiplyAdd(Vector256.Create(pb[jj + 1]), v, b1);
                    v = Vector256.Load(vc + (jj + 2) * D);
                    a2 = Fma.MultiplyAdd(Vector256.Create(pa[jj + 2]), v, a2);
                    b2 = Fma.MultiplyAdd(Vector256.Create(pb[jj + 2]), v, b2);
                    v = Vector256.Load(vc + (jj + 3) * D);
                    a3 = Fma.MultiplyAdd(Vector256.Create(pa[jj + 3]), v, a3);
                    b3 = Fma.MultiplyAdd(Vector256.Create(pb[jj + 3]), v, b3);
                }
                if (jj < n)
                {
                    var v = Vector256.Load(vc + jj * D);
                    a0 = Fma.MultiplyAdd(Vector256.Create(pa[jj]), v, a0);
                    b0 = Fma.MultiplyAdd(Vector256.Create(pb[jj]), v, b0);
                }
                if (jj + 1 < n)
                {
                    var v = Vector256.Load(vc + (jj + 1) * D);
                    a1 = Fma.MultiplyAdd(Vector256.Create(pa[jj + 1]), v, a1);
                    b1 = Fma.MultiplyAdd(Vector256.Create(pb[jj + 1]), v, b1);
                }
                if (jj + 2 < n)
                {
                    var v = Vector256.Load(vc + (jj + 2) * D);
                    a2 = Fma.MultiplyAdd(Vector256.Create(pa[jj + 2]), v, a2);
                    b2 = Fma.MultiplyAdd(Vector256.Create(pb[jj + 2]), v, b2);
                }
                Fma.MultiplyAdd(Vector256.Load(oa + c), vca, (a0 + a1) + (a2 + a3)).Store(oa + c);
                Fma.MultiplyAdd(Vector256.Load(ob + c), vcb, (b0 + b1) + (b2 + b3)).Store(ob + c);
            }
            if (D16 < D)
            {
                PvTail(pa, V, oa, n, D16, D, corrA);
                PvTail(pb, V, ob, n, D16, D, corrB);
            }
        }
    }

    // ----------------------------------------------------------------------------------------------------------

    private static class PortablePath
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Attend(IKvCache cache, int layer, int kvHead, BlockTable table, int length,
                                  float* q, float* output, int groupSize, int D, float scale, float* scratch, int first,
                                  float* sinks = null)
        {
            int bs = cache.BlockSize, sp = Pad16(bs), D4 = D & ~3;
            float* kf = scratch, vf = kf + bs * D, sc = vf + bs * D, m = sc + sp, l = m + groupSize;
            Init(m, l, output, groupSize, D);
            int nBlocks = (length + bs - 1) / bs;
            for (int b = first / bs; b < nBlocks; b++)
            {
                int n = Math.Min(bs, length - b * bs), masked = Math.Max(0, first - b * bs);
                PrefetchBlock(cache, layer, kvHead, table, b + 1, nBlocks, length);
                float* K = BlockFloats(cache, cache.KeyFormat, cache.KeyBlock(layer, table[b], kvHead), kf, n, IsaLevel.Portable);
                float* V = BlockFloats(cache, cache.ValueFormat, cache.ValueBlock(layer, table[b], kvHead), vf, n, IsaLevel.Portable);
                for (int h = 0; h < groupSize; h++)
                {
                    float* qh = q + h * D, oh = output + h * D;
                    for (int j = 0; j < n; j++)
                    {
                        Vector128<float> a0 = default, a1 = default;
                        float* kj = K + j * D;
                        int c = 0;
                        for (; c + 8 <= D4; c += 8)
                        {
                            a0 = Vector128.FusedMultiplyAdd(Vector128.Load(qh + c), Vector128.Load(kj + c), a0);
                            a1 = Vector128.FusedMultiplyAdd(Vector128.Load(qh + c + 4), Vector128.Load(kj + c + 4), a1);
                        }
                        if (c < D4) a0 = Vector128.FusedMultiplyAdd(Vector128.Load(qh + c), Vector128.Load(kj + c), a0);
                        var h4 = a0 + a1;
                        float s = (h4[0] + h4[2]) + (h4[1] + h4[3]);
                        for (int d = D4; d < D; d++) s = MathF.FusedMultiplyAdd(qh[d], kj[d], s);
                        sc[j] = s * scale;
                    }
                    for (int j = n; j < sp; j++) sc[j] = float.NegativeInfinity;
                    for (int j = 0; j < masked; j++) sc[j] = float.NegativeInfinity;

                    var mx = Vector128.Load(sc);
                    for (int c = 4; c < sp; c += 4) mx = Vector128.Max(mx, Vector128.Load(sc + c));
                    float mOld = m[h], mNew = MathF.Max(mOld, MathF.Max(MathF.Max(mx[0], mx[1]), MathF.Max(mx[2], mx[3])));
                    float corr = mOld == float.NegativeInfinity ? 0f : VecMath.Exp(Vector128.CreateScalarUnsafe(mOld - mNew)).ToScalar();
                    var vm = Vector128.Create(mNew);
                    var psum = Vector128<float>.Zero;
                    for (int c = 0; c < sp; c += 4)
                    {
                        var p = VecMath.Exp(Vector128.Load(sc + c) - vm);
                        p.Store(sc + c);
                        psum += p;
                    }
                    l[h] = l[h] * corr + ((psum[0] + psum[2]) + (psum[1] + psum[3]));
                    m[h] = mNew;

                    var vcorr = Vector128.Create(corr);
                    for (int c = 0; c < D4; c += 4)
                    {
                        Vector128<float> a0 = default, a1 = default;
                        float* vc = V + c;
                        int jj = 0;
                        for (; jj + 2 <= n; jj += 2)
                        {
                            a0 = Vector128.FusedMultiplyAdd(Vector128.Create(sc[jj]), Vector128.Load(vc + jj * D), a0);
                            a1 = Vector128.FusedMultiplyAdd(Vector128.Create(sc[jj + 1]), Vector128.Load(vc + (jj + 1) * D), a1);
                        }
                        if (jj < n) a0 = Vector128.FusedMultiplyAdd(Vector128.Create(sc[jj]), Vector128.Load(vc + jj * D), a0);
                        Vector128.FusedMultiplyAdd(Vector128.Load(oh + c), vcorr, a0 + a1).Store(oh + c);
                    }
                    if (D4 < D) PvTail(sc, V, oh, n, D4, D, corr);
                }
            }
            if (sinks != null) FoldSinks(output, m, l, sinks, groupSize, D);
            Normalize(output, l, groupSize, D);
        }
    }

    public void Dispose()
    {
        foreach (var s in _scratch) s.Dispose();
    }
}
