using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

/// <summary>Views a row of bytes as an array of blocks, after checking the lengths agree.</summary>
/// <remarks>All block structs are little-endian, byte-packed images of ggml's C structs; every platform
/// .NET runs on is little-endian, and unaligned loads are fine on x64 and arm64.</remarks>
internal static class QuantRows
{
    public static ReadOnlySpan<T> Blocks<T>(ReadOnlySpan<byte> bytes, int elements, GgmlType type) where T : unmanaged
    {
        int nb = BlockCount(elements, type);
        int size = Unsafe.SizeOf<T>();
        if (bytes.Length != (long)nb * size)
            throw new ArgumentException(
                $"{GgmlTypeInfo.Name(type)}: {elements} elements take {(long)nb * size} bytes, got {bytes.Length}");
        return MemoryMarshal.Cast<byte, T>(bytes);
    }

    public static Span<T> Blocks<T>(Span<byte> bytes, int elements, GgmlType type) where T : unmanaged
    {
        int nb = BlockCount(elements, type);
        int size = Unsafe.SizeOf<T>();
        if (bytes.Length != (long)nb * size)
            throw new ArgumentException(
                $"{GgmlTypeInfo.Name(type)}: {elements} elements take {(long)nb * size} bytes, got {bytes.Length}");
        return MemoryMarshal.Cast<byte, T>(bytes);
    }

    /// <summary>Number of blocks in a row of <paramref name="elements"/> elements (must be a whole number).</summary>
    public static int BlockCount(int elements, GgmlType type)
    {
        int qk = GgmlTypeInfo.BlockSize(type);
        if (elements % qk != 0)
            throw new ArgumentException($"{GgmlTypeInfo.Name(type)}: row length {elements} is not a multiple of the block size {qk}");
        return elements / qk;
    }

    /// <summary>Number of elements in a row of <paramref name="byteLength"/> bytes (must be whole blocks).</summary>
    public static int ElementCount(int byteLength, GgmlType type)
    {
        int ts = GgmlTypeInfo.TypeSize(type);
        if (byteLength % ts != 0)
            throw new ArgumentException($"{GgmlTypeInfo.Name(type)}: {byteLength} bytes is not a whole number of {ts}-byte blocks");
        return byteLength / ts * GgmlTypeInfo.BlockSize(type);
    }
}
