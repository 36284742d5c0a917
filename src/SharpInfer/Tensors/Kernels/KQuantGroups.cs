using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors.Kernels;

/// <summary>What <see cref="KQuantGroups"/> needs from one 8-row interleaved K-quant layout (<see cref="Q4_KInterleaved"/>,
/// <see cref="Q5_KInterleaved"/>, <see cref="Q6_KInterleaved"/>).</summary>
internal unsafe interface IKQuantGroupLayout
{
    /// <summary>Bytes of one 256-column super-block of a group (8 rows).</summary>
    static abstract int GroupBlockBytes { get; }
    /// <summary>Bytes of one super-block of a row as <see cref="UnpackGroup"/> writes it for the prefill tiles.</summary>
    static abstract int RowBlockBytes { get; }
    /// <summary>8 rows of a group (n real) × token t: y[r] for r &lt; n.</summary>
    static abstract void Gemv8(byte* grp, int n, in ActivationView x, int t, int nb, float* y);
    /// <summary>The group's 8 rows as rows of <see cref="RowBlockBytes"/>-byte blocks at dst (row stride nb · RowBlockBytes).</summary>
    static abstract void UnpackGroup(byte* grp, int nb, byte* dst);
    /// <summary>The K-quant tiles on rows [0, r1) unpacked by <see cref="UnpackGroup"/>.</summary>
    static abstract void ComputeRows(KRows rows, int cols, string name, in ActivationView x, float* y, int yStride, int r1, IsaLevel level);
}

/// <summary>
/// The driver and vector pieces the 8-row interleaved K-quant layouts share. A layout keeps, per group of 8 rows and
/// 256-column super-block, the rows' code bytes transposed by dwords (a vector lane is a row) and their scales side by
/// side; its decode kernel (<see cref="IKQuantGroupLayout.Gemv8"/>) computes the 8 rows' dot products with no horizontal
/// sums. Prefill unpacks a panel of groups per call back into rows and runs the <see cref="KQuant{TF}"/> tiles on them.
/// </summary>
internal static unsafe class KQuantGroups
{
    public const int GroupRows = 8;

    /// <summary>How far ahead of the super-block it reads each decode kernel prefetches (prefetches never fault past the
    /// end): 8 KiB. Zen 3: 2 KiB slower, 4 and 8 KiB alike; Zen 5 (llama-1.1b-spm q4_k_m tg128, seven alternated pairs):
    /// 8 KiB 4–13% faster than 4 KiB in every pair, 16 KiB slower (docs/benchmarks.md).</summary>
    public const int DecodePrefetchBytes = 8192;

    /// <summary>The prefill panels' byte budget: ~160 KiB, well inside L2, so each token tile's activations (from L1) meet
    /// many rows per pass (8 rows a pass streamed every token's activations once per group from L3: pp512 10% slower),
    /// and a panel of any narrower matrix fits the scratch sized for the widest.</summary>
    private const int PanelBytes = 160 * 1024;

    /// <summary>The vector paths read a grouped layout when the row range starts at a group (as the matmul's tasks do).</summary>
    public static bool Reads(IsaLevel level, int r0) => level >= IsaLevel.Avx2 && Avx2.IsSupported && Fma.IsSupported && r0 % GroupRows == 0;

    /// <summary>Bytes of a matrix in a grouped layout (the last group padded to 8 rows).</summary>
    public static long PackedBytes<TL>(int rows, int cols) where TL : struct, IKQuantGroupLayout =>
        (long)((rows + GroupRows - 1) / GroupRows) * (cols / 256) * TL.GroupBlockBytes;

    /// <summary>Per-thread scratch of the prefill path.</summary>
    public static long ScratchFloats<TL>(int cols) where TL : struct, IKQuantGroupLayout =>
        cols < 256 ? 0 : Math.Max(PanelBytes, (long)GroupRows * (cols / 256) * TL.RowBlockBytes) / sizeof(float);

    private static int PanelRows(int nb, int rowBlockBytes) =>
        Math.Clamp(PanelBytes / (nb * rowBlockBytes) / GroupRows * GroupRows, GroupRows, 64);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte* Group<TL>(WeightMatrix w, int r, int nb) where TL : struct, IKQuantGroupLayout =>
        w.Packed + (long)(r / GroupRows) * nb * TL.GroupBlockBytes;

