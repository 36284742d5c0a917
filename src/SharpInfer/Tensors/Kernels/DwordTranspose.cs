using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpInfer.Tensors.Kernels;

/// <summary>The 8×8 dword transpose that turns the interleaved K-quant groups (a row per dword lane) back into rows.</summary>
internal static unsafe class DwordTranspose
{
    /// <summary>Eight 32-byte vectors at <paramref name="src"/> whose dword r belongs to row r → row r's 32 bytes at
    /// dst + r·stride (vector v's dword as the row's dword v).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Rows8(byte* src, byte* dst, long stride)
    {
        var v0 = Vector256.Load((int*)src); var v1 = Vector256.Load((int*)(src + 32));
        var v2 = Vector256.Load((int*)(src + 64)); var v3 = Vector256.Load((int*)(src + 96));
        var v4 = Vector256.Load((int*)(src + 128)); var v5 = Vector256.Load((int*)(src + 160));
        var v6 = Vector256.Load((int*)(src + 192)); var v7 = Vector256.Load((int*)(src + 224));
        Store8(v0, v1, v2, v3, v4, v5, v6, v7, dst, stride);
    }

    /// <summary>Eight vectors whose dword r belongs to row r → row r's 32 bytes at dst + r·stride.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store8(Vector256<int> v0, Vector256<int> v1, Vector256<int> v2, Vector256<int> v3,
                              Vector256<int> v4, Vector256<int> v5, Vector256<int> v6, Vector256<int> v7, byte* dst, long stride)
    {
        var t0 = Avx2.UnpackLow(v0, v1); var t1 = Avx2.UnpackHigh(v0, v1);
        var t2 = Avx2.UnpackLow(v2, v3); var t3 = Avx2.UnpackHigh(v2, v3);
        var t4 = Avx2.UnpackLow(v4, v5); var t5 = Avx2.UnpackHigh(v4, v5);
        var t6 = Avx2.UnpackLow(v6, v7); var t7 = Avx2.UnpackHigh(v6, v7);
        var u0 = Avx2.UnpackLow(t0.AsInt64(), t2.AsInt64()).AsInt32(); var u1 = Avx2.UnpackHigh(t0.AsInt64(), t2.AsInt64()).AsInt32();
        var u2 = Avx2.UnpackLow(t1.AsInt64(), t3.AsInt64()).AsInt32(); var u3 = Avx2.UnpackHigh(t1.AsInt64(), t3.AsInt64()).AsInt32();
        var u4 = Avx2.UnpackLow(t4.AsInt64(), t6.AsInt64()).AsInt32(); var u5 = Avx2.UnpackHigh(t4.AsInt64(), t6.AsInt64()).AsInt32();
        var u6 = Avx2.UnpackLow(t5.AsInt64(), t7.AsInt64()).AsInt32(); var u7 = Avx2.UnpackHigh(t5.AsInt64(), t7.AsInt64()).AsInt32();
        Vector256.Store(Avx2.Permute2x128(u0, u4, 0x20), (int*)dst);
        Vector256.Store(Avx2.Permute2x128(u1, u5, 0x20), (int*)(dst + stride));
        Vector256.Store(Avx2.Permute2x128(u2, u6, 0x20), (int*)(dst + 2 * stride));
        Vector256.Store(Avx2.Permute2x128(u3, u7, 0x20), (int*)(dst + 3 * stride));
        Vector256.Store(Avx2.Permute2x128(u0, u4, 0x31), (int*)(dst + 4 * stride));
        Vector256.Store(Avx2.Permute2x128(u1, u5, 0x31), (int*)(dst + 5 * stride));
        Vector256.Store(Avx2.Permute2x128(u2, u6, 0x31), (int*)(dst + 6 * stride));
        Vector256.Store(Avx2.Permute2x128(u3, u7, 0x31), (int*)(dst + 7 * stride));
    }
}
