using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;
using static SharpInfer.Tensors.Kernels.KQuantGroups;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// Q5_K packed at load for the vector levels: <see cref="Q4_KInterleaved"/>'s layout plus the fifth bits. Groups of 8
/// rows, per 256-column super-block <see cref="GroupBlockBytes"/> = 1440 bytes (8 × 180: block_q5_K's 176 with the
/// 12-byte scale field expanded to 16 bytes, 5.6 bits a weight):
/// <code>
///   0..1023     qs as in Q4_KInterleaved: unit k vector v at 256k + 32v, dword r = row r's qs[32k + 4v .. +3]
///   1024..1279  qh: vector v at 1024 + 32v, dword r = row r's qh[4v .. +3] (bit j of qh[l]: element 32j + l)
///   1280..1343  scales as bytes: sc[r][j] at 1280 + 32·(j / 4) + 4r + j % 4
///   1344..1407  mins as bytes: m[r][j] at 1344 + 16·(j / 2) + 2r + j % 2
///   1408..1423  d of rows 0..7 (halves), 1424..1439 dmin
/// </code>
/// Codes reach 31, so four vpmaddubsw results (not eight) add up exactly in int16 (4 · 2 · 31 · 128 = 31,744) before
/// each vpmaddwd by the rows' scales. Prefill unpacks a panel of groups back into block_q5_K rows per call. Same
/// integers and float steps as <see cref="KQuant{TF}"/>: the mapped rows' bits.
/// </summary>
internal unsafe struct Q5_KInterleaved : IKQuantGroupLayout
{
    public const int GroupRows = KQuantGroups.GroupRows;
    public static int GroupBlockBytes => 1440;
    public static int RowBlockBytes => BlockQ5_K.Size;
    private const int OffsetQh = 1024, OffsetScales = 1280, OffsetMins = OffsetScales + HeadMins, OffsetD = OffsetScales + HeadD, OffsetDMin = OffsetScales + HeadDMin;

    public static void Pack(WeightMatrix w, int g0, int g1, byte* dst)
    {
        int nb = w.Cols / 256;
        for (int g = g0; g < g1; g++)
            for (int b = 0; b < nb; b++)
            {
                byte* o = dst + ((long)g * nb + b) * GroupBlockBytes;
                for (int i = 0; i < 8; i++)
                {
                    byte* blk = w.Row(Math.Min(g * 8 + i, w.Rows - 1)) + (long)b * BlockQ5_K.Size;
                    PutHead(blk, o + OffsetScales, i);
                    ToLane(blk + BlockQ5_K.OffsetQs, 32, o, i);
                    ToLane(blk + BlockQ5_K.OffsetQh, 8, o + OffsetQh, i);
                }
            }
    }

    /// <summary>Row <paramref name="r"/> back as block_q5_K.</summary>
    public static void CopyRow(WeightMatrix w, int r, byte* dst)
    {
        int nb = w.Cols / 256;
        for (int b = 0; b < nb; b++) CopyRowBlock(Group<Q5_KInterleaved>(w, r, nb) + (long)b * GroupBlockBytes, r % 8, dst + (long)b * BlockQ5_K.Size);
    }

    private static void CopyRowBlock(byte* o, int i, byte* blk)
    {
        GetHead(o + OffsetScales, i, blk);
        FromLane(o, i, 32, blk + BlockQ5_K.OffsetQs);
        FromLane(o + OffsetQh, i, 8, blk + BlockQ5_K.OffsetQh);
    }

    public static void ComputeRows(KRows rows, int cols, string name, in ActivationView x, float* y, int yStride, int r1, IsaLevel level) =>
        KQuant<Q5_KFormat>.Compute(rows, cols, name, x, y, yStride, 0, r1, level);

