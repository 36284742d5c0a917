namespace SharpInfer.Tensors;

// TEMPORARY: replaced by the full reference dequantizers (branch quant) at merge.
public static class Dequantize
{
    public static bool IsSupported(GgmlType t) => t is GgmlType.F32 or GgmlType.F16 or GgmlType.Q8_0;

    public static void Row(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case GgmlType.F32:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(src)[..dst.Length].CopyTo(dst);
                break;
            case GgmlType.F16:
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)h[i];
                break;
            case GgmlType.Q8_0:
                for (int b = 0; b < dst.Length / 32; b++)
                {
                    var blk = src.Slice(b * 34, 34);
                    float d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(blk));
                    for (int j = 0; j < 32; j++) dst[b * 32 + j] = d * (sbyte)blk[2 + j];
                }
                break;
            default: throw new ArgumentException($"unsupported {type}");
        }
    }
}
