using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>Q5_K weights × Q8_K activations (ggml's arithmetic, see <see cref="KQuant{TF}"/>): Q4_K plus a fifth bit
/// per code.</summary>
internal sealed unsafe class Q5_KKernel : MatMulKernel
{
    public override ActivationFormat Format => ActivationFormat.Q8_K;

    public override long ScratchFloats(int cols) => KQuantGroups.ScratchFloats<Q5_KInterleaved>(cols);

    /// <summary>Reads the 8-row interleaved copy packed at load (<see cref="Q5_KInterleaved"/>) on the vector levels.</summary>
    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch)
    {
        if (w.Packed != null && w.Type == GgmlType.Q5_K && w.PackRows == KQuantGroups.GroupRows && KQuantGroups.Reads(level, r0))
            KQuantGroups.Compute<Q5_KInterleaved>(w, x, y, yStride, r0, r1, level, scratch);
        else
            KQuant<Q5_KFormat>.Compute(w, x, y, yStride, r0, r1, level);
    }
}

/// <summary>Unpacking of block_q5_K (see <see cref="BlockQ5_K"/>) for <see cref="KQuant{TF}"/>: Q4_K's nibbles and
/// scales (<see cref="Q4_KFormat"/>, same offsets but the codes start at byte 48), and for sub-block j (elements
/// 32j..32j+31) the fifth bit of element 32j + l is bit j of qh[l].</summary>
internal unsafe struct Q5_KFormat : IKQuantFormat
{
    public static int BlockBytes => BlockQ5_K.Size;
    public static bool HasMins => true;
    public static int DmOffset => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float D(byte* blk) => Fp16.ToFloat(*(ushort*)blk);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float DMin(byte* blk) => Fp16.ToFloat(*(ushort*)(blk + 2));

    public static void Unpack(byte* blk, byte* codes, int* scales, int* extra)
    {
        var sm = new ReadOnlySpan<byte>(blk + BlockQ5_K.OffsetScales, 12);
        var qs = new ReadOnlySpan<byte>(blk + BlockQ5_K.OffsetQs, 128);
        var qh = new ReadOnlySpan<byte>(blk + BlockQ5_K.OffsetQh, 32);
        for (int j = 0; j < 8; j++)
        {
            var (sc, m) = KScales.Get(sm, j);
            scales[2 * j] = scales[2 * j + 1] = sc;
            extra[2 * j] = extra[2 * j + 1] = m;
        }
        for (int e = 0; e < 256; e++) codes[e] = (byte)BlockQ5_K.Code(qs, qh, e);
    }

    public static void CodesPortable(byte* blk, byte* codes)
    {
        byte* qs = blk + BlockQ5_K.OffsetQs;
        var qh = Vector256.Load(blk + BlockQ5_K.OffsetQh);
        var m4 = Vector256.Create((byte)0x0F);
        var one = Vector256.Create((byte)1);
        for (int g = 0; g < 4; g++)
        {
            var raw = Vector256.Load(qs + 32 * g);
            var h0 = Vector256.ShiftLeft(Vector256.ShiftRightLogical(qh, 2 * g) & one, 4);
            var h1 = Vector256.ShiftLeft(Vector256.ShiftRightLogical(qh, 2 * g + 1) & one, 4);
            Vector256.Store((raw & m4) | h0, codes + 64 * g);
            Vector256.Store(Vector256.ShiftRightLogical(raw, 4) | h1, codes + 64 * g + 32);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Info256(byte* blk) => Q4_KFormat.Info256(blk);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> W256(byte* blk, int c)
    {
        var raw = Vector256.Load(blk + BlockQ5_K.OffsetQs + 32 * (c >> 1));
        if ((c & 1) != 0) raw = Avx2.ShiftRightLogical(raw.AsUInt16(), 4).AsByte();
        var qh = Vector256.Load(blk + BlockQ5_K.OffsetQh).AsUInt16();
        // bit c to bit 4 (16-bit shifts by at most 4 left / 3 right: bits crossing bytes never reach bit 4)
        qh = c <= 4 ? Vector256.ShiftLeft(qh, 4 - c) : Vector256.ShiftRightLogical(qh, c - 4);
        return (raw & Vector256.Create((byte)0x0F)) | (qh.AsByte() & Vector256.Create((byte)0x10));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> S256(Vector256<byte> info, int c) => Q4_KFormat.S256(info, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> E256(byte* blk, Vector256<byte> info) => Q4_KFormat.E256(blk, info);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Info512(byte* blk) => Q4_KFormat.Info512(blk);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> W512(byte* blk, int g)
    {
        var raw = KConst.Broadcast256(blk + BlockQ5_K.OffsetQs + 32 * g).AsUInt16();
        var nib = Avx512BW.ShiftRightLogicalVariable(raw, KConst.Shifts512(0, 4)).AsByte() & Vector512.Create((byte)0x0F);
        var qh = KConst.Broadcast256(blk + BlockQ5_K.OffsetQh).AsUInt16();
        // lower half: bit 2g to bit 4, upper half: bit 2g+1 to bit 4
        Vector512<ushort> hb = g switch
        {
            0 => Avx512BW.ShiftLeftLogicalVariable(qh, KConst.Shifts512(4, 3)),
            1 => Avx512BW.ShiftLeftLogicalVariable(qh, KConst.Shifts512(2, 1)),
            2 => Avx512BW.ShiftRightLogicalVariable(qh, KConst.Shifts512(0, 1)),
            _ => Avx512BW.ShiftRightLogicalVariable(qh, KConst.Shifts512(2, 3)),
        };
        return nib | (hb.AsByte() & Vector512.Create((byte)0x10));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> S512(Vector512<byte> info, int g) => Q4_KFormat.S512(info, g);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> E512(byte* blk, Vector512<byte> info) => Q4_KFormat.E512(blk, info);
}
