using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// A weight format with 32-element blocks (Q4_0, Q4_1, Q5_0, IQ4_NL, MXFP4, Q8_0) whose codes can be turned into unsigned bytes
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

    /// <summary>u is a per-byte function of the nibble (<see cref="MapNibbles"/>), so blocks can be repacked from the
    /// packed bytes; false for Q5_0, whose fifth bits come from elsewhere.</summary>
    static abstract bool PlainNibbles { get; }

    /// <summary>The per-byte nibble → u map of <see cref="PlainNibbles"/> formats (identity or a byte shuffle), AVX2.</summary>
    static abstract Vector256<byte> MapNibbles(Vector256<byte> nibbles);

    /// <summary>The signed code ggml multiplies element j of a block by (the scalar reference).</summary>
    static abstract int Code(byte* blk, int j);

    /// <summary>u of all 32 elements in element order, Vector128/256 only (portable path).</summary>
    static abstract Vector256<byte> UnpackPortable(byte* blk);

    /// <summary>u of all 32 elements in element order (AVX2).</summary>
    static abstract Vector256<byte> Unpack(byte* blk);

    /// <summary>Two blocks a and b (AVX2): lo = [u_a 0..15 | u_b 0..15], hi = [u_a 16..31 | u_b 16..31].</summary>
    static abstract void UnpackPair(byte* a, byte* b, out Vector256<byte> lo, out Vector256<byte> hi);

    /// <summary>The block's scale d: an f16 at byte 0 (every format but MXFP4, whose scale is an E8M0 byte).</summary>
    static virtual float Scale(byte* blk) => Fp16.ToFloat(*(ushort*)blk);

    /// <summary><see cref="Scale"/> of 8 blocks from each block's first 4 bytes (one per lane), AVX2.</summary>
    static virtual Vector256<float> Scales(Vector256<int> heads) => LegacyQuantKernel<Q4_0Format>.HalfToFloat(heads);
}

/// <summary>
/// Int8 matmul for the 32-element "legacy" formats (see <see cref="ILegacyBlockFormat"/>), ggml's arithmetic: per
/// block an exact integer sum isum = Σ code·x, then in float, for each (row, token) pair, in block order:
/// <c>acc = fma(d_w·d_x, (float)isum, acc)</c> and, for formats with a minimum, <c>acc = fma(m_w, s_x, acc)</c>.
/// That float sequence is the same on every path (scalar, portable, AVX2, AVX-512), for every tile shape and every
/// token count, so outputs are batch-invariant and the paths agree bit for bit; only the way the exact integer
/// sums are formed differs:
/// <list type="bullet">
/// <item>1–2 tokens (decode, memory-bound): 8 rows at a time straight from the weights; two rows' half blocks share
/// one 256-bit vpdpbusd (nibbles split with one AND and one GFNI affine), three horizontal adds reduce the 8 rows'
/// partial sums to one vector with a row per lane, and the 8 rows' f16 scales are converted in one vector, so the
/// float step is one vector FMA per 8 row-blocks. The −offset·Σx term enters as the seed of the integer sums. The
/// next 8-row group is prefetched while this one streams (worth ~30% when the weights come from DRAM).</item>
/// <item>3+ tokens (prefill, batched decode): groups of 8 rows are repacked into per-thread scratch (from the packed nibbles: a
/// dword transpose, then AND/GFNI), 4-byte groups of the 8 rows interleaved so that lane r is row r, with the
/// scales as floats; each vpdpbusd then takes a broadcast of 4 activation bytes. Tiles are 16 rows × 4 tokens on
/// AVX-512 CPUs (the JIT's 32 vector registers hold 8 int and 8 float accumulators) and 8 × 4 on AVX2; tiles of 3, 2
/// or 1 tokens take the remainder (LegacyQuantKernel.RestTiles.cs). Without VNNI, formats stored as u = q + 128 use
/// ggml's sign trick instead (see <see cref="SignDot"/>). The 16-row tiles loop over a block's 8 steps: fully
/// unrolled, their inlined temporaries passed the JIT's limit of tracked locals and every accumulator lived on the
/// stack (a store and a reload around each vpdpbusd: pp512 2.6× slower). The 8-row tiles stay unrolled (measured
/// equal or faster that way on the AVX2 path, where there are half as many locals).</item>
/// </list>
/// Row counts that are not a multiple of 8 (or 16) reuse the same code with the missing rows aliased to the last
/// real row (their lanes are computed and dropped).
/// </summary>
internal static unsafe partial class LegacyQuantKernel<TF> where TF : struct, ILegacyBlockFormat
{
    /// <summary>Token count from which the vector paths repack weights (below it, each token streams the weights).</summary>
    public const int GemmMinTokens = 3;
    /// <summary>Repacked bytes per block of 8 rows: 8 × 32 code bytes, 8 float scales, (Q4_1) 8 float minimums.</summary>
    private static int PackStride { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => TF.HasMin ? 320 : 288; }

