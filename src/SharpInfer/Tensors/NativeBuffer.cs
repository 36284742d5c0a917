using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

/// <summary>A 64-byte-aligned native array of T, zero-initialized, freed on dispose. Used for activations and
/// scratch so hot paths work with stable pointers and the GC never moves or scans them.</summary>
internal sealed unsafe class NativeBuffer<T> : IDisposable where T : unmanaged
{
    public T* Pointer { get; private set; }
    public long Length { get; }

    public NativeBuffer(long length)
    {
        Length = length;
        nuint bytes = (nuint)(Math.Max(1, length) * sizeof(T));
        Pointer = (T*)NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(Pointer, bytes);
    }

    public Span<T> Span => new(Pointer, checked((int)Length));
    public Span<T> Slice(long start, int length) => new(Pointer + start, length);

    public void Dispose()
    {
        if (Pointer == null) return;
        NativeMemory.AlignedFree(Pointer);
        Pointer = null;
        GC.SuppressFinalize(this);
    }

    ~NativeBuffer() => Dispose();
}
