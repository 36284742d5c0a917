namespace SharpInfer.Sampling;

/// <summary>
/// Picks the next token of one sequence from its logits. Order of transforms: logits processor (grammar mask) → logit bias → repetition penalty
/// (last N tokens of prompt and output) → presence/frequency penalties (output only) → greedy argmax if
/// temperature is 0, else temperature → top-k → top-p → min-p → draw. This is Hugging Face's and vLLM's order
/// (llama.cpp applies temperature after the truncations; with temperature 1 the two agree;
/// <see cref="SamplingParams.LlamaCppChain"/> selects llama.cpp's order and draw, see Sampler.LlamaCpp.cs). Seeded: the
/// same seed and logits give the same tokens. Allocation-free per token.
/// </summary>
internal sealed partial class Sampler
{
    private readonly SamplingParams _p;
    private readonly int _vocab;
    private Xoshiro256 _rng;
    private readonly int[] _window;          // ring buffer of the last N tokens (repetition penalty)
    private int _windowCount, _windowNext;
    private readonly Dictionary<int, int> _generatedCounts;
    private readonly int[] _biasIds;
    private readonly float[] _biasValues;
    private readonly ILogitsProcessor? _processor;

    public SamplingParams Params => _p;
    public ulong Seed { get; }

    public Sampler(SamplingParams p, int vocabSize, ReadOnlySpan<int> prompt)
    {
        _p = p;
        _vocab = vocabSize;
        Seed = p.Seed ?? (ulong)Random.Shared.NextInt64();
        _rng = new Xoshiro256(Seed);
        // llama.cpp's seeds are 32-bit; a larger one is folded rather than cut, so distinct seeds stay distinct more often
        if (p.LlamaCppChain) _mt = new Mt19937(Seed <= uint.MaxValue ? (uint)Seed : (uint)(Seed ^ (Seed >> 32)));
        int n = p.RepetitionPenalty == 1f ? 0 : p.PenaltyLastN < 0 ? Math.Max(16, prompt.Length + p.MaxTokens) : p.PenaltyLastN;
        _window = new int[n];
        _generatedCounts = new Dictionary<int, int>(p.PresencePenalty != 0 || p.FrequencyPenalty != 0 ? Math.Min(p.MaxTokens, 4096) : 0);
        foreach (var t in prompt) Remember(t);
        var bias = p.LogitBias?.ToArray() ?? [];
        _biasIds = bias.Select(b => b.Key).ToArray();
        _biasValues = bias.Select(b => b.Value).ToArray();
        _processor = p.LogitsProcessor?.Create();
    }

    private void Remember(int token)
    {
        if (_window.Length == 0) return;
        _window[_windowNext] = token;
        _windowNext = (_windowNext + 1) % _window.Length;
        if (_windowCount < _window.Length) _windowCount++;
    }

    /// <summary>Records a generated token (for the penalties).</summary>
    public void Accept(int token)
    {
        _processor?.Accept(token);
        Remember(token);
        if (_p.PresencePenalty != 0 || _p.FrequencyPenalty != 0)
            _generatedCounts[token] = _generatedCounts.GetValueOrDefault(token) + 1;
    }

    /// <summary>Chooses the next token. <paramref name="logits"/> is modified (penalties, temperature).</summary>
    public int Sample(Span<float> logits, SamplerScratch scratch)
    {
        ApplyRules(logits, scratch, withProcessor: true);
        if (_p.IsGreedy) return ArgMax(logits);
        return Draw(logits, scratch, -1, out _);
    }

    /// <summary>
    /// Speculative decoding: decides whether the proposed token <paramref name="draft"/> (proposed with certainty, as an
    /// n-gram lookup does) stands, under exactly the distribution <see cref="Sample"/> draws from after every rule.
    /// Greedy: it stands if it is the argmax, else the argmax is returned. Sampled (Leviathan et al. / Chen et al.
    /// with a one-hot proposal distribution): it stands with probability p(draft); otherwise a token is drawn from p
    /// without the draft, renormalised. Either way the returned token is distributed as <see cref="Sample"/>'s.
    /// </summary>
    public int Verify(Span<float> logits, SamplerScratch scratch, int draft, out bool accepted)
    {
        ApplyRules(logits, scratch, withProcessor: true);   // the same rules as Sample
        if (_p.IsGreedy)
        {
            int t = ArgMax(logits);
            accepted = t == draft;
            return t;
        }
        return Draw(logits, scratch, draft, out accepted);
    }

