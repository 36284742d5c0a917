namespace SharpInfer.Sampling;

/// <summary>Natural-log softmax of raw logits over the full vocabulary (before any sampling transform), as
/// llama.cpp and OpenAI report log-probabilities.</summary>
internal static class LogProbs
{
    /// <summary>log Σ exp(logits), computed in double around the max.</summary>
    public static double LogSumExp(ReadOnlySpan<float> logits)
    {
        float max = float.NegativeInfinity;
        foreach (var l in logits) if (l > max) max = l;
        double sum = 0;
        foreach (var l in logits) sum += Math.Exp(l - max);
        return max + Math.Log(sum);
    }

    /// <summary>Writes the <paramref name="top"/>.Length most likely (id, log-prob) pairs, most likely first
    /// (ties: lower id first). Returns how many were written.</summary>
    public static int Top(ReadOnlySpan<float> logits, double logSumExp, Span<TokenLogProb> top)
    {
        int n = Math.Min(top.Length, logits.Length);
        if (n == 0) return 0;
        // insertion into a small sorted array: n is at most 20
        int count = 0;
        for (int id = 0; id < logits.Length; id++)
        {
            float v = logits[id];
            if (count == n && v <= top[n - 1].Logit) continue;
            int pos = count < n ? count++ : n - 1;
            while (pos > 0 && top[pos - 1].Logit < v) { top[pos] = top[pos - 1]; pos--; }
            top[pos] = new TokenLogProb(id, v, 0);
        }
        for (int i = 0; i < count; i++) top[i] = top[i] with { LogProb = (float)(top[i].Logit - logSumExp) };
        return count;
    }
}

/// <summary>A token with its raw logit and its log-probability.</summary>
internal readonly record struct TokenLogProb(int Id, float Logit, float LogProb);
