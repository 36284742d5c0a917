using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>Q4_0 weights × Q8_0 activations: unsigned nibbles q (0..15) against the activations, minus 8·Σx per
/// block (ggml's q − 8 exactly). See <see cref="LegacyQuantKernel{TF}"/> for the paths and the float arithmetic.</summary>
internal sealed unsafe class Q4_0Kernel : MatMulKernel
{
    public override ActivationFormat Format => ActivationFormat.Q8_0;
    public override long ScratchFloats(int cols) => LegacyQuantKernel<Q4_0Format>.ScratchFloats(cols);

    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch) =>
        LegacyQuantKernel<Q4_0Format>.Compute(w, x, y, yStride, r0, r1, level, scratch);
}

internal unsafe struct Q4_0Format : ILegacyBlockFormat
{
    public static int BlockBytes => BlockQ4_0.Size;
    public static int QsOffset => BlockQ4_0.OffsetQs;
    public static int Offset => 8;
    public static bool HasMin => false;
    public static bool PlainNibbles => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> MapNibbles(Vector256<byte> nibbles) => nibbles;

    public static bool WideCodes => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Code(byte* blk, int j) => (j < 16 ? blk[2 + j] & 0x0F : blk[2 + j - 16] >> 4) - 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> UnpackPortable(byte* blk) => LegacyQuantKernel<Q4_0Format>.NibblesPortable(blk + 2);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Unpack(byte* blk) => LegacyQuantKernel<Q4_0Format>.Nibbles(blk + 2);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UnpackPair(byte* a, byte* b, out Vector256<byte> lo, out Vector256<byte> hi) =>
        LegacyQuantKernel<Q4_0Format>.NibblePair(a + 2, b + 2, out lo, out hi);
}
