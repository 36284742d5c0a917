namespace SharpInfer.Tensors;

/// <summary>ggml's tensor element types, with ggml's enum values (they are what GGUF files store).
/// Gaps are types ggml removed; their numbers are never reused.</summary>
internal enum GgmlType : uint
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
    TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
}

/// <summary>Block geometry of each type: a row of n elements takes n / BlockSize blocks of TypeSize bytes.</summary>
internal static class GgmlTypeInfo
{
    private static readonly (GgmlType Type, int BlockSize, int TypeSize, string Name)[] Table =
    [
        (GgmlType.F32, 1, 4, "f32"), (GgmlType.F16, 1, 2, "f16"), (GgmlType.BF16, 1, 2, "bf16"),
        (GgmlType.Q4_0, 32, 18, "q4_0"), (GgmlType.Q4_1, 32, 20, "q4_1"),
        (GgmlType.Q5_0, 32, 22, "q5_0"), (GgmlType.Q5_1, 32, 24, "q5_1"),
        (GgmlType.Q8_0, 32, 34, "q8_0"), (GgmlType.Q8_1, 32, 36, "q8_1"),
        (GgmlType.Q2_K, 256, 84, "q2_K"), (GgmlType.Q3_K, 256, 110, "q3_K"), (GgmlType.Q4_K, 256, 144, "q4_K"),
        (GgmlType.Q5_K, 256, 176, "q5_K"), (GgmlType.Q6_K, 256, 210, "q6_K"), (GgmlType.Q8_K, 256, 292, "q8_K"),
        (GgmlType.IQ2_XXS, 256, 66, "iq2_xxs"), (GgmlType.IQ2_XS, 256, 74, "iq2_xs"),
        (GgmlType.IQ3_XXS, 256, 98, "iq3_xxs"), (GgmlType.IQ1_S, 256, 50, "iq1_s"),
        (GgmlType.IQ4_NL, 32, 18, "iq4_nl"), (GgmlType.IQ3_S, 256, 110, "iq3_s"), (GgmlType.IQ2_S, 256, 82, "iq2_s"),
        (GgmlType.IQ4_XS, 256, 136, "iq4_xs"), (GgmlType.I8, 1, 1, "i8"), (GgmlType.I16, 1, 2, "i16"),
        (GgmlType.I32, 1, 4, "i32"), (GgmlType.I64, 1, 8, "i64"), (GgmlType.F64, 1, 8, "f64"),
        (GgmlType.IQ1_M, 256, 56, "iq1_m"), (GgmlType.TQ1_0, 256, 54, "tq1_0"), (GgmlType.TQ2_0, 256, 66, "tq2_0"),
        (GgmlType.MXFP4, 32, 17, "mxfp4"),
    ];

    private static readonly Dictionary<GgmlType, (int BlockSize, int TypeSize, string Name)> ByType =
        Table.ToDictionary(t => t.Type, t => (t.BlockSize, t.TypeSize, t.Name));

    /// <summary>True for every type whose block geometry is known (the GGUF reader accepts these).</summary>
    public static bool IsKnown(GgmlType type) => ByType.ContainsKey(type);

    public static int BlockSize(GgmlType type) => Get(type).BlockSize;
    public static int TypeSize(GgmlType type) => Get(type).TypeSize;
    public static string Name(GgmlType type) => ByType.TryGetValue(type, out var t) ? t.Name : $"type{(uint)type}";

    /// <summary>Bytes taken by one row of <paramref name="n"/> elements (n must be a multiple of the block size).</summary>
    public static long RowSize(GgmlType type, long n) => n / BlockSize(type) * TypeSize(type);

    public static bool TryParse(string name, out GgmlType type)
    {
        foreach (var t in Table)
            if (string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase)) { type = t.Type; return true; }
        type = default;
        return false;
    }

    private static (int BlockSize, int TypeSize, string Name) Get(GgmlType type) =>
        ByType.TryGetValue(type, out var t) ? t : throw new ArgumentOutOfRangeException(nameof(type), $"unknown ggml type {(uint)type}");
}
