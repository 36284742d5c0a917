using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

// F32, F16 and BF16 rows: plain little-endian arrays, one element per "block".

internal static partial class Dequantize
{
    public static void F32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        CheckLength(GgmlType.F32, src.Length, dst.Length);
        MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
    }

    /// <summary>Exact: every half is a float.</summary>
    public static void F16(ReadOnlySpan<byte> src, Span<float> dst)
    {
        CheckLength(GgmlType.F16, src.Length, dst.Length);
        var h = MemoryMarshal.Cast<byte, ushort>(src);
        for (int i = 0; i < h.Length; i++) dst[i] = Fp16.ToFloat(h[i]);
    }

    /// <summary>Exact: a 16-bit shift.</summary>
    public static void BF16(ReadOnlySpan<byte> src, Span<float> dst)
    {
        CheckLength(GgmlType.BF16, src.Length, dst.Length);
        var h = MemoryMarshal.Cast<byte, ushort>(src);
        for (int i = 0; i < h.Length; i++) dst[i] = Bf16.ToFloat(h[i]);
    }

    private static void CheckLength(GgmlType type, int bytes, int elements)
    {
        long expected = GgmlTypeInfo.RowSize(type, elements);
        if (bytes != expected)
            throw new ArgumentException($"{GgmlTypeInfo.Name(type)}: {elements} elements take {expected} bytes, got {bytes}");
    }
}

internal static partial class Quantize
{
    public static void F32(ReadOnlySpan<float> src, Span<byte> dst)
    {
        CheckLength(GgmlType.F32, src.Length, dst.Length);
        MemoryMarshal.AsBytes(src).CopyTo(dst);
    }

    /// <summary>ggml_fp32_to_fp16_row: round to nearest even per element.</summary>
    public static void F16(ReadOnlySpan<float> src, Span<byte> dst)
    {
        CheckLength(GgmlType.F16, src.Length, dst.Length);
        var h = MemoryMarshal.Cast<byte, ushort>(dst);
        for (int i = 0; i < src.Length; i++) h[i] = Fp16.FromFloat(src[i]);
    }

    /// <summary>ggml_fp32_to_bf16_row_ref: round to nearest even per element (what GGUF writers use).</summary>
    public static void BF16(ReadOnlySpan<float> src, Span<byte> dst)
    {
        CheckLength(GgmlType.BF16, src.Length, dst.Length);
        var h = MemoryMarshal.Cast<byte, ushort>(dst);
        for (int i = 0; i < src.Length; i++) h[i] = Bf16.FromFloat(src[i]);
    }

    private static void CheckLength(GgmlType type, int elements, int bytes)
    {
        long expected = GgmlTypeInfo.RowSize(type, elements);
        if (bytes != expected)
            throw new ArgumentException($"{GgmlTypeInfo.Name(type)}: {elements} elements take {expected} bytes, got {bytes}");
    }
}

internal static partial class ReferenceDot
{
    /// <summary>ggml_vec_dot_f32's scalar path: each product rounded to float, accumulated in double
    /// (ggml_float), the total rounded to float once at the end.</summary>
    public static float F32_F32(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var a = MemoryMarshal.Cast<byte, float>(w);
        var b = MemoryMarshal.Cast<byte, float>(x);
        CheckSameLength(GgmlType.F32, w.Length, x.Length);
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += (float)(a[i] * b[i]);
        return (float)sum;
    }

    /// <summary>ggml_vec_dot_f16's scalar path (activations converted to F16 first): float products, double sum.</summary>
    public static float F16_F16(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var a = MemoryMarshal.Cast<byte, ushort>(w);
        var b = MemoryMarshal.Cast<byte, ushort>(x);
        CheckSameLength(GgmlType.F16, w.Length, x.Length);
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += (float)(Fp16.ToFloat(a[i]) * Fp16.ToFloat(b[i]));
        return (float)sum;
    }

    /// <summary>ggml_vec_dot_bf16's scalar path: float products, double sum.</summary>
    public static float BF16_BF16(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var a = MemoryMarshal.Cast<byte, ushort>(w);
        var b = MemoryMarshal.Cast<byte, ushort>(x);
        CheckSameLength(GgmlType.BF16, w.Length, x.Length);
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += (float)(Bf16.ToFloat(a[i]) * Bf16.ToFloat(b[i]));
        return (float)sum;
    }

    private static void CheckSameLength(GgmlType type, int wBytes, int xBytes)
    {
        QuantRows.ElementCount(wBytes, type);
        if (wBytes != xBytes)
            throw new ArgumentException($"{GgmlTypeInfo.Name(type)}: weight row has {wBytes} bytes, activations {xBytes}");
    }
}
