using System.Numerics;

namespace SharpInfer.Sampling.Grammar;

/// <summary>Applies an allowed-token bitmap to logits, 64 tokens per word: a fully allowed word is skipped, a fully
/// banned one is a vectorized fill with -infinity, and a mixed one visits only its banned bits.</summary>
internal static class GrammarMask
{
    public static void Apply(ulong[] mask, Span<float> logits)
    {
        int full = logits.Length >> 6;
        for (int w = 0; w < full; w++)
        {
            ulong bits = mask[w];
            if (bits == ulong.MaxValue) continue;
            var chunk = logits.Slice(w << 6, 64);
            if (bits == 0) { chunk.Fill(float.NegativeInfinity); continue; }
            for (ulong banned = ~bits; banned != 0; banned &= banned - 1)
                chunk[BitOperations.TrailingZeroCount(banned)] = float.NegativeInfinity;
        }
        for (int i = full << 6; i < logits.Length; i++)
            if ((mask[i >> 6] & (1UL << (i & 63))) == 0) logits[i] = float.NegativeInfinity;
    }
}
