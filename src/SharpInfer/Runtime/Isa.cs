using System.Runtime.Intrinsics.X86;

namespace SharpInfer.Runtime;

/// <summary>Instruction paths the kernels are written for, lowest to highest.</summary>
public enum IsaLevel
{
    /// <summary>Plain scalar code: the reference every other path is tested against.</summary>
    Scalar = 0,
    /// <summary>Portable Vector128/Vector256 code (any CPU .NET vectorizes for).</summary>
    Portable = 1,
    /// <summary>AVX2 + FMA, with AVX-VNNI int8 dot products where the CPU has them.</summary>
    Avx2 = 2,
    /// <summary>AVX-512 (F, BW, VL).</summary>
    Avx512 = 3,
}

/// <summary>
/// The instruction path chosen once at start-up: the best the CPU supports, or a lower one forced with the
/// environment variable <c>SHARPINFER_ISA</c> (scalar, portable, avx2, avx512) so every path can be tested on
/// one machine. Kernels branch on the static readonly <see cref="Level"/>, which the JIT folds to a constant.
/// </summary>
internal static class Isa
{
    public static readonly IsaLevel Best = DetectBest();
    public static readonly IsaLevel Level = Choose(Environment.GetEnvironmentVariable("SHARPINFER_ISA"));
    /// <summary>256-bit AVX-VNNI (vpdpbusd) usable on the AVX2 and AVX-512 paths.</summary>
    public static readonly bool HasAvxVnni = Level >= IsaLevel.Avx2 && AvxVnni.IsSupported;

    private static IsaLevel DetectBest()
    {
        if (Avx512F.IsSupported && Avx512BW.IsSupported && Avx512F.VL.IsSupported && Fma.IsSupported) return IsaLevel.Avx512;
        if (Avx2.IsSupported && Fma.IsSupported) return IsaLevel.Avx2;
        if (System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated) return IsaLevel.Portable;
        return IsaLevel.Scalar;
    }

    private static IsaLevel Choose(string? forced)
    {
        if (string.IsNullOrWhiteSpace(forced)) return Best;
        IsaLevel want = forced.Trim().ToLowerInvariant() switch
        {
            "scalar" => IsaLevel.Scalar,
            "portable" => IsaLevel.Portable,
            "avx2" => IsaLevel.Avx2,
            "avx512" => IsaLevel.Avx512,
            _ => throw new SharpInferException($"SHARPINFER_ISA='{forced}' is not one of scalar, portable, avx2, avx512"),
        };
        return want <= Best ? want : Best;
    }

    public static string Describe() =>
        $"{Level.ToString().ToLowerInvariant()}{(HasAvxVnni ? "+vnni" : "")}{(Level < Best ? $" (forced; best is {Best.ToString().ToLowerInvariant()})" : "")}";
}
