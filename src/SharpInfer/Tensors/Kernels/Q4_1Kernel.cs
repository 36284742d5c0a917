using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>Q4_1 weights × Q8_1 activations: unsigned nibbles against the activations, then per block
/// d_w·d_x·isum + m_w·s_x (s = the Q8_1 scaled block sum), as ggml. See <see cref="LegacyQuantKernel{TF}"/>.</summary>
internal sealed unsafe class Q4_1Kernel : MatMulKernel
{
    public override ActivationFormat Format => ActivationFormat.Q8_1;
    public override long ScratchFloats(int cols) => LegacyQuantKernel<Q4_1Format>.ScratchFloats(cols);

    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch) =>
        LegacyQuantKernel<Q4_1Format>.Compute(w, x, y, yStride, r0, r1, level, scratch);
}

internal unsafe struct Q4_1Format : ILegacyBlockFormat
{
    public static int BlockBytes => BlockQ4_1.Size;
    public static int QsOffset => BlockQ4_1.OffsetQs;
    public static int Offset => 0;
    public static bool HasMin => true;
    public static bool PlainNibbles => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> MapNibbles(Vector256<byte> nibbles) => nibbles;

    public static bool WideCodes => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Code(byte* blk, int j) => j < 16 ? blk[4 + j] & 0x0F : blk[4 + j - 16] >> 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> UnpackPortable(byte* blk) => LegacyQuantKernel<Q4_1Format>.NibblesPortable(blk + 4);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Unpack(byte* blk) => LegacyQuantKernel<Q4_1Format>.Nibbles(blk + 4);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UnpackPair(byte* a, byte* b, out Vector256<byte> lo, out Vector256<byte> hi) =>
        LegacyQuantKernel<Q4_1Format>.NibblePair(a + 4, b + 4, out lo, out hi);
}
