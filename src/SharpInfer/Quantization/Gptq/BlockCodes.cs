using SharpInfer.Tensors;

namespace SharpInfer.Quantization.Gptq;

/// <summary>
/// The integer codes inside one block of a linear ggml format, read and written in place: what GPTQ needs to round
/// each weight onto a block grid the format's own quantizer chose and then store the result as an ordinary block.
/// Every type here dequantizes as <c>value = offset_e + code_e · step_e</c> (offset and step fixed per sub-block by the
/// block's scales), so the grid of element e follows from decoding the block with all codes 0 and with all codes 1.
/// </summary>
internal static class BlockCodes
{
    /// <summary>True for the types GPTQ can round into.</summary>
    public static bool IsSupported(GgmlType type) => type is GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1
        or GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>The largest code (codes are 0..MaxCode, stored unsigned; the signed types subtract their offset on decode).</summary>
    public static int MaxCode(GgmlType type) => type switch
    {
        GgmlType.Q2_K => 3,
        GgmlType.Q3_K => 7,
        GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q4_K => 15,
        GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q5_K => 31,
        GgmlType.Q6_K => 63,
        _ => throw new ArgumentException($"GPTQ cannot round into {GgmlTypeInfo.Name(type)}", nameof(type)),
    };

    /// <summary>Writes code <paramref name="u"/> (0..MaxCode) of element <paramref name="e"/> into <paramref name="block"/>.</summary>
    public static void Set(GgmlType type, Span<byte> block, int e, int u)
    {
        switch (type)
        {
            case GgmlType.Q4_0: Bits(block, 2 + (e & 15), 4 * (e >> 4), 4, u); break;
            case GgmlType.Q4_1: Bits(block, 4 + (e & 15), 4 * (e >> 4), 4, u); break;
            case GgmlType.Q5_0:
                Bits(block, 6 + (e & 15), 4 * (e >> 4), 4, u);
                Bits(block, 2 + (e >> 3), e & 7, 1, u >> 4);
                break;
            case GgmlType.Q5_1:
                Bits(block, 8 + (e & 15), 4 * (e >> 4), 4, u);
                Bits(block, 4 + (e >> 3), e & 7, 1, u >> 4);
                break;
            case GgmlType.Q2_K: Bits(block, 16 + (e >> 7) * 32 + (e & 31), 2 * ((e & 127) >> 5), 2, u); break;
            case GgmlType.Q3_K:
                Bits(block, 32 + (e >> 7) * 32 + (e & 31), 2 * ((e & 127) >> 5), 2, u);
                Bits(block, e & 31, e >> 5, 1, u >> 2);
                break;
            case GgmlType.Q4_K: Bits(block, 16 + (e >> 6) * 32 + (e & 31), 4 * ((e >> 5) & 1), 4, u); break;
            case GgmlType.Q5_K:
                Bits(block, 48 + (e >> 6) * 32 + (e & 31), 4 * ((e >> 5) & 1), 4, u);
                Bits(block, 16 + (e & 31), e >> 5, 1, u >> 4);
                break;
            case GgmlType.Q6_K:
                int h = e >> 7, k = (e >> 5) & 3, l = e & 31;
                Bits(block, 64 * h + l + 32 * (k & 1), 4 * (k >> 1), 4, u);
                Bits(block, 128 + 32 * h + l, 2 * k, 2, u >> 4);
                break;
            default: throw new ArgumentException($"GPTQ cannot round into {GgmlTypeInfo.Name(type)}", nameof(type));
        }
    }

    private static void Bits(Span<byte> block, int index, int shift, int width, int value)
    {
        int mask = ((1 << width) - 1) << shift;
        block[index] = (byte)((block[index] & ~mask) | ((value << shift) & mask));
    }

    /// <summary>The grid of each element of an encoded block: value = offset[e] + code · step[e]. <paramref name="scratch"/>
    /// holds a copy of the block (its codes are overwritten).</summary>
    public static void Grid(GgmlType type, ReadOnlySpan<byte> block, Span<byte> scratch, Span<float> offset, Span<float> step)
    {
        int n = offset.Length;
        block.CopyTo(scratch);
        for (int e = 0; e < n; e++) Set(type, scratch, e, 0);
        Dequantize.Row(type, scratch, offset);
        for (int e = 0; e < n; e++) Set(type, scratch, e, 1);
        Dequantize.Row(type, scratch, step);
        for (int e = 0; e < n; e++) step[e] -= offset[e];
    }
}
