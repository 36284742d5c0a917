using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpInfer.Runtime;

namespace SharpInfer.Tensors;

/// <summary>
/// Vectorized half/bfloat16 ↔ float conversions with the exact semantics of <see cref="Fp16"/> and <see cref="Bf16"/>,
/// written with integer bit operations (.NET has no F16C/AVX512-FP16/BF16 intrinsics).
/// </summary>
/// <remarks>
/// <para>Half → float: the 15 exponent+mantissa bits are moved into float position (shift left 13) and the result,
/// read as a float with exponent e - 127 + 15 too small, is multiplied by 2^112. That is exact for normal halves and,
/// because the subnormal half 0.m·2^-14 becomes the subnormal float 0.m·2^-126, for subnormals too (this relies on
/// the CPU not flushing subnormal inputs to zero, which .NET never enables). Infinities and NaNs (exponent 31) get
/// the float exponent 255 before the multiply, so the multiply leaves infinity as is and quiets a signalling NaN
/// keeping its payload, as the scalar table (and F16C) does. The sign is or-ed in last.</para>
/// <para>Float → half: round to nearest even with F. Giesen's method: normal results add the rebias, 0xFFF and the
/// lowest kept mantissa bit, then shift; subnormal results come from a float addition of the magic 0.5 (the FPU does
/// the round-to-nearest-even on the 2^-24 grid); overflow gives infinity and NaN gives ggml's canonical 0x7E00.</para>
/// </remarks>
internal static unsafe class FloatConvert
{
    private const float TwoPow112 = 5.192296858534828e33f;   // 2^112