    /// <summary>Rows [r0, r1) × all tokens (r0 at a group, see <see cref="Reads"/>). Fewer tokens than a K-quant tile
    /// takes: the decode kernel per token, group by group (a group's later tokens read it from L1/L2). Otherwise each
    /// panel of groups is unpacked into <paramref name="scratch"/> and the tiles run on it.</summary>
    public static void Compute<TL>(WeightMatrix w, in ActivationView x, float* y, int yStride, int r0, int r1, IsaLevel level, float* scratch)
        where TL : struct, IKQuantGroupLayout
    {
        if (w.Cols % 256 != 0) throw new ArgumentException($"{w.Name}: {w.Cols} columns is not a multiple of 256");
        int nb = w.Cols / 256, T = x.Tokens;
        int tile = level >= IsaLevel.Avx512 && Avx512BW.IsSupported && Avx512F.VL.IsSupported ? 8 : 4;
        if (T < tile)
        {
            for (int g = r0; g < r1; g += GroupRows)
            {
                byte* grp = Group<TL>(w, g, nb);
                for (int t = 0; t < T; t++) TL.Gemv8(grp, Math.Min(GroupRows, r1 - g), x, t, nb, y + (long)t * yStride + g);
            }
            return;
        }
        byte* rows = (byte*)scratch;
        long rowBytes = (long)nb * TL.RowBlockBytes;
        int panel = PanelRows(nb, TL.RowBlockBytes);
        for (int p = r0; p < r1; p += panel)
        {
            int n = Math.Min(panel, r1 - p);
            for (int g = 0; g < n; g += GroupRows) TL.UnpackGroup(Group<TL>(w, p + g, nb), nb, rows + g * rowBytes);
            TL.ComputeRows(new KRows(rows, rowBytes), w.Cols, w.Name, x, y + p, yStride, n, level);
        }
    }

    /// <summary>Row i's bytes src[0, 4·dwords) into dword lane i of consecutive 32-byte vectors at dst (its dword d at
    /// dst + 32d + 4i): how every grouped layout stores a row's codes.</summary>
    public static void ToLane(byte* src, int dwords, byte* dst, int i)
    {
        for (int d = 0; d < dwords; d++) *(uint*)(dst + 32 * d + 4 * i) = *(uint*)(src + 4 * d);
    }

    /// <summary>The inverse of <see cref="ToLane"/>.</summary>
    public static void FromLane(byte* src, int i, int dwords, byte* dst)
    {
        for (int d = 0; d < dwords; d++) *(uint*)(dst + 4 * d) = *(uint*)(src + 32 * d + 4 * i);
    }

    /// <summary>Bytes of a Q4_K/Q5_K group's head: 8 rows' scale bytes (64), min bytes (64), d (16), dmin (16).</summary>
    public const int HeadBytes = 160;
    public const int HeadMins = 64, HeadD = 128, HeadDMin = 144;

    /// <summary>Row i's super-block head (block_q4_K/q5_K: d, dmin, the 12-byte 6-bit scale field) into a group's head:
    /// sc[i][j] at 32·(j / 4) + 4i + j % 4, m[i][j] at 64 + 16·(j / 2) + 2i + j % 2, the halves side by side.</summary>
    public static void PutHead(byte* blk, byte* head, int i)
    {
        *(ushort*)(head + HeadD + 2 * i) = *(ushort*)blk;
        *(ushort*)(head + HeadDMin + 2 * i) = *(ushort*)(blk + 2);
        var field = new ReadOnlySpan<byte>(blk + BlockQ4_K.OffsetScales, 12);
        for (int j = 0; j < 8; j++)
        {
            var (sc, m) = KScales.Get(field, j);
            head[32 * (j / 4) + 4 * i + j % 4] = (byte)sc;
            head[HeadMins + 16 * (j / 2) + 2 * i + j % 2] = (byte)m;
        }
    }