    /// <summary>The rules before the draw, in order: the logits processor (grammar masks: first, so a masked token
    /// stays at −∞ through every later rule), logit bias, penalties.</summary>
    private void ApplyRules(Span<float> logits, SamplerScratch scratch, bool withProcessor)
    {
        if (withProcessor) _processor?.Process(logits);
        for (int i = 0; i < _biasIds.Length; i++) logits[_biasIds[i]] += _biasValues[i];
        ApplyPenalties(logits, scratch);
    }

    private void ApplyPenalties(Span<float> logits, SamplerScratch scratch)
    {
        if (_windowCount > 0)
        {
            int stamp = scratch.NextStamp();
            float rp = _p.RepetitionPenalty;
            for (int i = 0; i < _windowCount; i++)
            {
                int t = _window[i];
                if (scratch.Marks[t] == stamp) continue;
                scratch.Marks[t] = stamp;
                logits[t] = logits[t] > 0 ? logits[t] / rp : logits[t] * rp;
            }
        }
        foreach (var (t, count) in _generatedCounts)
            logits[t] -= count * _p.FrequencyPenalty + _p.PresencePenalty;
    }

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        float bestValue = logits[0];
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > bestValue) { bestValue = logits[i]; best = i; }
        return best;
    }

    /// <summary>Draws from the truncated, tempered distribution; with a <paramref name="draft"/> (≥ 0), first accepts it
    /// with its probability and otherwise draws from the rest (see <see cref="Verify"/>).</summary>
    private int Draw(Span<float> logits, SamplerScratch scratch, int draft, out bool accepted)
    {
        accepted = false;
        if (_mt != null && draft < 0) return LlamaCppDraw(logits, scratch);
        int n = _mt != null ? LlamaCppCandidates(logits, scratch, out double sum) : Candidates(logits, scratch, out sum);
        int[] ids = scratch.Ids;
        float[] vals = scratch.Values;
        if (draft >= 0)
        {
            double pDraft = 0;
            for (int i = 0; i < n; i++) if (ids[i] == draft) { pDraft = vals[i]; break; }
            if (_rng.NextDouble() * sum < pDraft)
            {
                accepted = true;
                return draft;
            }
            // rejected: the residual max(0, p − q) with a one-hot q is p without the draft
            double rest = sum - pDraft;
            double u = _rng.NextDouble() * rest, acc = 0;
            int last = -1;
            for (int i = 0; i < n; i++)
            {
                if (ids[i] == draft) continue;
                last = ids[i];
                acc += vals[i];
                if (u < acc) return ids[i];
            }
            return last >= 0 ? last : draft;   // rounding at the very end of the range
        }
        return DrawFrom(ids, vals, n, sum, ref _rng);
    }

    /// <summary>A token drawn from the unnormalised weights <paramref name="vals"/> of <paramref name="ids"/>.</summary>
    private static int DrawFrom(int[] ids, float[] vals, int n, double sum, ref Xoshiro256 rng)
    {
        double r = rng.NextDouble() * sum;
        double c = 0;
        for (int i = 0; i < n; i++)
        {
            c += vals[i];
            if (r < c) return ids[i];
        }
        return ids[n - 1];
    }

    /// <summary>The candidates after temperature, top-k, top-p and min-p: their ids and unnormalised probabilities in
    /// the scratch's first n slots (the return value), and <paramref name="sum"/> of those probabilities.</summary>
    private int Candidates(Span<float> logits, SamplerScratch scratch, out double sum)
    {
        int[] ids = scratch.Ids;
        float[] vals = scratch.Values;
        float invT = 1.0f / _p.Temperature;
        int n;
        int k = _p.TopK > 0 && _p.TopK < _vocab ? _p.TopK : 0;
        if (k > 0) n = SelectTopK(logits, k, ids, vals);   // sorted, most likely first
        else
        {
            n = _vocab;
            for (int i = 0; i < n; i++) { ids[i] = i; vals[i] = logits[i]; }
        }
        bool sorted = k > 0;

        // softmax of logit / T over the candidates (vals become probabilities, unnormalised until the sum)
        float max = float.NegativeInfinity;
        for (int i = 0; i < n; i++) if (vals[i] > max) max = vals[i];
        sum = 0;
        for (int i = 0; i < n; i++)
        {
            float p = MathF.Exp((vals[i] - max) * invT);
            vals[i] = p;
            sum += p;
        }
        if (_p.TopP < 1f)
        {
            if (!sorted)
            {
                n = KeepLikely(ids, vals, n, sum, _p.TopP);
                vals.AsSpan(0, n).Sort(ids.AsSpan(0, n), DescendingComparer);
            }
            double target = _p.TopP * sum, acc = 0;
            int keep = 0;
            while (keep < n) { acc += vals[keep++]; if (acc >= target) break; }
            n = keep;
            sum = acc;
        }
        if (_p.MinP > 0f)
        {
            float pmax = 0;
            for (int i = 0; i < n; i++) if (vals[i] > pmax) pmax = vals[i];
            float threshold = _p.MinP * pmax;
            int w = 0;
            sum = 0;
            for (int i = 0; i < n; i++)
                if (vals[i] >= threshold) { ids[w] = ids[i]; vals[w] = vals[i]; sum += vals[i]; w++; }
            n = w;
        }
        return n;
    }

    private static readonly Comparer<float> DescendingComparer = Comparer<float>.Create((a, b) => b.CompareTo(a));

    /// <summary>Shrinks the candidates before sorting for top-p: keeps those at or above the largest probability
    /// threshold whose survivors still hold at least p of the mass (the nucleus lies entirely above it).</summary>
    private static int KeepLikely(int[] ids, float[] vals, int n, double sum, float topP)
    {
        float pmax = 0;
        for (int i = 0; i < n; i++) if (vals[i] > pmax) pmax = vals[i];
        for (float frac = 1e-1f; frac >= 1e-6f; frac *= 0.1f)
        {
            float th = pmax * frac;
            double kept = 0;
            for (int i = 0; i < n; i++) if (vals[i] >= th) kept += vals[i];
            if (kept >= topP * sum)
            {
                int w = 0;
                for (int i = 0; i < n; i++)
                    if (vals[i] >= th) { ids[w] = ids[i]; vals[w] = vals[i]; w++; }
                return w;
            }
        }
        return n;
    }

    /// <summary>The k largest logits, sorted descending (ties: lower id first), via a size-k min-heap.</summary>
    private static int SelectTopK(ReadOnlySpan<float> logits, int k, int[] ids, float[] vals)
    {
        int size = 0;
        for (int id = 0; id < logits.Length; id++)
        {
            float v = logits[id];
            if (size < k)
            {
                ids[size] = id; vals[size] = v; size++;
                SiftUp(ids, vals, size - 1);
            }
            else if (v > vals[0])
            {
                ids[0] = id; vals[0] = v;
                SiftDown(ids, vals, size, 0);
            }
        }
        // heap-sort ascending-heap into descending order
        for (int end = size - 1; end > 0; end--)
        {
            (ids[0], ids[end]) = (ids[end], ids[0]);
            (vals[0], vals[end]) = (vals[end], vals[0]);
            SiftDown(ids, vals, end, 0);
        }
        return size;
    }

    // min-heap ordered by value; among equal values the higher id is "smaller" so lower ids survive ties
    private static bool Less(int[] ids, float[] vals, int a, int b) => vals[a] < vals[b] || (vals[a] == vals[b] && ids[a] > ids[b]);

    private static void SiftUp(int[] ids, float[] vals, int i)
    {
        while (i > 0)
        {
            int parent = (i - 1) / 2;
            if (!Less(ids, vals, i, parent)) break;
            (ids[i], ids[parent]) = (ids[parent], ids[i]);
            (vals[i], vals[parent]) = (vals[parent], vals[i]);
            i = parent;
        }
    }

    private static void SiftDown(int[] ids, float[] vals, int size, int i)
    {
        while (true)
        {
            int l = 2 * i + 1, r = l + 1, m = i;
            if (l < size && Less(ids, vals, l, m)) m = l;
            if (r < size && Less(ids, vals, r, m)) m = r;
            if (m == i) return;
            (ids[i], ids[m]) = (ids[m], ids[i]);
            (vals[i], vals[m]) = (vals[m], vals[i]);
            i = m;
        }
    }
}
