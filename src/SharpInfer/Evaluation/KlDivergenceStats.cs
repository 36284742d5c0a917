using System.Runtime.InteropServices;

namespace SharpInfer.Evaluation;

/// <summary>
/// Running statistics of a model Q against a base run (llama-perplexity's <c>--kl-divergence</c>): both runs' log
/// perplexities and their ratio, the KL divergence KL(base ‖ Q) per position, how often both put the same token on
/// top, and Δp, the change in the probability of the actual next token. Uncertainties are standard errors of the
/// mean, as llama-perplexity computes them, so the two tools' printouts compare line by line.
/// </summary>
internal sealed class KlDivergenceStats
{
    private double _nll, _nll2, _nllBase, _nllBase2, _nllNllBase, _kld, _kld2, _pDiff, _pDiff2, _pDiff4;
    private readonly List<float> _kldValues = [], _pDiffValues = [];

    public long Count { get; private set; }
    public long SameTop { get; private set; }

    /// <summary>Adds one position: <paramref name="logits"/> of Q, the base row as <see cref="LogProbFile"/> stores it,
    /// and the token that follows.</summary>
    public void Add(ReadOnlySpan<float> logits, ReadOnlySpan<ushort> baseRow, int target)
    {
        int top = 0;
        float max = logits[0];
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > max) { max = logits[i]; top = i; }
        double sum = 0;
        foreach (float l in logits) sum += MathF.Exp(l - max);
        float logNorm = max + (float)Math.Log(sum);   // log p_Q(i) = logits[i] − logNorm
        var head = MemoryMarshal.Cast<ushort, float>(baseRow[..4]);
        float scale = head[0], minLogProb = head[1];
        var codes = baseRow.Slice(4, logits.Length);

        float nll = logNorm - logits[target];
        float nllBase = -(scale * codes[target] + minLogProb);
        double kld = 0;
        int topBase = 0;
        float topBaseLog = float.NegativeInfinity;
        for (int i = 0; i < codes.Length; i++)
        {
            float logBase = scale * codes[i] + minLogProb;
            if (logBase > topBaseLog) { topBaseLog = logBase; topBase = i; }
            if (logBase > -LogProbFile.Range) kld += MathF.Exp(logBase) * (logBase - (logits[i] - logNorm));
        }
        float pDiff = MathF.Exp(-nll) - MathF.Exp(-nllBase);

        _nll += nll; _nll2 += (double)nll * nll;
        _nllBase += nllBase; _nllBase2 += (double)nllBase * nllBase;
        _nllNllBase += (double)nll * nllBase;
        _kld += kld; _kld2 += kld * kld;
        _pDiff += pDiff; _pDiff2 += (double)pDiff * pDiff; _pDiff4 += (double)pDiff * pDiff * pDiff * pDiff;
        if (top == topBase) SameTop++;
        Count++;
        _kldValues.Add((float)kld);
        _pDiffValues.Add(pDiff);
    }

    /// <summary>Mean and its standard error (0 below 11 samples, as llama-perplexity).</summary>
    private (double Mean, double Error) Mean(double sum, double sum2)
    {
        if (Count < 1) return (0, 0);
        double m = sum / Count, v = sum2 / Count - m * m;
        return (m, v > 0 && Count > 10 ? Math.Sqrt(v / (Count - 1)) : 0);
    }

    private double Covariance => Count < 10 ? 0 : (_nllNllBase / Count - _nll / Count * (_nllBase / Count)) / (Count - 1);

    public (double Value, double Error) Ppl
    {
        get { var (m, e) = Mean(_nll, _nll2); return (Math.Exp(m), Math.Exp(m) * e); }
    }

    public (double Value, double Error) PplBase
    {
        get { var (m, e) = Mean(_nllBase, _nllBase2); return (Math.Exp(m), Math.Exp(m) * e); }
    }

    /// <summary>ln(PPL(Q) / PPL(base)) with the correlation of the two runs taken into account.</summary>
    public (double Value, double Error) LogPplRatio
    {
        get
        {
            var (m, e) = Mean(_nll, _nll2);
            var (mb, eb) = Mean(_nllBase, _nllBase2);
            return (m - mb, Math.Sqrt(Math.Max(0, e * e + eb * eb - 2 * Covariance)));
        }
    }

    public (double Value, double Error) MeanKld => Mean(_kld, _kld2);

    public (double Value, double Error) MeanPDiff => Mean(_pDiff, _pDiff2);

    /// <summary>Root mean square of Δp.</summary>
    public (double Value, double Error) RmsPDiff
    {
        get
        {
            var (mse, e) = Mean(_pDiff2, _pDiff4);
            double rms = Math.Sqrt(mse);
            return (rms, rms > 0 ? 0.5 / rms * e : 0);
        }
    }

    public (double Value, double Error) SameTopRate
    {
        get
        {
            double p = Count == 0 ? 0 : (double)SameTop / Count;
            return (p, Count > 1 ? Math.Sqrt(p * (1 - p) / (Count - 1)) : 0);
        }
    }

    /// <summary>The KL divergences at the given fractions (0 = minimum, 0.5 = median, 1 = maximum), linearly
    /// interpolated between sorted values.</summary>
    public double[] KldPercentiles(params double[] fractions) => Percentiles(_kldValues, fractions);

    public double[] PDiffPercentiles(params double[] fractions) => Percentiles(_pDiffValues, fractions);

    private static double[] Percentiles(List<float> values, double[] fractions)
    {
        if (values.Count == 0) return new double[fractions.Length];
        var sorted = values.ToArray();
        Array.Sort(sorted);
        return fractions.Select(f =>
        {
            if (f <= 0) return sorted[0];
            if (f >= 1) return sorted[^1];
            double p = f * (sorted.Length - 1);
            int i = (int)p;
            p -= i;
            return (1 - p) * sorted[i] + p * sorted[Math.Min(i + 1, sorted.Length - 1)];
        }).ToArray();
    }
}