    /// <summary>Two 8-row groups of repacked blocks (prefill), or the seeds of up to 2 tokens (decode); then a
    /// tile's negated activations (<see cref="Gemm16Wide{TN}"/>: 8·cols bytes).</summary>
    public static long ScratchFloats(int cols) => (long)(cols / 32) * Math.Max(PackStride / 2, 8 * (GemmMinTokens - 1)) + 2L * cols + 32;

    /// <summary>Where in the scratch the negated activations of <see cref="Gemm16Wide{TN}"/> go: after two 8-row groups
    /// of repacked blocks (64-byte aligned; <paramref name="pack"/> is).</summary>
    private static sbyte* NegatedScratch(byte* pack, int nb) => (sbyte*)(pack + ((2L * nb * PackStride + 63) & ~63L));

    public static void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch)
    {
        int nb = w.Cols / 32;
        int T = x.Tokens;
        if (level == IsaLevel.Scalar)
        {
            for (int row = r0; row < r1; row++)
                for (int t = 0; t < T; t++) y[(long)t * yStride + row] = DotScalar(w.Row(row), x, t, nb);
            return;
        }
        if (level == IsaLevel.Portable || !Avx2.IsSupported || !Fma.IsSupported)
        {
            for (int row = r0; row < r1; row++)
                for (int t = 0; t < T; t++) y[(long)t * yStride + row] = DotPortable(w.Row(row), x, t, nb);
            return;
        }
        bool nibbles = ReadsNibblePacked(w, r0);
        if (!nibbles && w.Packed != null && w.PackRows == PackRowsFor(level) && r0 % w.PackRows == 0)
        {
            // no repacking here: the whole scratch is free for the wide tiles' negated activations
            ComputePacked(w, x, y, yStride, r0, r1, (sbyte*)(((nint)scratch + 63) & ~(nint)63));
            return;
        }
        byte* pack = (byte*)(((nint)scratch + 63) & ~(nint)63);
        if (T < GemmMinTokens && nibbles)
        {
            int prefetch = NibblePrefetchBytes(level);
            for (int row = r0; row < r1; row += 8)
                for (int t = 0; t < T; t++) Gemv8Nibbles(NibbleGroup(w, row, nb), Math.Min(8, r1 - row), x, t, nb, y + (long)t * yStride + row, prefetch);
            return;
        }
        if (T < GemmMinTokens)
        {
            int* offsets = (int*)pack;
            if (SeedOffset != 0)
                for (int t = 0; t < T; t++) GemvOffsets(x, t, nb, offsets + (long)t * nb * 8);
            for (int row = r0; row < r1; row += 8)
                for (int t = 0; t < T; t++) Gemv8(w, row, Math.Min(8, r1 - row), x, t, nb, y + (long)t * yStride + row, offsets + (long)t * nb * 8);
            return;
        }
        int r = r0;
        // AVX-512 CPUs give the JIT 32 vector registers: 16-row tiles (8 int + 8 float accumulators) fit without spills
        if (level >= IsaLevel.Avx512)
        {
            for (; r + 8 < r1; r += 16)
            {
                int n = Math.Min(16, r1 - r);
                Repack(w, r, n, nb, pack, 2);
                Group16(pack, NegatedScratch(pack, nb), x, T, nb, y + r, yStride, n);
            }
        }
        for (; r < r1; r += 8)
        {
            int n = Math.Min(8, r1 - r);
            Repack(w, r, n, nb, pack, 1);
            int t = 0;
            for (; t + 4 <= T; t += 4) Gemm8x4(pack, x, t, nb, y + (long)t * yStride + r, yStride, n);
            Rest8(pack, x, t, T - t, nb, y + (long)t * yStride + r, yStride, n);
        }
    }

    // ---------------------------------------------------------------- packed at load

    /// <summary>Rows per group of the layout the tiles of <paramref name="level"/> read (16 on AVX-512, 8 on AVX2); 0
    /// where the level has no tiles.</summary>
    public static int PackRowsFor(IsaLevel level) =>
        !Avx2.IsSupported || !Fma.IsSupported ? 0 : level >= IsaLevel.Avx512 ? 16 : level == IsaLevel.Avx2 ? 8 : 0;

    /// <summary>Bytes of a whole matrix in the packed layout with groups of <paramref name="packRows"/> rows.</summary>
    public static long PackedBytes(int rows, int cols, int packRows) =>
        (long)((rows + packRows - 1) / packRows) * (cols / 32) * PackStride * (packRows / 8);

    /// <summary>Writes row groups [<paramref name="g0"/>, <paramref name="g1"/>) of <paramref name="w"/> into
    /// <paramref name="dst"/>, the start of the matrix's packed copy: group g at g × (bytes per group), each exactly
    /// what the per-call <see cref="Repack"/> makes (the last group's missing rows alias its last real row).</summary>
    public static void Pack(WeightMatrix w, int packRows, int g0, int g1, byte* dst)
    {
        int nb = w.Cols / 32;
        long groupBytes = (long)nb * PackStride * (packRows / 8);
        for (int g = g0; g < g1; g++)
        {
            int r = g * packRows;
            Repack(w, r, Math.Min(packRows, w.Rows - r), nb, dst + g * groupBytes, packRows / 8);
        }
    }

    /// <summary>Row <paramref name="r"/> of a Q8_0 matrix packed by <see cref="Pack"/>, back in block_q8_0 form (embedding
    /// lookups of a tied output matrix read the copy instead of faulting the released mapped pages back in): the
    /// stored codes (u = q + 128, or q itself under <see cref="SignDot"/>) and the float scales, which were f16.</summary>
    public static void CopyRowFromPacked(WeightMatrix w, int r, byte* dst)
    {
        int nb = w.Cols / 32, rows = w.PackRows, groups = rows / 8, step = 32 * groups, lane = r % 8;
        long groupBytes = (long)nb * PackStride * groups;
        byte* grp = w.Packed + (long)(r / rows) * groupBytes + 32 * ((r % rows) / 8) + 4 * lane;
        byte flip = SignDot ? (byte)0 : (byte)0x80;
        for (int b = 0; b < nb; b++)
        {
            byte* src = grp + (long)b * PackStride * groups;
            byte* blk = dst + (long)b * TF.BlockBytes;
            *(ushort*)blk = BitConverter.HalfToUInt16Bits((Half)(*(float*)(src + 8 * step)));
            for (int k = 0; k < 8; k++)
                for (int e = 0; e < 4; e++) blk[TF.QsOffset + 4 * k + e] = (byte)(src[k * step + e] ^ flip);
        }
    }

    /// <summary>The tiles over a matrix packed at load, for every token count: no per-call repack. The first tile of a
    /// group streams it from memory; the group's other tiles find it in L1/L2. A task's groups are one contiguous
    /// stream, which the hardware prefetchers follow on their own (software prefetch ahead measured slower).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ComputePacked(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, sbyte* negated)
    {
        int nb = w.Cols / 32, T = x.Tokens, rows = w.PackRows;
        long groupBytes = (long)nb * PackStride * (rows / 8);
        for (int r = r0; r < r1; r += rows)
        {
            byte* pack = w.Packed + (long)(r / rows) * groupBytes;
            int n = Math.Min(rows, r1 - r);
            float* yr = y + r;
            if (rows == 16) Group16(pack, negated, x, T, nb, yr, yStride, n);
            else
            {
                int t = 0;
                for (; t + 4 <= T; t += 4) Gemm8x4(pack, x, t, nb, yr + (long)t * yStride, yStride, n);
                Rest8(pack, x, t, T - t, nb, yr + (long)t * yStride, yStride, n);
            }
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
            acc = MathF.FusedMultiplyAdd(TF.Scale(blk) * xd[b], isum, acc);
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
            acc = MathF.FusedMultiplyAdd(TF.Scale(blk) * xd[b], isum, acc);
            if (TF.HasMin) acc = MathF.FusedMultiplyAdd(Fp16.ToFloat(*(ushort*)(blk + 2)), xs[b], acc);
        }
        return acc;
    }

    // ---------------------------------------------------------------- AVX2 (+ AVX-VNNI)

    /// <summary>
    /// Without VNNI, codes u = q + 128 (Q8_0, IQ4_NL) would need two vpmaddubsw per product (u up to 255 overflows
    /// the int16 pair sums). ggml's sign trick instead multiplies |q| (at most 128, unsigned) by sign(x, q):
    /// |q|·sign(x, q) = q·x, pair sums at most 2·128·127 &lt; 32768, so one vpmaddubsw is exact and no −128·Σx
    /// seed is needed. The tiles' packed copies then hold the signed codes q, so |q| is taken once per weight
    /// vector and shared by the tile's tokens: a 4-token tile costs about half the instructions it did.
    /// </summary>
    private static bool SignDot { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => TF.Offset == 128 && !AvxVnni.IsSupported; }

    /// <summary>The offset the integer sums are seeded with (−offset·Σx): none where <see cref="SignDot"/> forms q·x directly.</summary>
    private static int SeedOffset { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => SignDot ? 0 : TF.Offset; }

    /// <summary>A code vector as the tiles store it: u, or under <see cref="SignDot"/> the signed q = u ^ 0x80.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Stored(Vector256<byte> u) => SignDot ? u ^ Vector256.Create((byte)0x80) : u;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> StoredMapped(Vector256<byte> nibbles) => Stored(TF.MapNibbles(nibbles));

    /// <summary>The operand of <see cref="DotPacked"/> computed once per stored weight vector: |q| under
    /// <see cref="SignDot"/>, else the vector itself (no instruction).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Magnitude(Vector256<byte> w) => SignDot ? Avx2.Abs(w.AsSByte()) : w;

    /// <summary><see cref="Dot"/> on a stored weight vector <paramref name="w"/> with its <see cref="Magnitude"/>.
    /// (Every helper on this path is one expression: an inlined method with several returns leaves a return temp
    /// the JIT keeps on the stack, which put a store and a reload around every vpdpbusd of the tiles, 3× slower.)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> DotPacked(Vector256<int> acc, Vector256<byte> w, Vector256<byte> magnitude, Vector256<sbyte> xv) =>
        SignDot ? SignedDot(acc, w, magnitude, xv) : Dot(acc, w, xv);

    /// <summary>ggml's sign trick: |q| · sign(x, q) = q·x, pair sums exact in int16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SignedDot(Vector256<int> acc, Vector256<byte> q, Vector256<byte> magnitude, Vector256<sbyte> xv) =>
        Avx2.Add(acc, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(magnitude, Avx2.Sign(xv, q.AsSByte())), Vector256.Create((short)1)));

    /// <summary>acc + Σ over each 4 bytes of u·x (u unsigned, x signed int8 in [-127, 127]), exact in int32; under
    /// <see cref="SignDot"/> the sum of q·x (q = u − 128) without the seed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> xv) =>
        SignDot ? SignedDot(acc, Stored(u), Magnitude(Stored(u)), xv)
        : AvxVnni.IsSupported ? AvxVnni.MultiplyWideningAndAdd(acc, u, xv)
        // vpmaddubsw saturates pair sums to int16: exact for codes up to 128 (2·128·127 < 32768)
        : !TF.WideCodes ? Avx2.Add(acc, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, xv), Vector256.Create((short)1)))
        : WideDot(acc, u, xv);

    /// <summary>Wider codes (IQ4_NL's u up to 241) without VNNI: u = (u &amp; 127) + (u &amp; 128), each part exact.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> WideDot(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> xv)
    {
        var ones = Vector256.Create((short)1);
        var lo = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u & Vector256.Create((byte)127), xv), ones);
        var hi = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u & Vector256.Create((byte)128), xv), ones);
        return Avx2.Add(acc, Avx2.Add(lo, hi));
    }

    /// <summary>Exact f16 → f32 of the low 16 bits of each lane (upper bits are ignored), for every half value:
    /// normals and subnormals by moving the bits into place and scaling by 2^112 (exact), Inf/NaN by forcing the
    /// exponent. Bit-identical to <see cref="Fp16.ToFloat"/> (with the default MXCSR: no denormals-are-zero).</summary>
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

    /// <summary>Blocks per software prefetch of each row in <see cref="Gemv8"/>: one per 64-byte line (3 for 18-byte Q4_0
    /// blocks, 1 for 34-byte Q8_0 blocks).</summary>
    private static int PrefetchEvery { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Math.Max(1, 64 / TF.BlockBytes); }

    /// <summary>8 rows (n real) × 1 token, straight from the weights.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
            if (b % PrefetchEvery == 0)
            {
                // at most 64 bytes of each row between prefetches: every cache line of the next group gets touched
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
            var init = SeedOffset != 0 ? Vector256.Load(offsets + b * 8) : Vector256<int>.Zero;
            var a0 = Dot(Dot(init, l0, xlo), h0, xhi);
            var a1 = Dot(Dot(init, l1, xlo), h1, xhi);
            var a2 = Dot(Dot(init, l2, xlo), h2, xhi);
            var a3 = Dot(Dot(init, l3, xlo), h3, xhi);
            // a_i = [row i partial sums ×4 | row i+4 partial sums ×4] → [rows 0..3 | rows 4..7]
            var isum = Avx2.HorizontalAdd(Avx2.HorizontalAdd(a0, a1), Avx2.HorizontalAdd(a2, a3));
            var heads = Vector256.Create(*(int*)(p0 + o), *(int*)(p1 + o), *(int*)(p2 + o), *(int*)(p3 + o),
                *(int*)(p4 + o), *(int*)(p5 + o), *(int*)(p6 + o), *(int*)(p7 + o));
            acc = Fma.MultiplyAdd(Avx.Multiply(TF.Scales(heads), Vector256.Create(xd[b])), Avx.ConvertToVector256Single(isum), acc);
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

    /// <summary>Repacks <paramref name="groups"/> × 8 rows from <paramref name="r"/> (n real; the others alias the last real
    /// row) for the prefill tiles. Per block: for k = 0..7 and each group g, 32 bytes whose dword i is row 8g+i's u of
    /// elements 4k..4k+3; then each group's 8 scales as floats; then (Q4_1) each group's 8 minimums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Repack(WeightMatrix w, int r, int n, int nb, byte* pack, int groups)
    {
        if (ReadsNibblePacked(w, r)) { RepackNibbles(w, r, nb, pack, groups); return; }
        // block by block, all groups (each block's bytes are written once, whole cache lines)
        var g0 = new Rows8(w, r, r + n - 1);
        var g1 = new Rows8(w, r + 8, r + n - 1);
        int stride = PackStride * groups;
        for (int b = 0; b < nb; b++)
        {
            long o = (long)b * TF.BlockBytes;
            byte* dst = pack + (long)b * stride;
            RepackBlock(g0, o, dst, 32 * groups);
            if (groups == 2) RepackBlock(g1, o, dst + 32, 64);
        }
    }

    /// <summary>Pointers to 8 consecutive rows, those past <c>last</c> aliased to it.</summary>
    private readonly struct Rows8
    {
        public readonly byte* P0, P1, P2, P3, P4, P5, P6, P7;

        public Rows8(WeightMatrix w, int r, int last)
        {
            P0 = w.Row(Math.Min(r, last)); P1 = w.Row(Math.Min(r + 1, last)); P2 = w.Row(Math.Min(r + 2, last)); P3 = w.Row(Math.Min(r + 3, last));
            P4 = w.Row(Math.Min(r + 4, last)); P5 = w.Row(Math.Min(r + 5, last)); P6 = w.Row(Math.Min(r + 6, last)); P7 = w.Row(Math.Min(r + 7, last));
        }
    }

    /// <summary>One block of 8 rows into the pack layout at <paramref name="dst"/> (vectors <paramref name="step"/> bytes apart).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RepackBlock(in Rows8 rows, long o, byte* dst, int step)
    {
        byte* p0 = rows.P0, p1 = rows.P1, p2 = rows.P2, p3 = rows.P3, p4 = rows.P4, p5 = rows.P5, p6 = rows.P6, p7 = rows.P7;
        if (TF.PlainNibbles)
        {
            // transpose the packed bytes (dword j of row i's nibbles holds elements 4j..4j+3 low, 16+4j.. high), then unpack
            long oq = o + TF.QsOffset;
            var q0 = Vector256.Create(Vector128.Load(p0 + oq), Vector128.Load(p4 + oq)).AsInt32();
            var q1 = Vector256.Create(Vector128.Load(p1 + oq), Vector128.Load(p5 + oq)).AsInt32();
            var q2 = Vector256.Create(Vector128.Load(p2 + oq), Vector128.Load(p6 + oq)).AsInt32();
            var q3 = Vector256.Create(Vector128.Load(p3 + oq), Vector128.Load(p7 + oq)).AsInt32();
            var e0 = Avx2.UnpackLow(q0, q1).AsInt64(); var e1 = Avx2.UnpackHigh(q0, q1).AsInt64();
            var e2 = Avx2.UnpackLow(q2, q3).AsInt64(); var e3 = Avx2.UnpackHigh(q2, q3).AsInt64();
            var m = Vector256.Create((byte)0x0F);
            var c0 = Avx2.UnpackLow(e0, e2).AsByte(); var c1 = Avx2.UnpackHigh(e0, e2).AsByte();
            var c2 = Avx2.UnpackLow(e1, e3).AsByte(); var c3 = Avx2.UnpackHigh(e1, e3).AsByte();
            Vector256.Store(StoredMapped(c0 & m), dst);
            Vector256.Store(StoredMapped(c1 & m), dst + step);
            Vector256.Store(StoredMapped(c2 & m), dst + 2 * step);
            Vector256.Store(StoredMapped(c3 & m), dst + 3 * step);
            Vector256.Store(StoredMapped(HighNibbles(c0)), dst + 4 * step);
            Vector256.Store(StoredMapped(HighNibbles(c1)), dst + 5 * step);
            Vector256.Store(StoredMapped(HighNibbles(c2)), dst + 6 * step);
            Vector256.Store(StoredMapped(HighNibbles(c3)), dst + 7 * step);
        }
        else
        {
            var u0 = Stored(TF.Unpack(p0 + o)).AsInt32(); var u1 = Stored(TF.Unpack(p1 + o)).AsInt32();
            var u2 = Stored(TF.Unpack(p2 + o)).AsInt32(); var u3 = Stored(TF.Unpack(p3 + o)).AsInt32();
            var u4 = Stored(TF.Unpack(p4 + o)).AsInt32(); var u5 = Stored(TF.Unpack(p5 + o)).AsInt32();
            var u6 = Stored(TF.Unpack(p6 + o)).AsInt32(); var u7 = Stored(TF.Unpack(p7 + o)).AsInt32();
            DwordTranspose.Store8(u0, u1, u2, u3, u4, u5, u6, u7, dst, step);
        }
        var heads = Vector256.Create(*(int*)(p0 + o), *(int*)(p1 + o), *(int*)(p2 + o), *(int*)(p3 + o),
            *(int*)(p4 + o), *(int*)(p5 + o), *(int*)(p6 + o), *(int*)(p7 + o));
        Vector256.Store(TF.Scales(heads), (float*)(dst + 8 * step));
        if (TF.HasMin) Vector256.Store(HalfToFloat(Avx2.ShiftRightLogical(heads, 16)), (float*)(dst + 9 * step));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Bcast4(sbyte* p) => Vector256.Create(*(int*)p).AsSByte();

    /// <summary>8 repacked rows × 4 tokens: per block, 8 steps of 1 weight vector × 4 broadcast activation dwords.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Gemm8x4(byte* pack, in ActivationView x, int t, int nb, float* y, int yStride, int n)
    {
        long cols = x.Cols;
        sbyte* xp = x.Q + t * cols;
        float* dp = x.D + (long)t * nb;
        float* sp = x.S + (long)t * nb;
        int* cp = x.Sums + (long)t * nb;
        int stride = PackStride * 1;
        Vector256<float> f00 = default, f01 = default, f02 = default, f03 = default;
        for (int b = 0; b < nb; b++, xp += 32)
        {
            byte* pb = pack + (long)b * stride;
            var i00 = Seed(cp, b);
            var i01 = Seed(cp, b + 1 * nb);
            var i02 = Seed(cp, b + 2 * nb);
            var i03 = Seed(cp, b + 3 * nb);
            var w00 = Vector256.Load(pb + 0);
            var m00 = Magnitude(w00);
            var x00 = Bcast4(xp + 0);
            i00 = DotPacked(i00, w00, m00, x00);
            var x10 = Bcast4(xp + 1 * cols + 0);
            i01 = DotPacked(i01, w00, m00, x10);
            var x20 = Bcast4(xp + 2 * cols + 0);
            i02 = DotPacked(i02, w00, m00, x20);
            var x30 = Bcast4(xp + 3 * cols + 0);
            i03 = DotPacked(i03, w00, m00, x30);
            var w01 = Vector256.Load(pb + 32);
            var m01 = Magnitude(w01);
            var x01 = Bcast4(xp + 4);
            i00 = DotPacked(i00, w01, m01, x01);
            var x11 = Bcast4(xp + 1 * cols + 4);
            i01 = DotPacked(i01, w01, m01, x11);
            var x21 = Bcast4(xp + 2 * cols + 4);
            i02 = DotPacked(i02, w01, m01, x21);
            var x31 = Bcast4(xp + 3 * cols + 4);
            i03 = DotPacked(i03, w01, m01, x31);
            var w02 = Vector256.Load(pb + 64);
            var m02 = Magnitude(w02);
            var x02 = Bcast4(xp + 8);
            i00 = DotPacked(i00, w02, m02, x02);
            var x12 = Bcast4(xp + 1 * cols + 8);
            i01 = DotPacked(i01, w02, m02, x12);
            var x22 = Bcast4(xp + 2 * cols + 8);
            i02 = DotPacked(i02, w02, m02, x22);
            var x32 = Bcast4(xp + 3 * cols + 8);
            i03 = DotPacked(i03, w02, m02, x32);
            var w03 = Vector256.Load(pb + 96);
            var m03 = Magnitude(w03);
            var x03 = Bcast4(xp + 12);
            i00 = DotPacked(i00, w03, m03, x03);
            var x13 = Bcast4(xp + 1 * cols + 12);
            i01 = DotPacked(i01, w03, m03, x13);
            var x23 = Bcast4(xp + 2 * cols + 12);
            i02 = DotPacked(i02, w03, m03, x23);
            var x33 = Bcast4(xp + 3 * cols + 12);
            i03 = DotPacked(i03, w03, m03, x33);
            var w04 = Vector256.Load(pb + 128);
            var m04 = Magnitude(w04);
            var x04 = Bcast4(xp + 16);
            i00 = DotPacked(i00, w04, m04, x04);
            var x14 = Bcast4(xp + 1 * cols + 16);
            i01 = DotPacked(i01, w04, m04, x14);
            var x24 = Bcast4(xp + 2 * cols + 16);
            i02 = DotPacked(i02, w04, m04, x24);
            var x34 = Bcast4(xp + 3 * cols + 16);
            i03 = DotPacked(i03, w04, m04, x34);
            var w05 = Vector256.Load(pb + 160);
            var m05 = Magnitude(w05);
            var x05 = Bcast4(xp + 20);
            i00 = DotPacked(i00, w05, m05, x05);
            var x15 = Bcast4(xp + 1 * cols + 20);
            i01 = DotPacked(i01, w05, m05, x15);
            var x25 = Bcast4(xp + 2 * cols + 20);
            i02 = DotPacked(i02, w05, m05, x25);
            var x35 = Bcast4(xp + 3 * cols + 20);
            i03 = DotPacked(i03, w05, m05, x35);
            var w06 = Vector256.Load(pb + 192);
            var m06 = Magnitude(w06);
            var x06 = Bcast4(xp + 24);
            i00 = DotPacked(i00, w06, m06, x06);
            var x16 = Bcast4(xp + 1 * cols + 24);
            i01 = DotPacked(i01, w06, m06, x16);
            var x26 = Bcast4(xp + 2 * cols + 24);
            i02 = DotPacked(i02, w06, m06, x26);
            var x36 = Bcast4(xp + 3 * cols + 24);
            i03 = DotPacked(i03, w06, m06, x36);
            var w07 = Vector256.Load(pb + 224);
            var m07 = Magnitude(w07);
            var x07 = Bcast4(xp + 28);
            i00 = DotPacked(i00, w07, m07, x07);
            var x17 = Bcast4(xp + 1 * cols + 28);
            i01 = DotPacked(i01, w07, m07, x17);
            var x27 = Bcast4(xp + 2 * cols + 28);
            i02 = DotPacked(i02, w07, m07, x27);
            var x37 = Bcast4(xp + 3 * cols + 28);
            i03 = DotPacked(i03, w07, m07, x37);
            var dw0 = Vector256.Load((float*)(pb + 256));
            var dx0 = Vector256.Create(dp[b]);
            f00 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx0), Avx.ConvertToVector256Single(i00), f00);
            var dx1 = Vector256.Create(dp[b + 1 * nb]);
            f01 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx1), Avx.ConvertToVector256Single(i01), f01);
            var dx2 = Vector256.Create(dp[b + 2 * nb]);
            f02 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx2), Avx.ConvertToVector256Single(i02), f02);
            var dx3 = Vector256.Create(dp[b + 3 * nb]);
            f03 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx3), Avx.ConvertToVector256Single(i03), f03);
            if (TF.HasMin)
            {
                var m0 = Vector256.Load((float*)(pb + 288));
                var sx0 = Vector256.Create(sp[b]);
                f00 = Fma.MultiplyAdd(m0, sx0, f00);
                var sx1 = Vector256.Create(sp[b + 1 * nb]);
                f01 = Fma.MultiplyAdd(m0, sx1, f01);
                var sx2 = Vector256.Create(sp[b + 2 * nb]);
                f02 = Fma.MultiplyAdd(m0, sx2, f02);
                var sx3 = Vector256.Create(sp[b + 3 * nb]);
                f03 = Fma.MultiplyAdd(m0, sx3, f03);
            }
        }
        Store8(f00, y, n);
        Store8(f01, y + 1L * yStride, n);
        Store8(f02, y + 2L * yStride, n);
        Store8(f03, y + 3L * yStride, n);
    }



    /// <summary>8 repacked rows × 1 token: per block, 8 steps of 1 weight vector × 1 broadcast activation dword.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Gemm8x1(byte* pack, in ActivationView x, int t, int nb, float* y, int yStride, int n)
    {
        long cols = x.Cols;
        sbyte* xp = x.Q + t * cols;
        float* dp = x.D + (long)t * nb;
        float* sp = x.S + (long)t * nb;
        int* cp = x.Sums + (long)t * nb;
        int stride = PackStride * 1;
        Vector256<float> f00 = default;
        for (int b = 0; b < nb; b++, xp += 32)
        {
            byte* pb = pack + (long)b * stride;
            var i00 = Seed(cp, b);
            var w00 = Vector256.Load(pb + 0);
            var m00 = Magnitude(w00);
            var x00 = Bcast4(xp + 0);
            i00 = DotPacked(i00, w00, m00, x00);
            var w01 = Vector256.Load(pb + 32);
            var m01 = Magnitude(w01);
            var x01 = Bcast4(xp + 4);
            i00 = DotPacked(i00, w01, m01, x01);
            var w02 = Vector256.Load(pb + 64);
            var m02 = Magnitude(w02);
            var x02 = Bcast4(xp + 8);
            i00 = DotPacked(i00, w02, m02, x02);
            var w03 = Vector256.Load(pb + 96);
            var m03 = Magnitude(w03);
            var x03 = Bcast4(xp + 12);
            i00 = DotPacked(i00, w03, m03, x03);
            var w04 = Vector256.Load(pb + 128);
            var m04 = Magnitude(w04);
            var x04 = Bcast4(xp + 16);
            i00 = DotPacked(i00, w04, m04, x04);
            var w05 = Vector256.Load(pb + 160);
            var m05 = Magnitude(w05);
            var x05 = Bcast4(xp + 20);
            i00 = DotPacked(i00, w05, m05, x05);
            var w06 = Vector256.Load(pb + 192);
            var m06 = Magnitude(w06);
            var x06 = Bcast4(xp + 24);
            i00 = DotPacked(i00, w06, m06, x06);
            var w07 = Vector256.Load(pb + 224);
            var m07 = Magnitude(w07);
            var x07 = Bcast4(xp + 28);
            i00 = DotPacked(i00, w07, m07, x07);
            var dw0 = Vector256.Load((float*)(pb + 256));
            var dx0 = Vector256.Create(dp[b]);
            f00 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx0), Avx.ConvertToVector256Single(i00), f00);
            if (TF.HasMin)
            {
                var m0 = Vector256.Load((float*)(pb + 288));
                var sx0 = Vector256.Create(sp[b]);
                f00 = Fma.MultiplyAdd(m0, sx0, f00);
            }
        }
        Store8(f00, y, n);
    }

    /// <summary>16 repacked rows × <typeparamref name="TN"/> (1–4) tokens: per block, 8 steps of 2 weight vectors × TN
    /// broadcast activation dwords. One body for every token count: TN is a struct, so the JIT compiles each count
    /// separately with the other tokens' lines removed, and every (row, token) pair goes through the same operations in
    /// the same order whatever the count (outputs do not depend on how tokens were split into tiles).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Gemm16<TN>(byte* pack, in ActivationView x, int t, int nb, float* y, int yStride, int n) where TN : struct, ITokenCount
    {
        long cols = x.Cols;
        sbyte* xp = x.Q + t * cols;
        float* dp = x.D + (long)t * nb;
        float* sp = x.S + (long)t * nb;
        int* cp = x.Sums + (long)t * nb;
        int stride = PackStride * 2;
        Vector256<float> f00 = default, f01 = default, f02 = default, f03 = default;
        Vector256<float> f10 = default, f11 = default, f12 = default, f13 = default;
        for (int b = 0; b < nb; b++, xp += 32)
        {
            byte* pb = pack + (long)b * stride;
            var i00 = Seed(cp, b);
            var i10 = i00;
            var i01 = TN.Count > 1 ? Seed(cp, b + 1 * nb) : default;
            var i11 = i01;
            var i02 = TN.Count > 2 ? Seed(cp, b + 2 * nb) : default;
            var i12 = i02;
            var i03 = TN.Count > 3 ? Seed(cp, b + 3 * nb) : default;
            var i13 = i03;
            for (int k = 0; k < 8; k++)
            {
                byte* pk = pb + 64 * k;
                var w0 = Vector256.Load(pk);
                var m0 = Magnitude(w0);
                var w1 = Vector256.Load(pk + 32);
                var m1 = Magnitude(w1);
                sbyte* xk = xp + 4 * k;
                var x0 = Bcast4(xk);
                i00 = DotPacked(i00, w0, m0, x0);
                i10 = DotPacked(i10, w1, m1, x0);
                if (TN.Count > 1)
                {
                    var x1 = Bcast4(xk + cols);
                    i01 = DotPacked(i01, w0, m0, x1);
                    i11 = DotPacked(i11, w1, m1, x1);
                }
                if (TN.Count > 2)
                {
                    var x2 = Bcast4(xk + 2 * cols);
                    i02 = DotPacked(i02, w0, m0, x2);
                    i12 = DotPacked(i12, w1, m1, x2);
                }
                if (TN.Count > 3)
                {
                    var x3 = Bcast4(xk + 3 * cols);
                    i03 = DotPacked(i03, w0, m0, x3);
                    i13 = DotPacked(i13, w1, m1, x3);
                }
            }
            var dw0 = Vector256.Load((float*)(pb + 512));
            var dw1 = Vector256.Load((float*)(pb + 544));
            var dx0 = Vector256.Create(dp[b]);
            f00 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx0), Avx.ConvertToVector256Single(i00), f00);
            f10 = Fma.MultiplyAdd(Avx.Multiply(dw1, dx0), Avx.ConvertToVector256Single(i10), f10);
            if (TN.Count > 1)
            {
                var dx1 = Vector256.Create(dp[b + 1 * nb]);
                f01 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx1), Avx.ConvertToVector256Single(i01), f01);
                f11 = Fma.MultiplyAdd(Avx.Multiply(dw1, dx1), Avx.ConvertToVector256Single(i11), f11);
            }
            if (TN.Count > 2)
            {
                var dx2 = Vector256.Create(dp[b + 2 * nb]);
                f02 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx2), Avx.ConvertToVector256Single(i02), f02);
                f12 = Fma.MultiplyAdd(Avx.Multiply(dw1, dx2), Avx.ConvertToVector256Single(i12), f12);
            }
            if (TN.Count > 3)
            {
                var dx3 = Vector256.Create(dp[b + 3 * nb]);
                f03 = Fma.MultiplyAdd(Avx.Multiply(dw0, dx3), Avx.ConvertToVector256Single(i03), f03);
                f13 = Fma.MultiplyAdd(Avx.Multiply(dw1, dx3), Avx.ConvertToVector256Single(i13), f13);
            }
            if (TF.HasMin)
            {
                var m0 = Vector256.Load((float*)(pb + 576));
                var m1 = Vector256.Load((float*)(pb + 608));
                var sx0 = Vector256.Create(sp[b]);
                f00 = Fma.MultiplyAdd(m0, sx0, f00);
                f10 = Fma.MultiplyAdd(m1, sx0, f10);
                if (TN.Count > 1)
                {
                    var sx1 = Vector256.Create(sp[b + 1 * nb]);
                    f01 = Fma.MultiplyAdd(m0, sx1, f01);
                    f11 = Fma.MultiplyAdd(m1, sx1, f11);
                }
                if (TN.Count > 2)
                {
                    var sx2 = Vector256.Create(sp[b + 2 * nb]);
                    f02 = Fma.MultiplyAdd(m0, sx2, f02);
                    f12 = Fma.MultiplyAdd(m1, sx2, f12);
                }
                if (TN.Count > 3)
                {
                    var sx3 = Vector256.Create(sp[b + 3 * nb]);
                    f03 = Fma.MultiplyAdd(m0, sx3, f03);
                    f13 = Fma.MultiplyAdd(m1, sx3, f13);
                }
            }
        }
        Store8(f00, y + 0, Math.Min(8, n - 0));
        Store8(f10, y + 8, Math.Min(8, n - 8));
        if (TN.Count > 1)
        {
            Store8(f01, y + 1L * yStride + 0, Math.Min(8, n - 0));
            Store8(f11, y + 1L * yStride + 8, Math.Min(8, n - 8));
        }
        if (TN.Count > 2)
        {
            Store8(f02, y + 2L * yStride + 0, Math.Min(8, n - 0));
            Store8(f12, y + 2L * yStride + 8, Math.Min(8, n - 8));
        }
        if (TN.Count > 3)
        {
            Store8(f03, y + 3L * yStride + 0, Math.Min(8, n - 0));
            Store8(f13, y + 3L * yStride + 8, Math.Min(8, n - 8));
        }
    }

    /// <summary>The integer sums' seed for one token's block: −offset·Σx (zero where there is no offset).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Seed(int* sums, long i) => SeedOffset != 0 ? Vector256.Create(-SeedOffset * sums[i]) : Vector256<int>.Zero;

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
