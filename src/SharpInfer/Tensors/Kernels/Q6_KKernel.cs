using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>Q6_K weights × Q8_K activations (ggml's arithmetic, see <see cref="KQuant{TF}"/>): unsigned 6-bit codes q
/// with signed 8-bit scales per 16 elements; the −32 offset is folded in exactly as −32·Σ sc_j·bsums_j.</summary>
internal sealed unsafe class Q6_KKernel : MatMulKernel
{
    public override ActivationFormat Format => ActivationFormat.Q8_K;

    public override long ScratchFloats(int cols) => KQuantGroups.ScratchFloats<Q6_KInterleaved>(cols);

    /// <summary>Reads the 8-row interleaved copy packed at load (<see cref="Q6_KInterleaved"/>) on the vector levels.</summary>
    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch)
    {
        if (w.Packed != null && w.Type == GgmlType.Q6_K && w.PackRows == KQuantGroups.GroupRows && KQuantGroups.Reads(level, r0))
            KQuantGroups.Compute<Q6_KInterleaved>(w, x, y, yStride, r0, r1, level, scratch);
        else
            KQuant<Q6_KFormat>.Compute(w, x, y, yStride, r0, r1, level);
    }
}

/// <summary>Unpacking of block_q6_K (see <see cref="BlockQ6_K"/>) for <see cref="KQuant{TF}"/>. Element e = 128h + 32k + l
/// takes its low nibble from ql[64h + 32(k&amp;1) + l] (high nibble for k ≥ 2) and bits 4,5 from bits 2k, 2k+1 of qh[32h + l].</summary>
internal unsafe struct Q6_KFormat : IKQuantFormat
{
    public static int BlockBytes => BlockQ6_K.Size;
    public static bool HasMins => false;
    public static int DmOffset => BlockQ6_K.OffsetD;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float D(byte* blk) => Fp16.ToFloat(*(ushort*)(blk + BlockQ6_K.OffsetD));

    public static float DMin(byte* blk) => 0f;

    public static void Unpack(byte* blk, byte* codes, int* scales, int* extra)
    {
        var ql = new ReadOnlySpan<byte>(blk + BlockQ6_K.OffsetQl, 128);
        var qh = new ReadOnlySpan<byte>(blk + BlockQ6_K.OffsetQh, 64);
        sbyte* sc = (sbyte*)(blk + BlockQ6_K.OffsetScales);
        for (int j = 0; j < 16; j++)
        {
            scales[j] = sc[j];
            extra[j] = -32 * sc[j];
        }
        for (int e = 0; e < 256; e++) codes[e] = (byte)(BlockQ6_K.Code(ql, qh, e) + 32);
    }

    public static void CodesPortable(byte* blk, byte* codes)
    {
        var m4 = Vector256.Create((byte)0x0F);
        var m2 = Vector256.Create((byte)0x30);
        for (int h = 0; h < 2; h++)
        {
            var l0 = Vector256.Load(blk + BlockQ6_K.OffsetQl + 64 * h);
            var l1 = Vector256.Load(blk + BlockQ6_K.OffsetQl + 64 * h + 32);
            var hb = Vector256.Load(blk + BlockQ6_K.OffsetQh + 32 * h);
            byte* dst = codes + 128 * h;
            Vector256.Store((l0 & m4) | (Vector256.ShiftLeft(hb, 4) & m2), dst);
            Vector256.Store((l1 & m4) | (Vector256.ShiftLeft(hb, 2) & m2), dst + 32);
            Vector256.Store(Vector256.ShiftRightLogical(l0, 4) | (hb & m2), dst + 64);
            Vector256.Store(Vector256.ShiftRightLogical(l1, 4) | (Vector256.ShiftRightLogical(hb, 2) & m2), dst + 96);
        }
    }

    /// <summary>The 16 signed scale bytes in both 128-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Info256(byte* blk) => Vector256.Create(Vector128.Load(blk + BlockQ6_K.OffsetScales));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> W256(byte* blk, int c)
    {
        int h = c >> 2, k = c & 3;
        var low = Vector256.Load(blk + BlockQ6_K.OffsetQl + 64 * h + 32 * (k & 1));
        if (k >= 2) low = Avx2.ShiftRightLogical(low.AsUInt16(), 4).AsByte();
        var hb = Vector256.Load(blk + BlockQ6_K.OffsetQh + 32 * h).AsUInt16();
        // bits 2k, 2k+1 to bits 4, 5 (16-bit shifts: bits crossing into the neighbouring byte are masked off)
        hb = k switch { 0 => Avx2.ShiftLeftLogical(hb, 4), 1 => Avx2.ShiftLeftLogical(hb, 2), 2 => hb, _ => Avx2.ShiftRightLogical(hb, 2) };
        return (low & Vector256.Create((byte)0x0F)) | (hb.AsByte() & Vector256.Create((byte)0x30));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> S256(Vector256<byte> info, int c) => KConst.SignedScales256(info, c);

    /// <summary>−32·sc_j for the 16 bsums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> E256(byte* blk, Vector256<byte> info) =>
        Avx2.Subtract(Vector256<short>.Zero, Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int16(info.GetLower().AsSByte()), 5));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Info512(byte* blk) => KConst.SignedScalesInfo512(Vector128.Load((sbyte*)(blk + BlockQ6_K.OffsetScales)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> W512(byte* blk, int g)
    {
        int h = g >> 1;
        var ql = Vector512.Load(blk + BlockQ6_K.OffsetQl + 64 * h);
        var hb = KConst.Broadcast256(blk + BlockQ6_K.OffsetQh + 32 * h).AsUInt16();
        Vector512<byte> low, high;
        if ((g & 1) == 0)
        {
            // k = 0 | 1: low nibbles; qh bits 0,1 | 2,3 to bits 4,5
            low = ql & Vector512.Create((byte)0x0F);
            high = Avx512BW.ShiftLeftLogicalVariable(hb, KConst.Shifts512(4, 2)).AsByte();
        }
        else
        {
            // k = 2 | 3: high nibbles; qh bits 4,5 | 6,7 to bits 4,5
            low = Avx512BW.ShiftRightLogical(ql.AsUInt16(), 4).AsByte() & Vector512.Create((byte)0x0F);
            high = Avx512BW.ShiftRightLogicalVariable(hb, KConst.Shifts512(0, 2)).AsByte();
        }
        return low | (high & Vector512.Create((byte)0x30));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> S512(Vector512<byte> info, int g) => KConst.SignedScales512(info, g);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> E512(byte* blk, Vector512<byte> info) =>
        Avx512BW.Subtract(Vector512<short>.Zero, Avx512BW.ShiftLeftLogical(info.AsInt16(), 5));
}