    /// <summary>The inverse of <see cref="PutHead"/> (the scale field re-encoded).</summary>
    public static void GetHead(byte* head, int i, byte* blk)
    {
        Span<byte> sc = stackalloc byte[8], m = stackalloc byte[8];
        *(ushort*)blk = *(ushort*)(head + HeadD + 2 * i);
        *(ushort*)(blk + 2) = *(ushort*)(head + HeadDMin + 2 * i);
        for (int j = 0; j < 8; j++)
        {
            sc[j] = head[32 * (j / 4) + 4 * i + j % 4];
            m[j] = head[HeadMins + 16 * (j / 2) + 2 * i + j % 2];
        }
        KScales.Pack(sc, m, new Span<byte>(blk + BlockQ4_K.OffsetScales, 12));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<sbyte> Bcast4(sbyte* p) => Vector256.Create(*(int*)p).AsSByte();

    /// <summary>int16 lanes (2i, 2i + 1) ← the unsigned byte sc[row of dword i][j] of a 32-byte scale vector (rows 0..3
    /// in the low 128-bit lane, 4..7 in the high one, four sub-blocks j % 4 side by side per row).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> ScaleWords(Vector256<byte> s, int j)
    {
        uint c = (uint)(j & 3) * 0x00010001u | 0x80008000u;
        var idx = Vector256.Create(c, c + 0x00040004u, c + 0x00080008u, c + 0x000C000Cu, c, c + 0x00040004u, c + 0x00080008u, c + 0x000C000Cu);
        return Avx2.Shuffle(s, idx.AsByte()).AsInt16();
    }

    /// <summary>acc + vpmaddwd(a, b) (one vpdpwssd with AVX-VNNI: the same exact int32 sums).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> MulAddWords(Vector256<int> acc, Vector256<short> a, Vector256<short> b) =>
        AvxVnni.IsSupported ? AvxVnni.MultiplyWideningAndAdd(acc, a, b) : Avx2.Add(acc, Avx2.MultiplyAddAdjacent(a, b));

    /// <summary>M = Σ_j m_j·(bsums[2j] + bsums[2j + 1]) for the 8 rows, mins stored as bytes m[r][j] at 16·(j / 2) + 2r
    /// + j % 2 (a zero-extending load gives the pairs (m[r][2k], m[r][2k + 1])); the pair sums fit int16 (|.| ≤ 32·128).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> MinsSum(byte* mins, short* bsums)
    {
        var pairs = Avx2.HorizontalAdd(Vector256.Load(bsums), Vector256.Load(bsums)).AsInt32();
        var m = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(mins), Avx2.PermuteVar8x32(pairs, Vector256.Create(0)).AsInt16());
        m = MulAddWords(m, Avx2.ConvertToVector256Int16(mins + 16), Avx2.PermuteVar8x32(pairs, Vector256.Create(1)).AsInt16());
        m = MulAddWords(m, Avx2.ConvertToVector256Int16(mins + 32), Avx2.PermuteVar8x32(pairs, Vector256.Create(4)).AsInt16());
        return MulAddWords(m, Avx2.ConvertToVector256Int16(mins + 48), Avx2.PermuteVar8x32(pairs, Vector256.Create(5)).AsInt16());
    }

    /// <summary><see cref="KQuant{TF}"/>'s float steps for the 8 rows of a format with mins: acc0 = fma(I, d·dx, acc0),
    /// acc1 = fma(M, (−dmin)·dx, acc1), d and dmin as the rows' halves at <paramref name="d"/> and <paramref name="dmin"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StepWithMins(Vector256<int> isum, Vector256<int> msum, ushort* d, ushort* dmin, float dx,
                                    ref Vector256<float> acc0, ref Vector256<float> acc1)
    {
        var dxv = Vector256.Create(dx);
        var ndm = (FloatConvert.LoadHalf8(dmin).AsUInt32() ^ Vector256.Create(0x80000000u)).AsSingle();
        acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), Avx.Multiply(FloatConvert.LoadHalf8(d), dxv), acc0);
        acc1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(msum), Avx.Multiply(ndm, dxv), acc1);
    }

    /// <summary>The first n of 8 outputs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> v, float* y, int n)
    {
        if (n == GroupRows) { Vector256.Store(v, y); return; }
        for (int i = 0; i < n; i++) y[i] = v.GetElement(i);
    }
}
