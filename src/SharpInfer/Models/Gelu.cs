using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Models;

/// <summary>
/// GELU as ggml's CPU backend computes it for F32 (GGML_GELU_FP16, on by default): the tanh approximation
/// 0.5·x·(1 + tanh(sqrt(2/π)·x·(1 + 0.044715·x²))) looked up in a table indexed by x rounded to F16, whose entries are
/// rounded to F16; x ≤ −10 gives 0 and x ≥ 10 gives x. Matching the table (not the exact function) keeps our
/// activations within float rounding of llama.cpp's.
/// </summary>
internal static unsafe class Gelu
{
    private const float Sqrt2OverPi = 0.79788456080286535587989211986876f, CoefA = 0.044715f;

    /// <summary>ggml_table_gelu_f16 widened to float: 256 KB, built once.</summary>
    private static readonly float[] Table = BuildTable();

    private static float[] BuildTable()
    {
        var table = GC.AllocateArray<float>(1 << 16, pinned: true);
        for (int h = 0; h < table.Length; h++)
        {
            float x = Fp16.ToFloat((ushort)h);
            table[h] = Fp16.ToFloat(Fp16.FromFloat(Tanh(x)));
        }
        return table;
    }

    /// <summary>ggml_gelu_f32: the tanh approximation in float.</summary>
    public static float Tanh(float x) => 0.5f * x * (1.0f + MathF.Tanh(Sqrt2OverPi * x * (1.0f + CoefA * x * x)));

    /// <summary>One value as ggml's vector GELU gives it.</summary>
    public static float Apply(float x) =>
        x <= -10f ? 0f : x >= 10f ? x : Table[Fp16.FromFloat(x)];

    /// <summary>g = gelu(g) · u over n elements (ggml_vec_geglu_f32): the F16 indices are converted a chunk at a time
    /// on the vector path, then looked up.</summary>
    public static void Mul(float* g, float* u, int n, IsaLevel level)
    {
        const int Chunk = 256;
        ushort* idx = stackalloc ushort[Chunk];
        fixed (float* table = Table)
        {
            for (int i0 = 0; i0 < n; i0 += Chunk)
            {
                int m = Math.Min(Chunk, n - i0);
                float* gi = g + i0, ui = u + i0;
                FloatConvert.SingleToHalf(gi, idx, m, level);
                for (int i = 0; i < m; i++)
                {
                    float x = gi[i];
                    gi[i] = (x <= -10f ? 0f : x >= 10f ? x : table[idx[i]]) * ui[i];
                }
            }
        }
    }
}
