using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>Q8_0 weights × Q8_0 activations, ggml's arithmetic: per 32-block an exact int32 dot product of the int8
/// values, then acc = fma(d_w·d_x, (float)isum, acc) in block order. Runs on the shared 32-element-block kernel
/// (<see cref="LegacyQuantKernel{TF}"/>): decode streams 8 rows at a time, prefill repacks rows into lanes.</summary>
internal sealed unsafe class Q8_0Kernel : MatMulKernel
{
    public override ActivationFormat Format => ActivationFormat.Q8_0;
    public override long ScratchFloats(int cols) => LegacyQuantKernel<Q8_0Format>.ScratchFloats(cols);

    public override void Compute(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch) =>
        LegacyQuantKernel<Q8_0Format>.Compute(w, x, y, yStride, r0, r1, level, scratch);
}

/// <summary>Q8_0 codes are signed bytes; u = q + 128 (a sign-bit flip) makes them the unsigned operand of
/// vpdpbusd, and 128·Σx per block restores ggml's exact Σ q·x.</summary>
internal unsafe struct Q8_0Format : ILegacyBlockFormat
{
    public static int BlockBytes => 34;
    public static int QsOffset => 2;
    public static int Offset => 128;
    public static bool HasMin => false;
    public static bool PlainNibbles => false;
    public static bool WideCodes => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> MapNibbles(Vector256<byte> nibbles) => nibbles;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Code(byte* blk, int j) => (sbyte)blk[2 + j];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> UnpackPortable(byte* blk) => Vector256.Load(blk + 2) ^ Vector256.Create((byte)0x80);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Unpack(byte* blk) => Vector256.Load(blk + 2) ^ Vector256.Create((byte)0x80);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UnpackPair(byte* a, byte* b, out Vector256<byte> lo, out Vector256<byte> hi)
    {
        var ua = Unpack(a);
        var ub = Unpack(b);
        lo = Avx2.Permute2x128(ua, ub, 0x20);
        hi = Avx2.Permute2x128(ua, ub, 0x31);
    }
}
