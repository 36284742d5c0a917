using SharpInfer.Tensors;

namespace SharpInfer.Quantization;

/// <summary>llama.cpp's <c>llama_ftype</c>: the value a quantized file stores in <c>general.file_type</c>, naming the
/// mix it was made with (same numbers as llama.h).</summary>
internal enum LlamaFileType
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 7, Q5_0 = 8, Q5_1 = 9,
    Q2_K = 10, Q3_K_S = 11, Q3_K_M = 12, Q3_K_L = 13, Q4_K_S = 14, Q4_K_M = 15, Q5_K_S = 16, Q5_K_M = 17, Q6_K = 18,
    IQ2_XXS = 19, IQ2_XS = 20, Q2_K_S = 21, IQ3_XS = 22, IQ3_XXS = 23, IQ1_S = 24, IQ4_NL = 25, IQ3_S = 26, IQ3_M = 27,
    IQ2_S = 28, IQ2_M = 29, IQ4_XS = 30, IQ1_M = 31, BF16 = 32, TQ1_0 = 36, TQ2_0 = 37, MXFP4_MOE = 38, NVFP4 = 39,
    Q1_0 = 40, Q2_0 = 41,
    /// <summary>Flag llama.cpp adds when it inferred the type from the tensors (no general.file_type).</summary>
    Guessed = 1024,
}

/// <summary>One type name <c>quantize</c> accepts (llama-quantize's list, same names, same order).</summary>
internal sealed record QuantFileType(string Name, LlamaFileType FileType, string Description)
{
    /// <summary>llama-quantize's QUANT_OPTIONS, in its order (the order decides which name a number maps to).</summary>
    public static IReadOnlyList<QuantFileType> All { get; } =
    [
        new("Q1_0", LlamaFileType.Q1_0, "1.125 bpw"), new("Q2_0", LlamaFileType.Q2_0, "2.25 bpw (group 64)"),
        new("Q4_0", LlamaFileType.Q4_0, "4.34G, +0.4685 ppl @ Llama-3-8B"), new("Q4_1", LlamaFileType.Q4_1, "4.78G, +0.4511 ppl @ Llama-3-8B"),
        new("MXFP4_MOE", LlamaFileType.MXFP4_MOE, "MXFP4 MoE"),
        new("Q5_0", LlamaFileType.Q5_0, "5.21G, +0.1316 ppl @ Llama-3-8B"), new("Q5_1", LlamaFileType.Q5_1, "5.65G, +0.1062 ppl @ Llama-3-8B"),
        new("IQ2_XXS", LlamaFileType.IQ2_XXS, "2.06 bpw"), new("IQ2_XS", LlamaFileType.IQ2_XS, "2.31 bpw"),
        new("IQ2_S", LlamaFileType.IQ2_S, "2.5 bpw"), new("IQ2_M", LlamaFileType.IQ2_M, "2.7 bpw"),
        new("IQ1_S", LlamaFileType.IQ1_S, "1.56 bpw"), new("IQ1_M", LlamaFileType.IQ1_M, "1.75 bpw"),
        new("TQ1_0", LlamaFileType.TQ1_0, "1.69 bpw ternarization"), new("TQ2_0", LlamaFileType.TQ2_0, "2.06 bpw ternarization"),
        new("Q2_K", LlamaFileType.Q2_K, "2.96G, +3.5199 ppl @ Llama-3-8B"), new("Q2_K_S", LlamaFileType.Q2_K_S, "2.96G, +3.1836 ppl @ Llama-3-8B"),
        new("IQ3_XXS", LlamaFileType.IQ3_XXS, "3.06 bpw"), new("IQ3_S", LlamaFileType.IQ3_S, "3.44 bpw"),
        new("IQ3_M", LlamaFileType.IQ3_M, "3.66 bpw mix"), new("Q3_K", LlamaFileType.Q3_K_M, "alias for Q3_K_M"),
        new("IQ3_XS", LlamaFileType.IQ3_XS, "3.3 bpw"),
        new("Q3_K_S", LlamaFileType.Q3_K_S, "3.41G, +1.6321 ppl @ Llama-3-8B"), new("Q3_K_M", LlamaFileType.Q3_K_M, "3.74G, +0.6569 ppl @ Llama-3-8B"),
        new("Q3_K_L", LlamaFileType.Q3_K_L, "4.03G, +0.5562 ppl @ Llama-3-8B"),
        new("IQ4_NL", LlamaFileType.IQ4_NL, "4.50 bpw non-linear"), new("IQ4_XS", LlamaFileType.IQ4_XS, "4.25 bpw non-linear"),
        new("Q4_K", LlamaFileType.Q4_K_M, "alias for Q4_K_M"),
        new("Q4_K_S", LlamaFileType.Q4_K_S, "4.37G, +0.2689 ppl @ Llama-3-8B"), new("Q4_K_M", LlamaFileType.Q4_K_M, "4.58G, +0.1754 ppl @ Llama-3-8B"),
        new("Q5_K", LlamaFileType.Q5_K_M, "alias for Q5_K_M"),
        new("Q5_K_S", LlamaFileType.Q5_K_S, "5.21G, +0.1049 ppl @ Llama-3-8B"), new("Q5_K_M", LlamaFileType.Q5_K_M, "5.33G, +0.0569 ppl @ Llama-3-8B"),
        new("Q6_K", LlamaFileType.Q6_K, "6.14G, +0.0217 ppl @ Llama-3-8B"), new("Q8_0", LlamaFileType.Q8_0, "7.96G, +0.0026 ppl @ Llama-3-8B"),
        new("F16", LlamaFileType.F16, "14.00G, +0.0020 ppl @ Mistral-7B"), new("BF16", LlamaFileType.BF16, "14.00G, -0.0050 ppl @ Mistral-7B"),
        new("F32", LlamaFileType.F32, "26.00G @ 7B"),
        new("COPY", LlamaFileType.F32, "only copy tensors, no quantizing"),
    ];

