using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;
using static SharpInfer.Tensors.Kernels.KQuantGroups;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// Q6_K packed at load for the vector levels, the same idea as <see cref="Q4_KInterleaved"/>: groups of 8 rows, and
/// per 256-column super-block (<see cref="GroupBlockBytes"/> = 8 × 210 bytes, exactly the rows' size) the rows'
/// block_q6_K bytes transposed by dwords:
/// <code>
///   0..1023     ql: chunk c (c = 0..3) vector v (v = 0..7) at 256c + 32v, dword r = row r's ql[32c + 4v .. +3]
///   1024..1535  qh: half h vector v at 1024 + 256h + 32v, dword r = row r's qh[32h + 4v .. +3]
///   1536..1663  signed scales: sc[r][j] at 1536 + 32·(j / 4) + 4r + j % 4
///   1664..1679  d of rows 0..7 (halves)
/// </code>
/// One (ql, ql, qh) triple of vectors gives the 6-bit codes of 4 elements of 4 sub-blocks for the 8 rows, each
/// multiplied (vpmaddubsw) by a broadcast of 4 activation bytes; two such products add up exactly in int16
/// (2 · 2 · 63 · 128 = 32,256 &lt; 32,768) before one vpmaddwd by the rows' scales. The −32 offset is the exact
/// −32·Σ sc_j·bsums_j of <see cref="Q6_KFormat"/>. Prefill unpacks a panel of groups back into block_q6_K rows per
/// call (transposes only). Same integers and float steps as <see cref="KQuant{TF}"/>: the mapped rows' bits.
/// </summary>
internal unsafe struct Q6_KInterleaved : IKQuantGroupLayout
{
    public const int GroupRows = KQuantGroups.GroupRows;
    public static int GroupBlockBytes => 8 * BlockQ6_K.Size;
    public static int RowBlockBytes => BlockQ6_K.Size;
    private const int OffsetQh = 1024, OffsetScales = 1536, OffsetD = 1664;

    /// <summary>Writes row groups [<paramref name="g0"/>, <paramref name="g1"/>) of <paramref name="w"/> into its copy
    /// (the last group's missing rows alias its last real row).</summary>
    public static void Pack(WeightMatrix w, int g0, int g1, byte* dst)
    {
        int nb = w.Cols / 256;
        for (int g = g0; g < g1; g++)
            for (int b = 0; b < nb; b++)
            {
                byte* o = dst + ((long)g * nb + b) * GroupBlockBytes;
                for (int i = 0; i < 8; i++)
                {
                    byte* blk = w.Row(Math.Min(g * 8 + i, w.Rows - 1)) + (long)b * BlockQ6_K.Size;
                    ToLane(blk, BlockQ6_K.OffsetD / 4, o, i);   // ql, qh and the scales: their dword d at 32d + 4i
                    *(ushort*)(o + OffsetD + 2 * i) = *(ushort*)(blk + BlockQ6_K.OffsetD);
                }
            }
    }

    /// <summary>Row <paramref name="r"/> back as block_q6_K (embedding lookups of a tied matrix).</summary>
    public static void CopyRow(WeightMatrix w, int r, byte* dst)
    {
        int nb = w.Cols / 256, i = r % 8;
        for (int b = 0; b < nb; b++)
        {
            byte* o = Group<Q6_KInterleaved>(w, r, nb) + (long)b * GroupBlockBytes;
            byte* blk = dst + (long)b * BlockQ6_K.Size;
            FromLane(o, i, BlockQ6_K.OffsetD / 4, blk);
            *(ushort*)(blk + BlockQ6_K.OffsetD) = *(ushort*)(o + OffsetD + 2 * i);
        }
    }

    public static void ComputeRows(KRows rows, int cols, string name, in ActivationView x, float* y, int yStride, int r1, IsaLevel level) =>
        KQuant<Q6_KFormat>.Compute(rows, cols, name, x, y, yStride, 0, r1, level);

    /// <summary>int16 lanes (2i, 2i + 1) ← sc[row of dword i][j], sign-extended (byte placed high, shifted down).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> SignedScaleWords(Vector256<byte> s, int j)
    {
        uint c = 0x00800080u | (uint)(j & 3) * 0x01000100u;
        var idx = Vector256.Create(c, c + 0x04000400u, c + 0x08000800u, c + 0x0C000C00u, c, c + 0x04000400u, c + 0x08000800u, c + 0x0C000C00u);
        return Avx2.ShiftRightArithmetic(Avx2.Shuffle(s, idx.AsByte()).AsInt16(), 8);
    }

