using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;
using static SharpInfer.Tensors.Kernels.KQuantGroups;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// Q4_K packed at load for the vector levels: groups of 8 rows, and per 256-column super-block
/// (<see cref="GroupBlockBytes"/> = 1184 bytes, 4.625 bits a weight like <see cref="Q4_KPackedFormat"/>):
/// <code>
///   0..1023     codes: unit k (64 elements, k = 0..3) at 256k, its vector v (v = 0..7) at 256k + 32v: dword r is row
///               r's block_q4_K bytes qs[32k + 4v .. 32k + 4v + 3], so the low nibbles are elements 64k + 4v..+3
///               (sub-block 2k) and the high nibbles 64k + 32 + 4v..+3 (sub-block 2k + 1)
///   1024..1087  6-bit scales as bytes: sc[r][j] at 1024 + 32·(j / 4) + 4r + j % 4
///   1088..1151  mins as bytes: m[r][j] at 1088 + 16·(j / 2) + 2r + j % 2 (a zero-extending load gives the int16
///               pairs (m[r][2k], m[r][2k + 1]) of the 8 rows)
///   1152..1167  d of rows 0..7 (halves), 1168..1183 dmin
/// </code>
/// Decode (<see cref="Gemv8"/>) then computes a row per vector lane: per 32-element sub-block eight vpmaddubsw of a code
/// vector by a broadcast of 4 activation bytes add up exactly in int16 (8 · 2 · 15 · 128 = 30,720 &lt; 32,768), then one
/// vpmaddwd by the 8 rows' scales (one pshufb from a 32-byte load); no horizontal sums, no per-row unpacking of the
/// 12-byte scale field, no per-row pointers. The 4-row tile it replaces spends two multiplies (vpmaddubsw, vpmaddwd)
/// and a shuffle per 32 weights of a row, and a reduction tree per super-block. Prefill unpacks a group into 8 rows of
/// <see cref="Q4_KPackedFormat"/> per call (<see cref="UnpackGroup"/>: nibble moves and an 8×8 dword transpose) and
/// runs the K-quant tiles on them. The integers are the exact sums every other path computes and the float steps
/// are <see cref="KQuant{TF}"/>'s, so results are bit-identical to the mapped rows on every path.
/// </summary>
internal unsafe struct Q4_KInterleaved : IKQuantGroupLayout
{
    public const int GroupRows = KQuantGroups.GroupRows;
    public static int GroupBlockBytes => 8 * Q4_KPackedFormat.Size;
    public static int RowBlockBytes => Q4_KPackedFormat.Size;
    private const int OffsetScales = 1024, OffsetMins = OffsetScales + HeadMins, OffsetD = OffsetScales + HeadD, OffsetDMin = OffsetScales + HeadDMin;


    /// <summary>Writes row groups [<paramref name="g0"/>, <paramref name="g1"/>) of <paramref name="w"/> (block_q4_K rows)
    /// into its copy at <paramref name="dst"/> (the last group's missing rows alias its last real row).</summary>
    public static void Pack(WeightMatrix w, int g0, int g1, byte* dst)
    {
        int nb = w.Cols / 256;
        for (int g = g0; g < g1; g++)
            for (int b = 0; b < nb; b++)
            {
                byte* o = dst + ((long)g * nb + b) * GroupBlockBytes;
                for (int i = 0; i < 8; i++)
                {
                    byte* blk = w.Row(Math.Min(g * 8 + i, w.Rows - 1)) + (long)b * BlockQ4_K.Size;
                    PutHead(blk, o + OffsetScales, i);
                    ToLane(blk + BlockQ4_K.OffsetQs, 32, o, i);
                }
            }
    }

