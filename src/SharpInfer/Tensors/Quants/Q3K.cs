using System.Runtime.InteropServices;

namespace SharpInfer.Tensors;

// Q3_K: 256 weights in 16 sub-blocks of 16; w = d·(s_j − 32)·(q − 4), q ∈ [0, 7], s_j a 6-bit scale.
// The low two bits of q use Q2_K's qs packing; the third bit of element e is bit e/32 of hmask[e%32].
// The sixteen 6-bit scales are packed into 12 bytes: low nibbles of s_0..s_7 in the low nibbles of bytes
// 0..7, low nibbles of s_8..s_15 in the high nibbles of bytes 0..7, and the top two bits of s_j in bits
// 2·(j/4)..2·(j/4)+1 of byte 8 + j%4.

/// <summary>ggml's block_q3_K (110 bytes); d is last.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ3_K
{
    public const int QK = 256, Size = 110, OffsetHMask = 0, OffsetQs = 32, OffsetScales = 96, OffsetD = 108;
    public Bytes32 HMask;
    public Bytes64 Qs;
    public Bytes12 Scales;
    public ushort D;

    /// <summary>The signed scale s_j − 32 of sub-block j (elements 16j..16j+15), j = 0..15.</summary>
    public static int Scale(ReadOnlySpan<byte> scales, int j)
    {
        int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
        int high = (scales[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
        return (low | (high << 4)) - 32;
    }

    /// <summary>The signed code q − 4 ∈ [−4, 3] of element <paramref name="e"/>: the high bit set means "no −4".</summary>
    public static int Code(ReadOnlySpan<byte> qs, ReadOnlySpan<byte> hmask, int e) =>
        BlockQ2_K.Code(qs, e) - ((hmask[e & 31] >> (e >> 5) & 1) != 0 ? 0 : 4);
}

internal static partial class Dequantize
{
    public static void Q3_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ3_K>(src, dst.Length, GgmlType.Q3_K);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var b = ref blocks[i];
            float dAll = Fp16.ToFloat(b.D);
            ReadOnlySpan<byte> scales = b.Scales, qs = b.Qs, hmask = b.HMask;
            var y = dst.Slice(i * 256, 256);
            for (int j = 0; j < 16; j++)
            {
                float dl = dAll * BlockQ3_K.Scale(scales, j);
                for (int e = 16 * j; e < 16 * j + 16; e++) y[e] = dl * BlockQ3_K.Code(qs, hmask, e);
            }
        }
    }
}

internal static partial class Quantize
{
    /// <summary>quantize_row_q3_K_ref: per sub-block make_q3_quants(nmax 4, x²-weighted descent); the 16
    /// signed scales are quantized to 6 bits against the one of largest magnitude (d = −max/32 as
    /// 1/iscale); codes recomputed from the stored values.</summary>
    public static void Q3_K(ReadOnlySpan<float> src, Span<byte> dst)
    {
        var blocks = QuantRows.Blocks<BlockQ3_K>(dst, src.Length, GgmlType.Q3_K);
        Span<sbyte> codes = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = src.Slice(i * 256, 256);
            ref var b = ref blocks[i];
            float maxScale = 0f, amax = 0f;
            for (int j = 0; j < 16; j++)
            {
                scales[j] = KQuantSearch.MakeQ3Quants(x.Slice(16 * j, 16), 4, codes.Slice(16 * j, 16), true);
                float a = MathF.Abs(scales[j]);
                if (a > amax) { amax = a; maxScale = scales[j]; }
            }

            Span<byte> sc = b.Scales;
            sc.Clear();
            if (maxScale != 0f)
            {
                float iscale = -32f / maxScale;
                for (int j = 0; j < 16; j++)
                {
                    int l = (sbyte)QuantMath.NearestInt(iscale * scales[j]); // ggml stores it in an int8_t first
                    l = Math.Max(-32, Math.Min(31, l)) + 32;
                    if (j < 8) sc[j] = (byte)(l & 0xF);
                    else sc[j - 8] |= (byte)((l & 0xF) << 4);
                    sc[8 + (j & 3)] |= (byte)((l >> 4) << (2 * (j >> 2)));
                }
                b.D = Fp16.FromFloat(1f / iscale);
            }
            else
            {
                b.D = Fp16.FromFloat(0f);
            }

            float dAll = Fp16.ToFloat(b.D);
            for (int j = 0; j < 16; j++)
            {
                float d = dAll * BlockQ3_K.Scale(sc, j);
                if (d == 0f) continue;
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = QuantMath.NearestInt(x[16 * j + ii] / d);
                    codes[16 * j + ii] = (sbyte)(Math.Max(-4, Math.Min(3, l)) + 4);
                }
            }

            Span<byte> hmask = b.HMask;
            hmask.Clear();
            for (int e = 0; e < 256; e++)
            {
                if (codes[e] > 3)
                {
                    hmask[e & 31] |= (byte)(1 << (e >> 5));
                    codes[e] -= 4;
                }
            }
            Span<byte> qs = b.Qs;
            for (int half = 0; half < 2; half++)
                for (int l = 0; l < 32; l++)
                {
                    int e = half * 128 + l;
                    qs[half * 32 + l] = (byte)((byte)codes[e] | ((byte)codes[e + 32] << 2) | ((byte)codes[e + 64] << 4) | ((byte)codes[e + 96] << 6));
                }
        }
    }
}

internal static partial class ReferenceDot
{
    /// <summary>ggml_vec_dot_q3_K_q8_K (generic), the "8 lanes" form shared by Q3_K..Q6_K: an int32
    /// accumulator per lane l = e % 8 collects (s_j − 32)·q8[e]·(q[e] − 4) over the super-block (exact
    /// integers, so order within a lane doesn't matter); then, per lane, sums[l] += (dx·dy)·(float)aux32[l],
    /// with the 8 float lanes carried across all super-blocks and added in lane order 0..7 at the very end.</summary>
    public static float Q3_K_Q8_K(ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        var xb = BlocksFor<BlockQ3_K>(w, GgmlType.Q3_K, out int n);
        var yb = QuantRows.Blocks<BlockQ8_K>(x, n, GgmlType.Q8_K);
        Span<float> sums = stackalloc float[8];
        sums.Clear();
        Span<int> aux32 = stackalloc int[8];
        for (int i = 0; i < xb.Length; i++)
        {
            ReadOnlySpan<byte> scales = xb[i].Scales, qs = xb[i].Qs, hmask = xb[i].HMask;
            ReadOnlySpan<sbyte> q8 = yb[i].Qs;
            aux32.Clear();
            for (int j = 0; j < 16; j++)
            {
                int scale = BlockQ3_K.Scale(scales, j);
                for (int e = 16 * j; e < 16 * j + 16; e++) aux32[e & 7] += scale * (q8[e] * BlockQ3_K.Code(qs, hmask, e));
            }
            float d = Fp16.ToFloat(xb[i].D) * yb[i].D;
            for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
        }
        float sumf = 0f;
        for (int l = 0; l < 8; l++) sumf += sums[l];
        return sumf;
    }
}
