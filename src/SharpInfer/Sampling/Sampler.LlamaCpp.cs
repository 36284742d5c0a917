namespace SharpInfer.Sampling;

/// <summary>
/// llama.cpp's default sampler chain (common_params_sampling: top-k → top-p → min-p → temperature → dist, the
/// penalties before them), step for step as src/llama-sampler.cpp does it, including which steps sort the
/// candidates, float versus double sums, and <c>dist</c>'s single <c>std::mt19937</c> draw: with logits that match
/// llama.cpp's, a seed gives llama.cpp's tokens. Speculative verification keeps its own draws (llama.cpp's differs).
/// </summary>
internal sealed partial class Sampler
{
    private readonly Mt19937? _mt;

    /// <summary>top-k, top-p, min-p, temperature as llama.cpp applies them: the surviving ids and their tempered logits
    /// in the scratch's first n slots (sorted, most likely first, when a step sorted them), unnormalised probabilities
    /// (expf(logit − max)) in <paramref name="sum"/>'s terms for the speculative path.</summary>
    private int LlamaCppCandidates(Span<float> logits, SamplerScratch scratch, out double sum)
    {
        int n = LlamaCppTruncate(logits, scratch, out bool sorted);
        int[] ids = scratch.Ids;
        float[] vals = scratch.Values;
        float max = vals[0];
        if (!sorted) for (int i = 1; i < n; i++) max = Math.Max(max, vals[i]);
        sum = 0;
        for (int i = 0; i < n; i++)
        {
            float p = MathF.Exp(vals[i] - max);
            vals[i] = p;
            sum += p;
        }
        return n;
    }

    /// <summary>llama.cpp's <c>dist</c>: softmax in float, the sum in double, one uniform double from mt19937, the first
    /// candidate (in the chain's order) whose running sum reaches sum × u.</summary>
    private int LlamaCppDraw(Span<float> logits, SamplerScratch scratch)
    {
        int n = LlamaCppTruncate(logits, scratch, out bool sorted);
        int[] ids = scratch.Ids;
        float[] vals = scratch.Values;
        if (n == 1) return ids[0];
        float max = vals[0];
        if (!sorted) for (int i = 1; i < n; i++) max = Math.Max(max, vals[i]);
        double sumCum = 0;
        for (int i = 0; i < n; i++)
        {
            float p = MathF.Exp(vals[i] - max);
            vals[i] = p;
            sumCum += p;
        }
        double target = sumCum * _mt!.NextCanonical();
        double run = 0;
        for (int i = 0; i < n; i++)
        {
            run += vals[i];
            if (run >= target) return ids[i];
        }
        return ids[n - 1];
    }

    /// <summary>The truncations and temperature; <paramref name="sorted"/>: the candidates are in descending logit order.</summary>
    private int LlamaCppTruncate(Span<float> logits, SamplerScratch scratch, out bool sorted)
    {
        int[] ids = scratch.Ids;
        float[] vals = scratch.Values;
        int n;
        int k = Math.Min(_p.TopK, _vocab);
        if (k > 0)
        {
            n = SelectTopK(logits, k, ids, vals);   // sorted, most likely first
            sorted = true;
        }
        else
        {
            n = _vocab;
            for (int i = 0; i < n; i++) { ids[i] = i; vals[i] = logits[i]; }
            sorted = false;
        }

        if (_p.TopP < 1f)
        {
            // softmax over the candidates in their current order (that order fixes the float sum's rounding), then the
            // smallest most-likely prefix whose probability reaches p
            float max = vals[0];
            if (!sorted) for (int i = 1; i < n; i++) max = Math.Max(max, vals[i]);
            float cum = 0;
            for (int i = 0; i < n; i++) cum += MathF.Exp(vals[i] - max);
            if (!sorted)
            {
                vals.AsSpan(0, n).Sort(ids.AsSpan(0, n), DescendingComparer);
                sorted = true;
            }
            float acc = 0;
            int last = n;
            for (int i = 0; i < n; i++)
            {
                acc += MathF.Exp(vals[i] - max) / cum;
                if (acc >= _p.TopP) { last = i + 1; break; }
            }
            n = last;
        }

        if (_p.MinP > 0f && n > 0)
        {
            if (!sorted)
            {
                float max = float.MinValue;
                for (int i = 0; i < n; i++) max = Math.Max(max, vals[i]);
                float minLogit = max + MathF.Log(_p.MinP);
                int w = 0;
                for (int i = 0; i < n; i++)
                    if (vals[i] >= minLogit) { ids[w] = ids[i]; vals[w] = vals[i]; w++; }
                n = w;
            }
            else
            {
                float minLogit = vals[0] + MathF.Log(_p.MinP);
                int i = 1;   // the first always stays
                while (i < n && vals[i] >= minLogit) i++;
                n = i;
            }
        }

        float t = _p.Temperature;
        for (int i = 0; i < n; i++) vals[i] /= t;
        return n;
    }
}
