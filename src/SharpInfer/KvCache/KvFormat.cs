using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.KvCache;

/// <summary>
/// How one KV cache element type is stored: bytes per row (one token's head_dim values of one KV head), writing a
/// row, and widening stored rows back to floats for attention. Attention widens one cache block at a time into a
/// per-thread tile (never the whole cache), so a quantized cache is read in its compact form and its memory traffic
/// shrinks with it. Quantized formats use ggml's block layouts and ggml's reference quantizers, byte for byte
/// (<see cref="Quantize"/>), so a cache row is what llama.cpp's <c>-ctk/-ctv</c> of the same type would store.
/// Widening is exact (a scale times a small integer, one rounding), so every instruction path gives the same bits.
/// </summary>
internal abstract unsafe class KvFormat
{
    public static readonly KvFormat F32 = new F32Format();
    public static readonly KvFormat F16 = new F16Format();
    public static readonly KvFormat Q8_0 = new Q8_0Format();
    public static readonly KvFormat Q4_0 = new Q4_0Format();

    public static KvFormat Of(KvDataType type) => type switch
    {
        KvDataType.F32 => F32,
        KvDataType.F16 => F16,
        KvDataType.Q8_0 => Q8_0,
        KvDataType.Q4_0 => Q4_0,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    public abstract KvDataType Type { get; }
    /// <summary>llama.cpp's name (<c>-ctk q8_0</c>).</summary>
    public abstract string Name { get; }
    /// <summary>What head_dim must be a multiple of (1 for float formats, 2 for 4-bit codes).</summary>
    public virtual int BlockValues => 1;
    public abstract long RowBytes(int headDim);
    /// <summary>Whether the float formats' F16 fast paths in attention apply (read halves directly).</summary>
    public bool IsF16 => Type == KvDataType.F16;
    /// <summary>Whether rows are block-quantized (a scale per block): such keys and values are stored Hadamard-rotated
    /// (<see cref="KvRotation"/>).</summary>
    public bool IsQuantized => Type is KvDataType.Q8_0 or KvDataType.Q4_0;

    /// <summary>Stores <paramref name="headDim"/> floats at <paramref name="dst"/>. Returns false when a value became
    /// non-finite in storage (so attention stops assuming finite halves).</summary>
    public abstract bool WriteRow(float* src, byte* dst, int headDim, IsaLevel level);

    /// <summary>The first <paramref name="rows"/> rows at <paramref name="src"/> as floats: in place when the
    /// format is F32, otherwise widened into <paramref name="dst"/>. <paramref name="finite"/>: the cache holds no
    /// infinity or NaN (F16 then uses a shorter conversion with the same bits).</summary>
    public abstract float* Widen(byte* src, float* dst, int rows, int headDim, IsaLevel level, bool finite);

    public void CheckHeadDim(int headDim)
    {
        if (headDim % BlockValues != 0)
            throw new UnsupportedModelException($"a {Name} KV cache needs an even head dimension; this model's is {headDim} (use f16)");
    }

    public override string ToString() => Name;

    private sealed class F32Format : KvFormat
    {
        public override KvDataType Type => KvDataType.F32;
        public override string Name => "f32";
        public override long RowBytes(int headDim) => 4L * headDim;

        public override bool WriteRow(float* src, byte* dst, int headDim, IsaLevel level)
        {
            Buffer.MemoryCopy(src, dst, 4L * headDim, 4L * headDim);
            return true;
        }

        public override float* Widen(byte* src, float* dst, int rows, int headDim, IsaLevel level, bool finite) => (float*)src;
    }

    private sealed class F16Format : KvFormat
    {
        public override KvDataType Type => KvDataType.F16;
        public override string Name => "f16";
        public override long RowBytes(int headDim) => 2L * headDim;

        public override bool WriteRow(float* src, byte* dst, int headDim, IsaLevel level)
        {
            FloatConvert.SingleToHalf(src, (ushort*)dst, headDim, level);   // round to nearest even, like Fp16.FromFloat
            return !FloatConvert.AnyNonFiniteHalf((ushort*)dst, headDim);
        }

        public override float* Widen(byte* src, float* dst, int rows, int headDim, IsaLevel level, bool finite)
        {
            FloatConvert.HalfToSingle((ushort*)src, dst, rows * headDim, level, finite);
            return dst;
        }
    }

    /// <summary>Values per quantization block for a head dimension: ggml's 32 when it divides the head (every real
    /// model), else the whole head row. ggml quantizes a row of all KV heads together, so for heads shorter than 32
    /// (toy models such as stories260K, head_dim 8) a ggml block spans several heads; here each head row stays
    /// separate (the cache is laid out per head), so its block is shortened instead — a finer scale, never coarser.</summary>
    public static int QuantBlockLength(int headDim) => headDim % 32 == 0 ? 32 : headDim;

    /// <summary>ggml's Q8_0: per block an fp16 scale d = amax/127 and int8 codes round(x/d) (34 bytes per 32 values),
    /// quantize_row_q8_0_ref's arithmetic.</summary>
    private sealed class Q8_0Format : KvFormat
    {
        public override KvDataType Type => KvDataType.Q8_0;
        public override string Name => "q8_0";
        public override long RowBytes(int headDim) => (long)headDim / QuantBlockLength(headDim) * (2 + QuantBlockLength(headDim));

        public override bool WriteRow(float* src, byte* dst, int headDim, IsaLevel level)
        {
            int L = QuantBlockLength(headDim);
            bool avx512 = L == 32 && level >= IsaLevel.Avx512 && Avx512F.IsSupported;
            for (int b0 = 0; b0 < headDim; b0 += L)
            {
                float* x = src + b0;
                if (avx512 && WriteBlock512(x, dst))
                {
                    dst += 2 + L;
                    continue;
                }
                float amax = 0;
                for (int j = 0; j < L; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
                float d = amax / 127f;
                float id = d != 0f ? 1f / d : 0f;
                *(ushort*)dst = Fp16.FromFloat(d);
                sbyte* qs = (sbyte*)(dst + 2);
                for (int j = 0; j < L; j++) qs[j] = (sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
                dst += 2 + L;
            }
            return AllFinite(src, headDim);
        }

        /// <summary>One 32-value block of finite values, the scalar loop's bits: the same amax (a maximum is exact in
        /// any order), d, 1/d and products x·id, and round-half-away-from-zero as trunc(v) plus ±1 where
        /// |v − trunc(v)| ≥ 0.5 (that difference is exact). Returns false, writing nothing, for a block holding an
        /// infinity or NaN (the scalar loop's NaN propagation then decides).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static bool WriteBlock512(float* x, byte* dst)
        {
            var a = Vector512.Load(x);
            var b = Vector512.Load(x + 16);
            if (!Vector512.EqualsAll((a - a) + (b - b), Vector512<float>.Zero)) return false;   // x − x is NaN for inf/NaN
            var m = Vector512.Max(Vector512.Abs(a), Vector512.Abs(b));
            var m8 = Vector256.Max(m.GetLower(), m.GetUpper());
            var m4 = Vector128.Max(m8.GetLower(), m8.GetUpper());
            float amax = MathF.Max(MathF.Max(m4[0], m4[1]), MathF.Max(m4[2], m4[3]));
            float d = amax / 127f;
            float id = d != 0f ? 1f / d : 0f;
            *(ushort*)dst = Fp16.FromFloat(d);
            var vid = Vector512.Create(id);
            Avx512F.ConvertToVector128SByte(RoundAway(a * vid)).Store((sbyte*)(dst + 2));
            Avx512F.ConvertToVector128SByte(RoundAway(b * vid)).Store((sbyte*)(dst + 18));
            return true;
        }

        /// <summary>MathF.Round(v, MidpointRounding.AwayFromZero) per lane, as integers (|v| well inside int range).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> RoundAway(Vector512<float> v)
        {
            var t = Avx512F.RoundScale(v, 0x0B);   // toward zero, no precision exception
            var half = Vector512.GreaterThanOrEqual(Vector512.Abs(v - t), Vector512.Create(0.5f));
            var step = Vector512.CopySign(Vector512<float>.One, v) & half;
            return Avx512F.ConvertToVector512Int32WithTruncation(t + step);
        }

        public override float* Widen(byte* src, float* dst, int rows, int headDim, IsaLevel level, bool finite)
        {
            int L = QuantBlockLength(headDim), blocks = rows * headDim / L;
            bool avx512 = L == 32 && level >= IsaLevel.Avx512 && Avx512F.IsSupported;
            bool avx2 = L == 32 && level >= IsaLevel.Avx2 && Avx2.IsSupported;
            for (int i = 0; i < blocks; i++)
            {
                byte* b = src + (long)i * (2 + L);
                float d = Fp16.ToFloat(*(ushort*)b);
                sbyte* qs = (sbyte*)(b + 2);
                float* y = dst + (long)i * L;
                if (avx512)
                {
                    var vd = Vector512.Create(d);
                    (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(qs))) * vd).Store(y);
                    (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(qs + 16))) * vd).Store(y + 16);
                }
                else if (avx2)
                {
                    var vd = Vector256.Create(d);
                    for (int j = 0; j < 32; j += 8)
                        (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(qs + j)) * vd).Store(y + j);
                }
                else
                    for (int j = 0; j < L; j++) y[j] = qs[j] * d;
            }
            return dst;
        }
    }

    /// <summary>ggml's Q4_0: per block an fp16 scale d = max/−8 (max: the value of largest magnitude, with its sign)
    /// and 4-bit codes min(15, trunc(x/d + 8.5)), value (q − 8)·d; the first half of the block in the low nibbles,
    /// the second half in the high ones (18 bytes per 32 values), quantize_row_q4_0_ref's arithmetic.</summary>
    private sealed class Q4_0Format : KvFormat
    {
        public override KvDataType Type => KvDataType.Q4_0;
        public override string Name => "q4_0";
        public override int BlockValues => 2;   // two codes per byte
        public override long RowBytes(int headDim) => (long)headDim / QuantBlockLength(headDim) * (2 + QuantBlockLength(headDim) / 2);

        public override bool WriteRow(float* src, byte* dst, int headDim, IsaLevel level)
        {
            int L = QuantBlockLength(headDim), half = L / 2;
            for (int b0 = 0; b0 < headDim; b0 += L)
            {
                float* x = src + b0;
                float amax = 0, max = 0;
                for (int j = 0; j < L; j++)
                    if (amax < MathF.Abs(x[j])) { amax = MathF.Abs(x[j]); max = x[j]; }
                float d = max / -8f;
                float id = d != 0f ? 1f / d : 0f;
                *(ushort*)dst = Fp16.FromFloat(d);
                byte* qs = dst + 2;
                for (int j = 0; j < half; j++)
                {
                    int q0 = Math.Min(15, (int)(x[j] * id + 8.5f));
                    int q1 = Math.Min(15, (int)(x[j + half] * id + 8.5f));
                    qs[j] = (byte)(q0 | (q1 << 4));
                }
                dst += 2 + half;
            }
            return AllFinite(src, headDim);
        }

        public override float* Widen(byte* src, float* dst, int rows, int headDim, IsaLevel level, bool finite)
        {
            int L = QuantBlockLength(headDim), half = L / 2, blocks = rows * headDim / L;
            bool avx512 = L == 32 && level >= IsaLevel.Avx512 && Avx512F.IsSupported;
            var eight = Vector512.Create(8);
            var low = Vector512.Create(0x0F);
            for (int i = 0; i < blocks; i++)
            {
                byte* b = src + (long)i * (2 + half);
                float d = Fp16.ToFloat(*(ushort*)b);
                byte* qs = b + 2;
                float* y = dst + (long)i * L;
                if (avx512)
                {
                    var vd = Vector512.Create(d);
                    var q = Avx512F.ConvertToVector512Int32(Vector128.Load(qs));   // 16 bytes, zero-extended
                    (Avx512F.ConvertToVector512Single((q & low) - eight) * vd).Store(y);
                    (Avx512F.ConvertToVector512Single(Vector512.ShiftRightLogical(q, 4) - eight) * vd).Store(y + 16);
                }
                else
                    for (int j = 0; j < half; j++)
                    {
                        y[j] = ((qs[j] & 0x0F) - 8) * d;
                        y[j + half] = ((qs[j] >> 4) - 8) * d;
                    }
            }
            return dst;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool AllFinite(float* p, int n)
    {
        for (int i = 0; i < n; i++)
            if (!float.IsFinite(p[i])) return false;
        return true;
    }
}
