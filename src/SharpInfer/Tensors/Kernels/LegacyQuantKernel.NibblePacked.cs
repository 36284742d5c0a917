using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>
/// The 4-bit formats (Q4_0, Q4_1, IQ4_NL, MXFP4) packed at load, still 4 bits a weight: groups of 8 rows, and per
/// 32-column block (<see cref="NibbleGroupBytes"/> = 8 blocks' bytes, so the copy is exactly as large as the rows):
/// <list type="bullet">
/// <item>128 bytes of nibbles in 4 vectors: dword r of vector j is row r's nibble bytes 4j..4j+3, i.e. its elements
/// 4j..4j+3 in the low nibbles and 16+4j..16+4j+3 in the high ones;</item>
/// <item>then the 8 rows' block heads (the bytes before the nibbles: d, or d and m), row after row.</item>
/// </list>
/// Decode (1–2 tokens) then needs no horizontal reduction and no gather of scales: lane r of every vector is row r,
/// each nibble vector gives two code vectors with one AND and one shift, each multiplied by a broadcast of 4
/// activation bytes, and the 8 heads arrive in one zero-extending load. Prefill makes the per-call pack of the
/// tiles from it with the same two operations per vector (the layout is that pack's, before unpacking).
/// Same exact integer sums and the same float steps as the mapped-row paths: same bits.
/// </summary>
internal static unsafe partial class LegacyQuantKernel<TF> where TF : struct, ILegacyBlockFormat
{
    /// <summary>Rows per group of the nibble layout (every instruction level with tiles reads the same one).</summary>
    public const int NibbleGroupRows = 8;

    /// <summary>The format keeps its nibbles after a head of <see cref="ILegacyBlockFormat.QsOffset"/> bytes that holds
    /// everything else (d, m or the E8M0 exponent): it can be packed as nibbles.</summary>
    public static bool NibblePackable => TF.PlainNibbles && TF.QsOffset + 16 == TF.BlockBytes && TF.QsOffset is 1 or 2 or 4;

    /// <summary>Bytes of one 8-row, 32-column block group.</summary>
    private static int NibbleGroupBytes { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => 8 * TF.BlockBytes; }

