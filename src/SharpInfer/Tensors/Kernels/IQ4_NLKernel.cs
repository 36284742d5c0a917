using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>IQ4_NL weights × Q8_0 activations: each nibble looks up its level v in ggml's table with a byte shuffle;
/// the table holds v + 128 (1..241, unsigned) and 128·Σx is subtracted per block, so the integer sums are exactly
/// ggml's Σ v·x. See <see cref="LegacyQuantKernel{TF}"/>.</summary>
internal sealed unsafe class IQ4_NLKernel : MatMulKernel
{
    public override ActivationFormat Format => ActivationFormat.Q8_0;
    public override long ScratchFloats(int cols) => LegacyQuantKernel<IQ4_NLFormat>.ScratchFloats(cols);

    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch) =>
        LegacyQuantKernel<IQ4_NLFormat>.Compute(w, x, y, yStride, r0, r1, level, scratch);
}

internal unsafe struct IQ4_NLFormat : ILegacyBlockFormat
{
    public static int BlockBytes => BlockIQ4_NL.Size;
    public static int QsOffset => BlockIQ4_NL.OffsetQs;
    public static int Offset => 128;
    public static bool HasMin => false;
    public static bool PlainNibbles => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> MapNibbles(Vector256<byte> nibbles) => Avx2.Shuffle(Table, nibbles);

    public static bool WideCodes => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Code(byte* blk, int j) => BlockIQ4_NL.Values[j < 16 ? blk[2 + j] & 0x0F : blk[2 + j - 16] >> 4];

    /// <summary>kvalues_iq4nl + 128 (both 128-bit halves, for the in-lane byte shuffle).</summary>
    private static Vector256<byte> Table
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256.Create(
        1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241,
        1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, (byte)241);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> UnpackPortable(byte* blk)
    {
        var n = LegacyQuantKernel<IQ4_NLFormat>.NibblesPortable(blk + 2);
        var t = Table.GetLower();
        return Vector256.Create(Vector128.Shuffle(t, n.GetLower()), Vector128.Shuffle(t, n.GetUpper()));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Unpack(byte* blk) => Avx2.Shuffle(Table, LegacyQuantKernel<IQ4_NLFormat>.Nibbles(blk + 2));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UnpackPair(byte* a, byte* b, out Vector256<byte> lo, out Vector256<byte> hi)
    {
        LegacyQuantKernel<IQ4_NLFormat>.NibblePair(a + 2, b + 2, out lo, out hi);
        lo = Avx2.Shuffle(Table, lo);
        hi = Avx2.Shuffle(Table, hi);
    }
}
