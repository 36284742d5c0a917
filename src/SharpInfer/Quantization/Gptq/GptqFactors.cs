namespace SharpInfer.Quantization.Gptq;

/// <summary>
/// The inverse-Hessian factors of the inputs GPTQ quantizes against, made when the first tensor reading an input is
/// reached and released after the last one (Q, K and V share one; gate and up share one), so at most one layer's
/// factors are in memory while the file is written. The Hessian itself is released as soon as its factor exists.
/// </summary>
internal sealed class GptqFactors
{
    private readonly Dictionary<HessianEntry, int> _remaining = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<HessianEntry, Factor> _factors = new(ReferenceEqualityComparer.Instance);

    public GptqFactors(IEnumerable<HessianEntry> used)
    {
        foreach (var e in used) _remaining[e] = _remaining.GetValueOrDefault(e) + 1;
    }

    /// <summary>U (upper Cholesky factor of the damped H⁻¹), the importance weights diag(H)/rows for the scale search,
    /// and the columns never activated.</summary>
    internal sealed record Factor(float[] U, float[] Importance, bool[] Dead);

    /// <summary>The factor for one more tensor reading <paramref name="e"/>'s input.</summary>
    public Factor Take(HessianEntry e, int threads)
    {
        if (!_factors.TryGetValue(e, out var f))
        {
            var h = e.H ?? throw new InvalidOperationException($"the Hessian of {e.Tensors[0]} was already released");
            e.Symmetric();
            var importance = e.Importance();
            var dead = new bool[e.N];
            for (int i = 0; i < e.N; i++) dead[i] = h[(long)i * e.N + i] == 0f;
            var u = InverseHessian.UpperCholeskyOfInverse(h, e.N, threads);
            e.H = null;
            f = new Factor(u, importance, dead);
            _factors[e] = f;
        }
        if (--_remaining[e] == 0) _factors.Remove(e);
        return f;
    }
}
