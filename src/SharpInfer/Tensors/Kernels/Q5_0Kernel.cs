using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>Q5_0 weights × Q8_0 activations: 5-bit unsigned codes (nibble | fifth bit · 16, 0..31) against the
/// activations, minus 16·Σx per block (ggml's q − 16 exactly). See <see cref="LegacyQuantKernel{TF}"/>.</summary>
internal sealed unsafe class Q5_0Kernel : MatMulKernel
{
    public override ActivationFormat Format => ActivationFormat.Q8_0;
    public override long ScratchFloats(int cols) => LegacyQuantKernel<Q5_0Format>.ScratchFloats(cols);

    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch) =>
        LegacyQuantKernel<Q5_0Format>.Compute(w, x, y, yStride, r0, r1, level, scratch);
}

internal unsafe struct Q5_0Format : ILegacyBlockFormat
{
    public static int BlockBytes => BlockQ5_0.Size;
    public static int QsOffset => BlockQ5_0.OffsetQs;
    public static int Offset => 16;
    public static bool HasMin => false;
    public static bool PlainNibbles => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> MapNibbles(Vector256<byte> nibbles) => nibbles;

    public static bool WideCodes => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Code(byte* blk, int j)
    {
        uint qh = (uint)(blk[2] | blk[3] << 8 | blk[4] << 16 | blk[5] << 24);
        int nib = j < 16 ? blk[6 + j] & 0x0F : blk[6 + j - 16] >> 4;
        return (nib | (int)((qh >> j) & 1) << 4) - 16;
    }

    /// <summary>Byte j of the result: 1 &lt;&lt; (j mod 8), the bit of qh byte j/8 that element j's fifth bit is.</summary>
    private static Vector256<byte> BitMask
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256.Create(
        1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, (byte)128);
    }

    /// <summary>0x10 where the selected bit is set: the fifth bit of each code in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> FifthBits(Vector256<byte> qhBytes)
    {
        var m = BitMask;
        return Vector256.Equals(qhBytes & m, m) & Vector256.Create((byte)0x10);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> UnpackPortable(byte* blk)
    {
        var idx = Vector256.Create(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, (byte)3);
        var qh = Vector256.Shuffle(Vector256.Create(*(uint*)(blk + 2)).AsByte(), idx);
        return LegacyQuantKernel<Q5_0Format>.NibblesPortable(blk + 6) | FifthBits(qh);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Unpack(byte* blk)
    {
        // in-lane byte shuffle of the broadcast qh: bytes 0..15 take qh bytes 0, 1; bytes 16..31 take qh bytes 2, 3
        var idx = Vector256.Create(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, (byte)3);
        var qh = Avx2.Shuffle(Vector256.Create(*(uint*)(blk + 2)).AsByte(), idx);
        return LegacyQuantKernel<Q5_0Format>.Nibbles(blk + 6) | FifthBits(qh);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UnpackPair(byte* a, byte* b, out Vector256<byte> lo, out Vector256<byte> hi)
    {
        LegacyQuantKernel<Q5_0Format>.NibblePair(a + 6, b + 6, out lo, out hi);
        var qh = Vector256.Create(Vector128.Create(*(uint*)(a + 2)), Vector128.Create(*(uint*)(b + 2))).AsByte();
        var idxLo = Vector256.Create(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, (byte)1);
        var idxHi = Vector256.Create(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, (byte)3);
        lo |= FifthBits(Avx2.Shuffle(qh, idxLo));
        hi |= FifthBits(Avx2.Shuffle(qh, idxHi));
    }
}