    /// <summary>Row <paramref name="r"/> back as block_q4_K (embedding lookups of a tied matrix read the copy, not the
    /// released mapped pages).</summary>
    public static void CopyRow(WeightMatrix w, int r, byte* dst)
    {
        int nb = w.Cols / 256, i = r % 8;
        for (int b = 0; b < nb; b++)
        {
            byte* o = Group<Q4_KInterleaved>(w, r, nb) + (long)b * GroupBlockBytes;
            byte* blk = dst + (long)b * BlockQ4_K.Size;
            GetHead(o + OffsetScales, i, blk);
            FromLane(o, i, 32, blk + BlockQ4_K.OffsetQs);
        }
    }

    public static void ComputeRows(KRows rows, int cols, string name, in ActivationView x, float* y, int yStride, int r1, IsaLevel level) =>
        KQuant<Q4_KPackedFormat>.Compute(rows, cols, name, x, y, yStride, 0, r1, level);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> High(Vector256<byte> q) =>
        Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & Vector256.Create((byte)0x0F);

    /// <summary>Unit k (64 elements, sub-blocks 2k and 2k + 1) of a super-block for the 8 rows, added to acc as
    /// sc·Σ q·x per row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Unit(byte* p, sbyte* xb, Vector256<byte> sc, int k, Vector256<int> acc)
    {
        var m = Vector256.Create((byte)0x0F);
        byte* q = p + 256 * k;
        sbyte* xl = xb + 64 * k, xh = xl + 32;
        Sse.Prefetch0(q + DecodePrefetchBytes); Sse.Prefetch0(q + DecodePrefetchBytes + 64);
        Sse.Prefetch0(q + DecodePrefetchBytes + 128); Sse.Prefetch0(q + DecodePrefetchBytes + 192);
        var q0 = Vector256.Load(q);
        var lo = Avx2.MultiplyAddAdjacent(q0 & m, Bcast4(xl));
        var hi = Avx2.MultiplyAddAdjacent(High(q0), Bcast4(xh));
        var q1 = Vector256.Load(q + 32);
        lo = Avx2.Add(lo, Avx2.MultiplyAddAdjacent(q1 & m, Bcast4(xl + 4)));
        hi = Avx2.Add(hi, Avx2.MultiplyAddAdjacent(High(q1), Bcast4(xh + 4)));
        var q2 = Vector256.Load(q + 64);
        lo = Avx2.Add(lo, Avx2.MultiplyAddAdjacent(q2 & m, Bcast4(xl + 8)));
        hi = Avx2.Add(hi, Avx2.MultiplyAddAdjacent(High(q2), Bcast4(xh + 8)));
        var q3 = Vector256.Load(q + 96);
        lo = Avx2.Add(lo, Avx2.MultiplyAddAdjacent(q3 & m, Bcast4(xl + 12)));
        hi = Avx2.Add(hi, Avx2.MultiplyAddAdjacent(High(q3), Bcast4(xh + 12)));
        var q4 = Vector256.Load(q + 128);
        lo = Avx2.Add(lo, Avx2.MultiplyAddAdjacent(q4 & m, Bcast4(xl + 16)));
        hi = Avx2.Add(hi, Avx2.MultiplyAddAdjacent(High(q4), Bcast4(xh + 16)));
        var q5 = Vector256.Load(q + 160);
        lo = Avx2.Add(lo, Avx2.MultiplyAddAdjacent(q5 & m, Bcast4(xl + 20)));
        hi = Avx2.Add(hi, Avx2.MultiplyAddAdjacent(High(q5), Bcast4(xh + 20)));
        var q6 = Vector256.Load(q + 192);
        lo = Avx2.Add(lo, Avx2.MultiplyAddAdjacent(q6 & m, Bcast4(xl + 24)));
        hi = Avx2.Add(hi, Avx2.MultiplyAddAdjacent(High(q6), Bcast4(xh + 24)));
        var q7 = Vector256.Load(q + 224);
        lo = Avx2.Add(lo, Avx2.MultiplyAddAdjacent(q7 & m, Bcast4(xl + 28)));
        hi = Avx2.Add(hi, Avx2.MultiplyAddAdjacent(High(q7), Bcast4(xh + 28)));
        acc = MulAddWords(acc, lo, ScaleWords(sc, 2 * k));
        return MulAddWords(acc, hi, ScaleWords(sc, 2 * k + 1));
    }