    /// <summary>Bit (4 − s) of every byte moved to bit 4 (the fifth bit of a code), other bits cleared.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Bit4(Vector256<ushort> hb, int s)
    {
        var v = s switch
        {
            4 => Avx2.ShiftLeftLogical(hb, 4),
            3 => Avx2.ShiftLeftLogical(hb, 3),
            2 => Avx2.ShiftLeftLogical(hb, 2),
            1 => Avx2.ShiftLeftLogical(hb, 1),
            0 => hb,
            -1 => Avx2.ShiftRightLogical(hb, 1),
            -2 => Avx2.ShiftRightLogical(hb, 2),
            _ => Avx2.ShiftRightLogical(hb, 3),
        };
        return v.AsByte() & Vector256.Create((byte)0x10);
    }

    /// <summary>Vector v of unit k: sub-block 2k (low nibbles, qh bit 2k) into lo, 2k + 1 (high, bit 2k + 1) into hi.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(byte* p, sbyte* xb, int k, int v, ref Vector256<short> lo, ref Vector256<short> hi)
    {
        var m = Vector256.Create((byte)0x0F);
        var q = Vector256.Load(p + 256 * k + 32 * v);
        var hb = Vector256.Load(p + OffsetQh + 32 * v).AsUInt16();
        var cl = (q & m) | Bit4(hb, 4 - 2 * k);
        var ch = (Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & m) | Bit4(hb, 3 - 2 * k);
        lo = Avx2.Add(lo, Avx2.MultiplyAddAdjacent(cl, Bcast4(xb + 64 * k + 4 * v)));
        hi = Avx2.Add(hi, Avx2.MultiplyAddAdjacent(ch, Bcast4(xb + 64 * k + 32 + 4 * v)));
    }

    /// <summary>Vectors v0..v0+3 of unit k (four products per int16 lane: exact for 5-bit codes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quad(byte* p, sbyte* xb, int k, int v0, out Vector256<short> lo, out Vector256<short> hi)
    {
        lo = default; hi = default;
        Step(p, xb, k, v0, ref lo, ref hi);
        Step(p, xb, k, v0 + 1, ref lo, ref hi);
        Step(p, xb, k, v0 + 2, ref lo, ref hi);
        Step(p, xb, k, v0 + 3, ref lo, ref hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Unit(byte* p, sbyte* xb, Vector256<byte> sc, int k, Vector256<int> acc)
    {
        Sse.Prefetch0(p + DecodePrefetchBytes + 256 * k); Sse.Prefetch0(p + DecodePrefetchBytes + 256 * k + 64);
        Sse.Prefetch0(p + DecodePrefetchBytes + 256 * k + 128); Sse.Prefetch0(p + DecodePrefetchBytes + 256 * k + 192);
        var sLo = ScaleWords(sc, 2 * k);
        var sHi = ScaleWords(sc, 2 * k + 1);
        Quad(p, xb, k, 0, out var lo, out var hi);
        acc = MulAddWords(acc, lo, sLo);
        acc = MulAddWords(acc, hi, sHi);
        Quad(p, xb, k, 4, out lo, out hi);
        acc = MulAddWords(acc, lo, sLo);
        return MulAddWords(acc, hi, sHi);
    }

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
            for (int o = OffsetQh; o < GroupBlockBytes; o += 64) Sse.Prefetch0(p + DecodePrefetchBytes + o);
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

    /// <summary>The group's 8 rows back as block_q5_K rows at <paramref name="dst"/> (row stride nb · 176): codes and
    /// fifth bits by dword transposes, the scale fields re-encoded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void UnpackGroup(byte* grp, int nb, byte* dst)
    {
        long rowBytes = (long)nb * BlockQ5_K.Size;
        for (int b = 0; b < nb; b++)
        {
            byte* p = grp + (long)b * GroupBlockBytes;
            byte* o = dst + (long)b * BlockQ5_K.Size;
            for (int k = 0; k < 4; k++) DwordTranspose.Rows8(p + 256 * k, o + BlockQ5_K.OffsetQs + 32 * k, rowBytes);
            DwordTranspose.Rows8(p + OffsetQh, o + BlockQ5_K.OffsetQh, rowBytes);
            for (int r = 0; r < 8; r++) GetHead(p + OffsetScales, r, o + r * rowBytes);
        }
    }
}