    // ---- half -> float, one vector of widened bits at a time ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> HalfToSingle(Vector512<uint> h)
    {
        var em = (h << 13) & Vector512.Create(0x0FFFE000u);
        var infNan = Vector512.GreaterThanOrEqual(em, Vector512.Create(0x0F800000u));
        em |= infNan & Vector512.Create(0x70000000u);
        var f = em.AsSingle() * Vector512.Create(TwoPow112);
        return (f.AsUInt32() | ((h << 16) & Vector512.Create(0x80000000u))).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> HalfToSingle(Vector256<uint> h)
    {
        var em = (h << 13) & Vector256.Create(0x0FFFE000u);
        var infNan = Vector256.GreaterThanOrEqual(em.AsInt32(), Vector256.Create(0x0F800000)).AsUInt32();
        em |= infNan & Vector256.Create(0x70000000u);
        var f = em.AsSingle() * Vector256.Create(TwoPow112);
        return (f.AsUInt32() | ((h << 16) & Vector256.Create(0x80000000u))).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> HalfToSingle(Vector128<uint> h)
    {
        var em = (h << 13) & Vector128.Create(0x0FFFE000u);
        var infNan = Vector128.GreaterThanOrEqual(em.AsInt32(), Vector128.Create(0x0F800000)).AsUInt32();
        em |= infNan & Vector128.Create(0x70000000u);
        var f = em.AsSingle() * Vector128.Create(TwoPow112);
        return (f.AsUInt32() | ((h << 16) & Vector128.Create(0x80000000u))).AsSingle();
    }

    /// <summary>16 halves → 16 floats (AVX-512).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadHalf16(ushort* p) => HalfToSingle(Avx512F.ConvertToVector512UInt32(Vector256.Load(p)));

    /// <summary>8 halves → 8 floats (AVX2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadHalf8(ushort* p) => HalfToSingle(Avx2.ConvertToVector256Int32(p).AsUInt32());

    /// <summary>16 finite halves → 16 floats (AVX-512): sign-extending the halves puts the sign in bit 31 after the
    /// shift and only copies of it in bits 30..28, which the mask clears, so 4 instructions do what
    /// <see cref="LoadHalf16"/> needs 10 for; wrong for infinities and NaNs (they come out as large finite values).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadFiniteHalf16(ushort* p) => LoadFiniteHalf16Scaled(p) * Vector512.Create(TwoPow112);

    /// <summary><see cref="LoadFiniteHalf16"/> without its last multiplication: 16 finite halves h as the floats
    /// h·2^-112, exactly (normal halves become normal floats, subnormal halves subnormal ones). A product with a
    /// factor pre-scaled by 2^112 is then the same real number as the product of the halves' values, so an FMA over
    /// it rounds to the same bits, for one instruction less per 16 halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadFiniteHalf16Scaled(ushort* p) =>
        ((Avx512F.ConvertToVector512Int32(Vector256.Load((short*)p)) << 13) & Vector512.Create(unchecked((int)0x8FFFE000))).AsSingle();

    /// <summary>The factor that undoes <see cref="LoadFiniteHalf16Scaled"/>'s 2^-112 when folded into the other operand.</summary>
    public const float HalfScaleUp = TwoPow112;

    /// <summary>Whether every one of <paramref name="count"/> values is finite with |x| &lt; 2^16, so that x·2^112 (the
    /// other operand of the scaled F16 form) is finite too.</summary>
    public static bool ScalesUpFinite(float* x, long count)
    {
        long i = 0;
        var lim = Vector256.Create(65536f);
        for (; i + 8 <= count; i += 8)
            if (!Vector256.LessThanAll(Vector256.Abs(Vector256.Load(x + i)), lim)) return false;
        for (; i < count; i++)
            if (!(MathF.Abs(x[i]) < 65536f)) return false;
        return true;
    }

    /// <summary>8 finite halves → 8 floats (AVX2), as <see cref="LoadFiniteHalf16"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadFiniteHalf8(ushort* p) =>
        ((Avx2.ConvertToVector256Int32((short*)p) << 13) & Vector256.Create(unchecked((int)0x8FFFE000))).AsSingle() * Vector256.Create(TwoPow112);

    /// <summary>Whether any of n halves is an infinity or a NaN (exponent bits all ones).</summary>
    public static bool AnyNonFiniteHalf(ushort* p, int n)
    {
        int i = 0;
        var acc = Vector128<ushort>.Zero;
        var e = Vector128.Create((ushort)0x7C00);
        for (; i + 8 <= n; i += 8) acc |= Vector128.Equals(Vector128.Load(p + i) & e, e);
        bool any = acc != Vector128<ushort>.Zero;
        for (; i < n; i++) any |= (p[i] & 0x7C00) == 0x7C00;
        return any;
    }

    /// <summary>4 halves → 4 floats (portable).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadHalf4(ushort* p) =>
        HalfToSingle(Vector128.WidenLower(Vector128.CreateScalar(*(ulong*)p).AsUInt16()));

    /// <summary>16 bfloat16 → 16 floats (AVX-512).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadBf16x16(ushort* p) => (Avx512F.ConvertToVector512UInt32(Vector256.Load(p)) << 16).AsSingle();

    /// <summary>8 bfloat16 → 8 floats (AVX2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadBf16x8(ushort* p) => (Avx2.ConvertToVector256Int32(p).AsUInt32() << 16).AsSingle();

    /// <summary>4 bfloat16 → 4 floats (portable).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadBf16x4(ushort* p) =>
        (Vector128.WidenLower(Vector128.CreateScalar(*(ulong*)p).AsUInt16()) << 16).AsSingle();

    // ---- float -> half (round to nearest even) ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> SingleToHalf(Vector512<float> v)
    {
        var f = v.AsUInt32();
        var sign = f & Vector512.Create(0x80000000u);
        f ^= sign;
        // normal results: rebias, round to nearest even on bit 13, shift
        var odd = (f >> 13) & Vector512<uint>.One;
        var normal = (f + Vector512.Create(0xC8000FFFu) + odd) >> 13;
        // subnormal results (and zero): the FPU rounds f + 0.5 to the 2^-24 grid
        var sub = (f.AsSingle() + Vector512.Create(0.5f)).AsUInt32() - Vector512.Create(0x3F000000u);
        // overflow → infinity, NaN → 0x7E00
        var big = Vector512.ConditionalSelect(Vector512.GreaterThan(f, Vector512.Create(0x7F800000u)), Vector512.Create(0x7E00u), Vector512.Create(0x7C00u));
        var o = Vector512.ConditionalSelect(Vector512.LessThan(f, Vector512.Create(0x38800000u)), sub, normal);
        o = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(f, Vector512.Create(0x47800000u)), big, o);
        return o | (sign >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> SingleToHalf(Vector256<float> v)
    {
        var f = v.AsUInt32();
        var sign = f & Vector256.Create(0x80000000u);
        f ^= sign;
        var fi = f.AsInt32();   // f < 2^31 now, so signed compares are fine (AVX2 has no unsigned compare)
        var odd = (f >> 13) & Vector256<uint>.One;
        var normal = (f + Vector256.Create(0xC8000FFFu) + odd) >> 13;
        var sub = (f.AsSingle() + Vector256.Create(0.5f)).AsUInt32() - Vector256.Create(0x3F000000u);
        var big = Vector256.ConditionalSelect(Vector256.GreaterThan(fi, Vector256.Create(0x7F800000)).AsUInt32(), Vector256.Create(0x7E00u), Vector256.Create(0x7C00u));
        var o = Vector256.ConditionalSelect(Vector256.LessThan(fi, Vector256.Create(0x38800000)).AsUInt32(), sub, normal);
        o = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(fi, Vector256.Create(0x47800000)).AsUInt32(), big, o);
        return o | (sign >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<uint> SingleToHalf(Vector128<float> v)
    {
        var f = v.AsUInt32();
        var sign = f & Vector128.Create(0x80000000u);
        f ^= sign;
        var fi = f.AsInt32();
        var odd = (f >> 13) & Vector128<uint>.One;
        var normal = (f + Vector128.Create(0xC8000FFFu) + odd) >> 13;
        var sub = (f.AsSingle() + Vector128.Create(0.5f)).AsUInt32() - Vector128.Create(0x3F000000u);
        var big = Vector128.ConditionalSelect(Vector128.GreaterThan(fi, Vector128.Create(0x7F800000)).AsUInt32(), Vector128.Create(0x7E00u), Vector128.Create(0x7C00u));
        var o = Vector128.ConditionalSelect(Vector128.LessThan(fi, Vector128.Create(0x38800000)).AsUInt32(), sub, normal);
        o = Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(fi, Vector128.Create(0x47800000)).AsUInt32(), big, o);
        return o | (sign >> 16);
    }

    // ---- rows ----

    /// <summary>dst[i] = half src[i] as float, exactly (same bits as <see cref="Fp16.ToFloat"/>).</summary>
    public static void HalfToSingle(ushort* src, float* dst, int n) => HalfToSingle(src, dst, n, Isa.Level);

    /// <summary>As <see cref="HalfToSingle(ushort*, float*, int, IsaLevel)"/> when the caller knows no half is an infinity or
    /// a NaN (<paramref name="finite"/>): the same bits for every finite half in less than half the instructions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void HalfToSingle(ushort* src, float* dst, int n, IsaLevel level, bool finite)
    {
        if (!finite) { HalfToSingle(src, dst, n, level); return; }
        int i = 0;
        if (level >= IsaLevel.Avx512 && Avx512F.IsSupported)
            for (; i + 16 <= n; i += 16) LoadFiniteHalf16(src + i).Store(dst + i);
        else if (level >= IsaLevel.Avx2 && Avx2.IsSupported)
            for (; i + 8 <= n; i += 8) LoadFiniteHalf8(src + i).Store(dst + i);
        else if (level >= IsaLevel.Portable)
            for (; i + 4 <= n; i += 4) LoadHalf4(src + i).Store(dst + i);
        for (; i < n; i++) dst[i] = Fp16.ToFloat(src[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void HalfToSingle(ushort* src, float* dst, int n, IsaLevel level)
    {
        int i = 0;
        if (level >= IsaLevel.Avx512 && Avx512F.IsSupported)
            for (; i + 16 <= n; i += 16) LoadHalf16(src + i).Store(dst + i);
        else if (level >= IsaLevel.Avx2 && Avx2.IsSupported)
            for (; i + 8 <= n; i += 8) LoadHalf8(src + i).Store(dst + i);
        else if (level >= IsaLevel.Portable)
            for (; i + 4 <= n; i += 4) LoadHalf4(src + i).Store(dst + i);
        for (; i < n; i++) dst[i] = Fp16.ToFloat(src[i]);
    }

    /// <summary>dst[i] = bfloat16 src[i] as float (a 16-bit shift).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Bf16ToSingle(ushort* src, float* dst, int n, IsaLevel level)
    {
        int i = 0;
        if (level >= IsaLevel.Avx512 && Avx512F.IsSupported)
            for (; i + 16 <= n; i += 16) LoadBf16x16(src + i).Store(dst + i);
        else if (level >= IsaLevel.Avx2 && Avx2.IsSupported)
            for (; i + 8 <= n; i += 8) LoadBf16x8(src + i).Store(dst + i);
        else if (level >= IsaLevel.Portable)
            for (; i + 4 <= n; i += 4) LoadBf16x4(src + i).Store(dst + i);
        for (; i < n; i++) dst[i] = Bf16.ToFloat(src[i]);
    }

    /// <summary>dst[i] = src[i] rounded to half (nearest even), the same bits as <see cref="Fp16.FromFloat"/>.</summary>
    public static void SingleToHalf(float* src, ushort* dst, int n) => SingleToHalf(src, dst, n, Isa.Level);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SingleToHalf(float* src, ushort* dst, int n, IsaLevel level)
    {
        int i = 0;
        if (level >= IsaLevel.Avx512 && Avx512F.IsSupported)
            for (; i + 16 <= n; i += 16) Avx512F.ConvertToVector256UInt16(SingleToHalf(Vector512.Load(src + i))).Store(dst + i);
        else if (level >= IsaLevel.Avx2 && Avx2.IsSupported)
            for (; i + 8 <= n; i += 8)
            {
                var h = SingleToHalf(Vector256.Load(src + i)).AsInt32();
                // every lane is < 2^16, so the signed saturating pack is exact; fix the 128-bit lane interleave
                var packed = Avx2.PackUnsignedSaturate(h, h);
                Avx2.Permute4x64(packed.AsUInt64(), 0b10_00).AsUInt16().GetLower().Store(dst + i);
            }
        else if (level >= IsaLevel.Portable)
            for (; i + 8 <= n; i += 8)
            {
                var lo = SingleToHalf(Vector128.Load(src + i));
                var hi = SingleToHalf(Vector128.Load(src + i + 4));
                Vector128.Narrow(lo, hi).Store(dst + i);
            }
        for (; i < n; i++) dst[i] = Fp16.FromFloat(src[i]);
    }
}
