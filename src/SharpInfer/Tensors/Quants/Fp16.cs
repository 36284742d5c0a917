namespace SharpInfer.Tensors;

/// <summary>IEEE binary16 conversions with ggml's exact semantics.</summary>
/// <remarks>
/// ggml converts half to float exactly (every half is representable as a float), and float to half with
/// round-to-nearest-even, overflow to ±infinity and subnormal results kept. The only place where ggml
/// differs from a plain IEEE conversion is NaN: ggml returns the canonical quiet NaN 0x7E00 (with the
/// input's sign) rather than keeping payload bits, so we special-case it.
/// </remarks>
internal static class Fp16
{
    private static readonly float[] Table = BuildTable();

    private static float[] BuildTable()
    {
        var t = new float[65536];
        for (int i = 0; i < t.Length; i++) t[i] = (float)BitConverter.UInt16BitsToHalf((ushort)i);
        return t;
    }

    /// <summary>Exact widening of the half with bits <paramref name="bits"/> to float, through a 256 KiB table
    /// (one load in hot loops, as ggml's CPU backend does).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort bits) =>
        System.Runtime.CompilerServices.Unsafe.Add(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(Table), bits);

    /// <summary>Round-to-nearest-even narrowing, as ggml's <c>GGML_FP32_TO_FP16</c>.</summary>
    public static ushort FromFloat(float value)
    {
        if (float.IsNaN(value))
        {
            uint sign = BitConverter.SingleToUInt32Bits(value) >> 31;
            return (ushort)((sign << 15) | 0x7E00);
        }
        return BitConverter.HalfToUInt16Bits((Half)value);
    }

    /// <summary>Rounds <paramref name="value"/> through half precision (what storing it in a ggml_half does).</summary>
    public static float Round(float value) => ToFloat(FromFloat(value));
}

/// <summary>bfloat16 conversions with ggml's exact semantics.</summary>
internal static class Bf16
{
    /// <summary>bf16 is the top half of a float32, so widening is a 16-bit shift.</summary>
    public static float ToFloat(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>ggml's <c>ggml_compute_fp32_to_bf16</c>: round-to-nearest-even on the low 16 bits (overflow
    /// carries into the exponent, so large values become infinity); NaN is forced quiet by setting bit 6.</summary>
    public static ushort FromFloat(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
    }
}
