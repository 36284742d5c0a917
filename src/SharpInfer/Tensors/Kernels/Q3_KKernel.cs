using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>Q3_K weights × Q8_K activations (ggml's arithmetic, see <see cref="KQuant{TF}"/>): unsigned 3-bit codes
/// u = low2 + 4·hbit with signed 6-bit scales per 16 elements; ggml's code u − 4 is folded in exactly as
/// −4·Σ sc_j·bsums_j.</summary>
internal sealed unsafe class Q3_KKernel : MatMulKernel
{
    public override ActivationFormat Format => ActivationFormat.Q8_K;

    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch) =>
        KQuant<Q3_KFormat>.Compute(w, x, y, yStride, r0, r1, level);
}

/// <summary>Unpacking of block_q3_K (see <see cref="BlockQ3_K"/>) for <see cref="KQuant{TF}"/>. Element e = 128h + 32k + l
/// has its low two bits in bits 2k, 2k+1 of qs[32h + l] and its third bit in bit e/32 of hmask[l].</summary>
internal unsafe struct Q3_KFormat : IKQuantFormat
{
    public static int BlockBytes => BlockQ3_K.Size;
    public static bool HasMins => false;
    public static int DmOffset => BlockQ3_K.OffsetD;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float D(byte* blk) => Fp16.ToFloat(*(ushort*)(blk + BlockQ3_K.OffsetD));

    public static float DMin(byte* blk) => 0f;

    public static void Unpack(byte* blk, byte* codes, int* scales, int* extra)
    {
        var sc = new ReadOnlySpan<byte>(blk + BlockQ3_K.OffsetScales, 12);
        var qs = new ReadOnlySpan<byte>(blk + BlockQ3_K.OffsetQs, 64);
        var hm = new ReadOnlySpan<byte>(blk + BlockQ3_K.OffsetHMask, 32);
        for (int j = 0; j < 16; j++)
        {
            scales[j] = BlockQ3_K.Scale(sc, j);
            extra[j] = -4 * scales[j];
        }
        for (int e = 0; e < 256; e++) codes[e] = (byte)(BlockQ3_K.Code(qs, hm, e) + 4);
    }

    public static void CodesPortable(byte* blk, byte* codes)
    {
        var hm = Vector256.Load(blk + BlockQ3_K.OffsetHMask);
        var m2 = Vector256.Create((byte)3);
        var one = Vector256.Create((byte)1);
        for (int h = 0; h < 2; h++)
        {
            var q = Vector256.Load(blk + BlockQ3_K.OffsetQs + 32 * h);
            for (int k = 0; k < 4; k++)
            {
                int c = 4 * h + k;
                var hb = Vector256.ShiftLeft(Vector256.ShiftRightLogical(hm, c) & one, 2);
                Vector256.Store((Vector256.ShiftRightLogical(q, 2 * k) & m2) | hb, codes + 32 * c);
            }
        }
    }

    /// <summary>The 16 signed scales s_j − 32, unpacked from the 12-byte field (loaded from 2 bytes earlier so the
    /// 16-byte load stays inside the block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<sbyte> Scales128(byte* blk)
    {
        const byte Z = 0x80;
        var raw = Vector128.Load(blk + BlockQ3_K.OffsetScales - 2);    // raw[i] = scale byte i - 2
        // low nibbles: j < 8 from bytes j (low nibble), j >= 8 from bytes j - 8 (high nibble)
        var lo = Ssse3.Shuffle(raw, Vector128.Create((byte)2, 3, 4, 5, 6, 7, 8, 9, Z, Z, Z, Z, Z, Z, Z, Z)) & Vector128.Create((byte)0x0F);
        var hi = Ssse3.Shuffle(Sse2.ShiftRightLogical(raw.AsUInt16(), 4).AsByte() & Vector128.Create((byte)0x0F),
                 Vector128.Create(Z, Z, Z, Z, Z, Z, Z, Z, 2, 3, 4, 5, 6, 7, 8, 9));
        // top two bits: bits 2(j/4), 2(j/4)+1 of byte 8 + j%4; each dword holds one j/4 group
        var top = Ssse3.Shuffle(raw, Vector128.Create((byte)10, 11, 12, 13, 10, 11, 12, 13, 10, 11, 12, 13, 10, 11, 12, 13)).AsUInt32();
        top = Avx2.ShiftRightLogicalVariable(top, Vector128.Create(0u, 2u, 4u, 6u));
        var t = Sse2.ShiftLeftLogical(top.AsUInt16(), 4).AsByte() & Vector128.Create((byte)0x30);
        return ((lo | hi | t).AsSByte() - Vector128.Create((sbyte)32));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Info256(byte* blk) => Vector256.Create(Scales128(blk).AsByte());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> W256(byte* blk, int c)
    {
        int h = c >> 2, k = c & 3;
        var q = Vector256.ShiftRightLogical(Vector256.Load(blk + BlockQ3_K.OffsetQs + 32 * h).AsUInt16(), 2 * k).AsByte();
        var hm = Vector256.Load(blk + BlockQ3_K.OffsetHMask).AsUInt16();
        // bit c to bit 2 (16-bit shifts by at most 2 left / 5 right: bits crossing bytes never reach bit 2)
        hm = c <= 2 ? Vector256.ShiftLeft(hm, 2 - c) : Vector256.ShiftRightLogical(hm, c - 2);
        return (q & Vector256.Create((byte)3)) | (hm.AsByte() & Vector256.Create((byte)4));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> S256(Vector256<byte> info, int c) => KConst.SignedScales256(info, c);

    /// <summary>−4·sc_j for the 16 bsums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> E256(byte* blk, Vector256<byte> info) =>
        Avx2.Subtract(Vector256<short>.Zero, Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int16(info.GetLower().AsSByte()), 2));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Info512(byte* blk) => KConst.SignedScalesInfo512(Scales128(blk));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> W512(byte* blk, int g)
    {
        int h = g >> 1, k0 = 2 * (g & 1);
        var q = KConst.Broadcast256(blk + BlockQ3_K.OffsetQs + 32 * h).AsUInt16();
        q = Avx512BW.ShiftRightLogicalVariable(q, KConst.Shifts512(2 * k0, 2 * k0 + 2));
        var hm = KConst.Broadcast256(blk + BlockQ3_K.OffsetHMask).AsUInt16();
        // lower half: bit 2g to bit 2, upper half: bit 2g+1 to bit 2
        hm = g == 0
            ? Avx512BW.ShiftLeftLogicalVariable(hm, KConst.Shifts512(2, 1))
            : Avx512BW.ShiftRightLogicalVariable(hm, KConst.Shifts512(2 * g - 2, 2 * g - 1));
        return (q.AsByte() & Vector512.Create((byte)3)) | (hm.AsByte() & Vector512.Create((byte)4));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> S512(Vector512<byte> info, int g) => KConst.SignedScales512(info, g);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> E512(byte* blk, Vector512<byte> info) =>
        Avx512BW.Subtract(Vector512<short>.Zero, Avx512BW.ShiftLeftLogical(info.AsInt16(), 2));
}