    /// <summary>int16 lanes (2i, 2i + 1) ← 256·sc[row i][j], 256·sc[row i][j + 1] (j even): the bsums term's pairs,
    /// scaled by 256 instead of shifted (the sum is shifted once at the end; |256·Σ sc·bsums| &lt; 2^30).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> ScalePairs256(Vector256<byte> s, int j)
    {
        uint c = 0x00800080u | (uint)(j & 3) * 0x01000100u + 0x01000000u;
        var idx = Vector256.Create(c, c + 0x04000400u, c + 0x08000800u, c + 0x0C000C00u, c, c + 0x04000400u, c + 0x08000800u, c + 0x0C000C00u);
        return Avx2.Shuffle(s, idx.AsByte()).AsInt16();
    }

    /// <summary>Elements 4v..4v+3 of each 32-element quarter of half h: the four code vectors (k = 0..3) times their
    /// activation bytes, added to the int16 sums s0..s3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(byte* p, sbyte* xh, int h, int v,
                             ref Vector256<short> s0, ref Vector256<short> s1, ref Vector256<short> s2, ref Vector256<short> s3)
    {
        var m4 = Vector256.Create((byte)0x0F);
        var m2 = Vector256.Create((byte)0x30);
        var qa = Vector256.Load(p + 512 * h + 32 * v);          // ql chunk 2h: k = 0 (low nibbles), 2 (high)
        var qb = Vector256.Load(p + 512 * h + 256 + 32 * v);    // ql chunk 2h + 1: k = 1, 3
        var hb = Vector256.Load(p + OffsetQh + 256 * h + 32 * v).AsUInt16();
        // qh bits 2k, 2k + 1 to bits 4, 5 (16-bit shifts: bits crossing into the neighbouring byte are masked off)
        var c0 = (qa & m4) | (Avx2.ShiftLeftLogical(hb, 4).AsByte() & m2);
        var c1 = (qb & m4) | (Avx2.ShiftLeftLogical(hb, 2).AsByte() & m2);
        var c2 = (Avx2.ShiftRightLogical(qa.AsUInt16(), 4).AsByte() & m4) | (hb.AsByte() & m2);
        var c3 = (Avx2.ShiftRightLogical(qb.AsUInt16(), 4).AsByte() & m4) | (Avx2.ShiftRightLogical(hb, 2).AsByte() & m2);
        s0 = Avx2.Add(s0, Avx2.MultiplyAddAdjacent(c0, Bcast4(xh + 4 * v)));
        s1 = Avx2.Add(s1, Avx2.MultiplyAddAdjacent(c1, Bcast4(xh + 32 + 4 * v)));
        s2 = Avx2.Add(s2, Avx2.MultiplyAddAdjacent(c2, Bcast4(xh + 64 + 4 * v)));
        s3 = Avx2.Add(s3, Avx2.MultiplyAddAdjacent(c3, Bcast4(xh + 96 + 4 * v)));
    }

    /// <summary>Elements 8q..8q+7 of each quarter of half h (half of sub-blocks 8h + 2k + q/2), into acc.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Pair(byte* p, sbyte* xh, int h, int q, Vector256<byte> scLo, Vector256<byte> scHi, Vector256<int> acc)
    {
        Vector256<short> s0 = default, s1 = default, s2 = default, s3 = default;
        Step(p, xh, h, 2 * q, ref s0, ref s1, ref s2, ref s3);
        Step(p, xh, h, 2 * q + 1, ref s0, ref s1, ref s2, ref s3);
        // sub-block j = 8h + 2k + q/2: scale vector 2h + k/2 (scLo: k = 0, 1; scHi: k = 2, 3), byte j % 4
        acc = MulAddWords(acc, s0, SignedScaleWords(scLo, q / 2));
        acc = MulAddWords(acc, s1, SignedScaleWords(scLo, 2 + q / 2));
        acc = MulAddWords(acc, s2, SignedScaleWords(scHi, q / 2));
        return MulAddWords(acc, s3, SignedScaleWords(scHi, 2 + q / 2));
    }

    /// <summary>8 rows of a group (n real) × 1 token.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Gemv8(byte* grp, int n, in ActivationView x, int t, int nb, float* y)
    {
        sbyte* xq = x.Q + (long)t * x.Cols;
        short* bs = x.BSums + (long)t * (x.Cols / 16);
        float* xd = x.D + (long)t * nb;
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            byte* p = grp + (long)b * GroupBlockBytes;
            for (int o = 0; o < GroupBlockBytes; o += 64) Sse.Prefetch0(p + DecodePrefetchBytes + o);
            sbyte* xb = xq + b * 256;
            var sc0 = Vector256.Load(p + OffsetScales); var sc1 = Vector256.Load(p + OffsetScales + 32);
            var sc2 = Vector256.Load(p + OffsetScales + 64); var sc3 = Vector256.Load(p + OffsetScales + 96);
            var isum = Pair(p, xb, 0, 0, sc0, sc1, Vector256<int>.Zero);
            isum = Pair(p, xb, 0, 1, sc0, sc1, isum);
            isum = Pair(p, xb, 0, 2, sc0, sc1, isum);
            isum = Pair(p, xb, 0, 3, sc0, sc1, isum);
            isum = Pair(p, xb + 128, 1, 0, sc2, sc3, isum);
            isum = Pair(p, xb + 128, 1, 1, sc2, sc3, isum);
            isum = Pair(p, xb + 128, 1, 2, sc2, sc3, isum);
            isum = Pair(p, xb + 128, 1, 3, sc2, sc3, isum);
            // −32·Σ_j sc_j·bsums_j, the pairs (j, j + 1) against a broadcast of two bsums
            short* bb = bs + 16 * b;
            var e = Avx2.MultiplyAddAdjacent(ScalePairs256(sc0, 0), Vector256.Create(*(int*)bb).AsInt16());
            e = MulAddWords(e, ScalePairs256(sc0, 2), Vector256.Create(*(int*)(bb + 2)).AsInt16());
            e = MulAddWords(e, ScalePairs256(sc1, 0), Vector256.Create(*(int*)(bb + 4)).AsInt16());
            e = MulAddWords(e, ScalePairs256(sc1, 2), Vector256.Create(*(int*)(bb + 6)).AsInt16());
            e = MulAddWords(e, ScalePairs256(sc2, 0), Vector256.Create(*(int*)(bb + 8)).AsInt16());
            e = MulAddWords(e, ScalePairs256(sc2, 2), Vector256.Create(*(int*)(bb + 10)).AsInt16());
            e = MulAddWords(e, ScalePairs256(sc3, 0), Vector256.Create(*(int*)(bb + 12)).AsInt16());
            e = MulAddWords(e, ScalePairs256(sc3, 2), Vector256.Create(*(int*)(bb + 14)).AsInt16());
            isum = Avx2.Subtract(isum, Avx2.ShiftLeftLogical(Avx2.ShiftRightArithmetic(e, 8), 5));
            var d = FloatConvert.LoadHalf8((ushort*)(p + OffsetD));
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), Avx.Multiply(d, Vector256.Create(xd[b])), acc);
        }
        Store(acc, y, n);
    }

    /// <summary>The group's 8 rows back as block_q6_K rows at <paramref name="dst"/> (row stride nb · 210).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void UnpackGroup(byte* grp, int nb, byte* dst)
    {
        long rowBytes = (long)nb * BlockQ6_K.Size;
        for (int b = 0; b < nb; b++)
        {
            byte* p = grp + (long)b * GroupBlockBytes;
            byte* o = dst + (long)b * BlockQ6_K.Size;
            for (int c = 0; c < 4; c++) DwordTranspose.Rows8(p + 256 * c, o + BlockQ6_K.OffsetQl + 32 * c, rowBytes);
            for (int h = 0; h < 2; h++) DwordTranspose.Rows8(p + OffsetQh + 256 * h, o + BlockQ6_K.OffsetQh + 32 * h, rowBytes);
            for (int r = 0; r < 8; r++)
            {
                byte* row = o + r * rowBytes;
                for (int q = 0; q < 4; q++) *(uint*)(row + BlockQ6_K.OffsetScales + 4 * q) = *(uint*)(p + OffsetScales + 32 * q + 4 * r);
                *(ushort*)(row + BlockQ6_K.OffsetD) = *(ushort*)(p + OffsetD + 2 * r);
            }
        }
    }
}