    /// <summary>Codes of at most 15 (Q4_0, Q4_1): the 8 vpmaddubsw results of a block add up in int16 exactly
    /// (8 · 2 · 15 · 127 = 30,480 &lt; 32,768), one vpmaddwd per block instead of eight.</summary>
    private static bool Int16BlockSums
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => TF.Offset <= 8 && !TF.WideCodes && !AvxVnni.IsSupported && !SignDot;
    }

    /// <summary>Bytes of a matrix in the nibble layout (the last group padded to 8 rows).</summary>
    public static long NibblePackedBytes(int rows, int cols) => (long)((rows + 7) / 8) * (cols / 32) * NibbleGroupBytes;

    /// <summary>Writes row groups [<paramref name="g0"/>, <paramref name="g1"/>) of <paramref name="w"/> into its nibble
    /// copy at <paramref name="dst"/> (the last group's missing rows alias its last real row).</summary>
    public static void PackNibbles(WeightMatrix w, int g0, int g1, byte* dst)
    {
        int nb = w.Cols / 32, h = TF.QsOffset, bb = TF.BlockBytes;
        byte** rows = stackalloc byte*[8];
        for (int g = g0; g < g1; g++)
        {
            for (int i = 0; i < 8; i++) rows[i] = w.Row(Math.Min(g * 8 + i, w.Rows - 1));
            byte* grp = dst + (long)g * nb * NibbleGroupBytes;
            for (int b = 0; b < nb; b++)
            {
                byte* o = grp + (long)b * NibbleGroupBytes;
                for (int i = 0; i < 8; i++)
                {
                    byte* blk = rows[i] + (long)b * bb;
                    for (int j = 0; j < 4; j++) *(uint*)(o + 32 * j + 4 * i) = *(uint*)(blk + h + 4 * j);
                    for (int k = 0; k < h; k++) o[128 + h * i + k] = blk[k];
                }
            }
        }
    }

    /// <summary>Row <paramref name="r"/>'s blocks back in the file's layout, from the nibble copy (embedding lookups of
    /// a tied output matrix read the copy: its mapped pages were released at load, and faulting them back in, with
    /// the kernel's fault-around, would grow resident memory with every distinct token).</summary>
    public static void CopyRowFromNibbles(WeightMatrix w, int r, byte* dst)
    {
        int nb = w.Cols / 32, h = TF.QsOffset, i = r % 8;
        byte* grp = NibbleGroup(w, r, nb);
        for (int b = 0; b < nb; b++)
        {
            byte* o = grp + (long)b * NibbleGroupBytes;
            byte* blk = dst + (long)b * TF.BlockBytes;
            for (int k = 0; k < h; k++) blk[k] = o[128 + h * i + k];
            for (int j = 0; j < 4; j++) *(uint*)(blk + h + 4 * j) = *(uint*)(o + 32 * j + 4 * i);
        }
    }

    /// <summary>The matrix is packed in the nibble layout and the row range starts at a group.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool ReadsNibblePacked(WeightMatrix w, int r0) =>
        NibblePackable && w.Packed != null && w.PackRows == NibbleGroupRows && r0 % NibbleGroupRows == 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte* NibbleGroup(WeightMatrix w, int r, int nb) => w.Packed + (long)(r / 8) * nb * NibbleGroupBytes;

    /// <summary>The 8 rows' block heads as one int per lane (the first 4 bytes of each block, as the mapped-row paths
    /// read them; only the head bytes are used by <see cref="ILegacyBlockFormat.Scales"/> and the minimum).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> NibbleHeads(byte* heads) =>
        TF.QsOffset == 4 ? Vector256.Load((int*)heads)
        : TF.QsOffset == 2 ? Avx2.ConvertToVector256Int32((ushort*)heads)
        : Avx2.ConvertToVector256Int32(heads);

    /// <summary>How far ahead of the block it reads the decode kernel prefetches (prefetches never fault, so running
    /// past the copy's end is harmless): 2 KiB on the AVX2 level (Zen 3, kernel-micro: better than 1 or 4 KiB), 4 KiB
    /// on AVX-512 (Zen 5, llama3.2-1b q4_0 tg128 in six alternated pairs: +11% over 2 KiB, 8 KiB between the two;
    /// docs/benchmarks.md). The newer server cores keep more lines in flight.</summary>
    private static int NibblePrefetchBytes(IsaLevel level) => level >= IsaLevel.Avx512 ? 4096 : 2048;

    /// <summary>8 packed rows (n real) × 1 token.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Gemv8Nibbles(byte* grp, int n, in ActivationView x, int t, int nb, float* y, int prefetch)
    {
        sbyte* xq = x.Q + (long)t * x.Cols;
        float* xd = x.D + (long)t * nb;
        float* xs = x.S + (long)t * nb;
        int* sums = x.Sums + (long)t * nb;
        var m = Vector256.Create((byte)0x0F);
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            byte* p = grp + (long)b * NibbleGroupBytes;
            // each of this block's cache lines gets its prefetch, 14 or 28 blocks ahead (without it, 1.1–1.5× slower in
            // kernel-micro on Zen 3: the hardware prefetcher alone leaves it waiting)
            Sse.Prefetch0(p + prefetch); Sse.Prefetch0(p + prefetch + 64); Sse.Prefetch0(p + prefetch + 128);
            sbyte* xb = xq + b * 32;
            var q0 = Vector256.Load(p); var q1 = Vector256.Load(p + 32);
            var q2 = Vector256.Load(p + 64); var q3 = Vector256.Load(p + 96);
            Vector256<int> isum;
            if (Int16BlockSums)
            {
                var s = Avx2.MultiplyAddAdjacent(TF.MapNibbles(q0 & m), Bcast4(xb));
                s = Avx2.Add(s, Avx2.MultiplyAddAdjacent(TF.MapNibbles(q1 & m), Bcast4(xb + 4)));
                s = Avx2.Add(s, Avx2.MultiplyAddAdjacent(TF.MapNibbles(q2 & m), Bcast4(xb + 8)));
                s = Avx2.Add(s, Avx2.MultiplyAddAdjacent(TF.MapNibbles(q3 & m), Bcast4(xb + 12)));
                s = Avx2.Add(s, Avx2.MultiplyAddAdjacent(TF.MapNibbles(HighNibbles(q0)), Bcast4(xb + 16)));
                s = Avx2.Add(s, Avx2.MultiplyAddAdjacent(TF.MapNibbles(HighNibbles(q1)), Bcast4(xb + 20)));
                s = Avx2.Add(s, Avx2.MultiplyAddAdjacent(TF.MapNibbles(HighNibbles(q2)), Bcast4(xb + 24)));
                s = Avx2.Add(s, Avx2.MultiplyAddAdjacent(TF.MapNibbles(HighNibbles(q3)), Bcast4(xb + 28)));
                isum = Avx2.Add(Seed(sums, b), Avx2.MultiplyAddAdjacent(s, Vector256.Create((short)1)));
            }
            else
            {
                var a = Dot(Seed(sums, b), TF.MapNibbles(q0 & m), Bcast4(xb));
                var c = Dot(Vector256<int>.Zero, TF.MapNibbles(HighNibbles(q0)), Bcast4(xb + 16));
                a = Dot(a, TF.MapNibbles(q1 & m), Bcast4(xb + 4));
                c = Dot(c, TF.MapNibbles(HighNibbles(q1)), Bcast4(xb + 20));
                a = Dot(a, TF.MapNibbles(q2 & m), Bcast4(xb + 8));
                c = Dot(c, TF.MapNibbles(HighNibbles(q2)), Bcast4(xb + 24));
                a = Dot(a, TF.MapNibbles(q3 & m), Bcast4(xb + 12));
                c = Dot(c, TF.MapNibbles(HighNibbles(q3)), Bcast4(xb + 28));
                isum = Avx2.Add(a, c);
            }
            var heads = NibbleHeads(p + 128);
            acc = Fma.MultiplyAdd(Avx.Multiply(TF.Scales(heads), Vector256.Create(xd[b])), Avx.ConvertToVector256Single(isum), acc);
            if (TF.HasMin) acc = Fma.MultiplyAdd(HalfToFloat(Avx2.ShiftRightLogical(heads, 16)), Vector256.Create(xs[b]), acc);
        }
        Store8(acc, y, n);
    }

    /// <summary>The tiles' per-call pack (see <see cref="Repack"/>) from the nibble layout: groups g (and g + 1 when
    /// <paramref name="groups"/> is 2) of the matrix, starting at row <paramref name="r"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RepackNibbles(WeightMatrix w, int r, int nb, byte* pack, int groups)
    {
        byte* g0 = NibbleGroup(w, r, nb);
        byte* g1 = groups == 2 && r + 8 < w.Rows ? NibbleGroup(w, r + 8, nb) : g0;
        int stride = PackStride * groups, step = 32 * groups;
        for (int b = 0; b < nb; b++)
        {
            byte* dst = pack + (long)b * stride;
            long o = (long)b * NibbleGroupBytes;
            UnpackNibbleBlock(g0 + o, dst, step);
            if (groups == 2) UnpackNibbleBlock(g1 + o, dst + 32, step);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void UnpackNibbleBlock(byte* p, byte* dst, int step)
    {
        var m = Vector256.Create((byte)0x0F);
        for (int j = 0; j < 4; j++)
        {
            var q = Vector256.Load(p + 32 * j);
            Vector256.Store(StoredMapped(q & m), dst + j * step);
            Vector256.Store(StoredMapped(HighNibbles(q)), dst + (4 + j) * step);
        }
        var heads = NibbleHeads(p + 128);
        Vector256.Store(TF.Scales(heads), (float*)(dst + 8 * step));
        if (TF.HasMin) Vector256.Store(HalfToFloat(Avx2.ShiftRightLogical(heads, 16)), (float*)(dst + 9 * step));
    }
}