    public bool IsCopy => Name == "COPY";

    /// <summary>Parses a name (case-insensitive) or a number, as llama-quantize does.</summary>
    public static bool TryParse(string text, out QuantFileType type)
    {
        foreach (var t in All)
            if (string.Equals(t.Name, text, StringComparison.OrdinalIgnoreCase)) { type = t; return true; }
        if (int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int n))
            foreach (var t in All)
                if ((int)t.FileType == n) { type = t; return true; }
        type = null!;
        return false;
    }

    /// <summary>llama_ftype_get_default_type: the type most tensors of a mix get; null for a mix whose type this
    /// program does not know (Q1_0, Q2_0, NVFP4).</summary>
    public static GgmlType? DefaultType(LlamaFileType ftype) => ftype switch
    {
        LlamaFileType.Q4_0 => GgmlType.Q4_0,
        LlamaFileType.Q4_1 => GgmlType.Q4_1,
        LlamaFileType.Q5_0 => GgmlType.Q5_0,
        LlamaFileType.Q5_1 => GgmlType.Q5_1,
        LlamaFileType.Q8_0 => GgmlType.Q8_0,
        LlamaFileType.F16 => GgmlType.F16,
        LlamaFileType.BF16 => GgmlType.BF16,
        LlamaFileType.F32 => GgmlType.F32,
        LlamaFileType.MXFP4_MOE => GgmlType.MXFP4,
        LlamaFileType.Q2_K_S or LlamaFileType.Q2_K => GgmlType.Q2_K,
        LlamaFileType.IQ3_XS => GgmlType.IQ3_S,
        LlamaFileType.Q3_K_S or LlamaFileType.Q3_K_M or LlamaFileType.Q3_K_L => GgmlType.Q3_K,
        LlamaFileType.Q4_K_S or LlamaFileType.Q4_K_M => GgmlType.Q4_K,
        LlamaFileType.Q5_K_S or LlamaFileType.Q5_K_M => GgmlType.Q5_K,
        LlamaFileType.Q6_K => GgmlType.Q6_K,
        LlamaFileType.TQ1_0 => GgmlType.TQ1_0,
        LlamaFileType.TQ2_0 => GgmlType.TQ2_0,
        LlamaFileType.IQ2_XXS => GgmlType.IQ2_XXS,
        LlamaFileType.IQ2_XS => GgmlType.IQ2_XS,
        LlamaFileType.IQ2_S => GgmlType.IQ2_XS,
        LlamaFileType.IQ2_M => GgmlType.IQ2_S,
        LlamaFileType.IQ3_XXS => GgmlType.IQ3_XXS,
        LlamaFileType.IQ1_S => GgmlType.IQ1_S,
        LlamaFileType.IQ1_M => GgmlType.IQ1_M,
        LlamaFileType.IQ4_NL => GgmlType.IQ4_NL,
        LlamaFileType.IQ4_XS => GgmlType.IQ4_XS,
        LlamaFileType.IQ3_S or LlamaFileType.IQ3_M => GgmlType.IQ3_S,
        _ => null,
    };

    /// <summary>The file type llama.cpp's loader reports for a file without general.file_type: that of its most
    /// common tensor type (first to reach the highest count, in <paramref name="typesInOrder"/>), flagged as guessed.</summary>
    public static LlamaFileType Guess(IEnumerable<GgmlType> typesInOrder)
    {
        var counts = new Dictionary<GgmlType, int>();
        int best = 0;
        var bestType = GgmlType.F32;
        foreach (var t in typesInOrder)
        {
            int c = counts[t] = counts.GetValueOrDefault(t) + 1;
            if (c > best) { best = c; bestType = t; }
        }
        var ftype = bestType switch
        {
            GgmlType.F16 => LlamaFileType.F16,
            GgmlType.BF16 => LlamaFileType.BF16,
            GgmlType.Q4_0 => LlamaFileType.Q4_0,
            GgmlType.Q4_1 => LlamaFileType.Q4_1,
            GgmlType.Q5_0 => LlamaFileType.Q5_0,
            GgmlType.Q5_1 => LlamaFileType.Q5_1,
            GgmlType.Q8_0 => LlamaFileType.Q8_0,
            GgmlType.Q2_K => LlamaFileType.Q2_K,
            GgmlType.Q3_K => LlamaFileType.Q3_K_M,
            GgmlType.Q4_K => LlamaFileType.Q4_K_M,
            GgmlType.Q5_K => LlamaFileType.Q5_K_M,
            GgmlType.Q6_K => LlamaFileType.Q6_K,
            GgmlType.TQ1_0 => LlamaFileType.TQ1_0,
            GgmlType.TQ2_0 => LlamaFileType.TQ2_0,
            GgmlType.IQ2_XXS => LlamaFileType.IQ2_XXS,
            GgmlType.IQ2_XS => LlamaFileType.IQ2_XS,
            GgmlType.IQ2_S => LlamaFileType.IQ2_S,
            GgmlType.IQ3_XXS => LlamaFileType.IQ3_XXS,
            GgmlType.IQ1_S => LlamaFileType.IQ1_S,
            GgmlType.IQ1_M => LlamaFileType.IQ1_M,
            GgmlType.IQ4_NL => LlamaFileType.IQ4_NL,
            GgmlType.IQ4_XS => LlamaFileType.IQ4_XS,
            GgmlType.IQ3_S => LlamaFileType.IQ3_S,
            _ => LlamaFileType.F32,
        };
        return ftype | LlamaFileType.Guessed;
    }
}