    /// <summary>8 rows of a group (n real) × 1 token: y[r] for r &lt; n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Gemv8(byte* grp, int n, in ActivationView x, int t, int nb, float* y)
    {
        sbyte* xq = x.Q + (long)t * x.Cols;
        short* bs = x.BSums + (long)t * (x.Cols / 16);
        float* xd = x.D + (long)t * nb;
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            byte* p = grp + (long)b * GroupBlockBytes;
            sbyte* xb = xq + b * 256;
            Sse.Prefetch0(p + DecodePrefetchBytes + OffsetScales); Sse.Prefetch0(p + DecodePrefetchBytes + OffsetScales + 64);
            Sse.Prefetch0(p + DecodePrefetchBytes + OffsetScales + 128);
            var scA = Vector256.Load(p + OffsetScales);
            var scB = Vector256.Load(p + OffsetScales + 32);
            var isum = Unit(p, xb, scA, 0, Vector256<int>.Zero);
            isum = Unit(p, xb, scA, 1, isum);
            isum = Unit(p, xb, scB, 2, isum);
            isum = Unit(p, xb, scB, 3, isum);
            var msum = MinsSum(p + OffsetMins, bs + 16 * b);
            StepWithMins(isum, msum, (ushort*)(p + OffsetD), (ushort*)(p + OffsetDMin), xd[b], ref acc0, ref acc1);
        }
        Store(Avx.Add(acc0, acc1), y, n);
    }

    /// <summary>The group's 8 rows as <see cref="Q4_KPackedFormat"/> rows at <paramref name="dst"/> (row stride
    /// nb · 148): nibbles of units 2h and 2h + 1 merged as that format keeps them, then an 8×8 dword transpose.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void UnpackGroup(byte* grp, int nb, byte* dst)
    {
        long rowBytes = (long)nb * Q4_KPackedFormat.Size;
        var m = Vector256.Create((byte)0x0F);
        byte* lo = stackalloc byte[256];
        byte* hi = stackalloc byte[256];
        for (int b = 0; b < nb; b++)
        {
            byte* p = grp + (long)b * GroupBlockBytes;
            byte* o = dst + (long)b * Q4_KPackedFormat.Size;
            for (int h = 0; h < 2; h++)
            {
                for (int v = 0; v < 8; v++)
                {
                    var a = Vector256.Load(p + 512 * h + 32 * v);          // unit 2h: elements 128h + 4v.. (low), +32 (high)
                    var c = Vector256.Load(p + 512 * h + 256 + 32 * v);    // unit 2h + 1: elements 128h + 64 + ..
                    // packed byte i (i < 32) = code(128h + i) | code(128h + 64 + i) << 4; byte 32 + i: the +32 elements
                    Vector256.Store((a & m) | Avx2.ShiftLeftLogical((c & m).AsUInt16(), 4).AsByte(), lo + 32 * v);
                    Vector256.Store(High(a) | (c & Vector256.Create((byte)0xF0)), hi + 32 * v);
                }
                DwordTranspose.Rows8(lo, o + 20 + 64 * h, rowBytes);
                DwordTranspose.Rows8(hi, o + 20 + 64 * h + 32, rowBytes);
            }
            for (int r = 0; r < 8; r++)
            {
                byte* row = o + r * rowBytes;
                *(ushort*)row = *(ushort*)(p + OffsetD + 2 * r);
                *(ushort*)(row + 2) = *(ushort*)(p + OffsetDMin + 2 * r);
                *(uint*)(row + 4) = *(uint*)(p + OffsetScales + 4 * r);
                *(uint*)(row + 8) = *(uint*)(p + OffsetScales + 32 + 4 * r);
                for (int k = 0; k < 4; k++) *(ushort*)(row + 12 + 2 * k) = *(ushort*)(p + OffsetMins + 16 * k + 2 * r);
            }
        }
    }
}
