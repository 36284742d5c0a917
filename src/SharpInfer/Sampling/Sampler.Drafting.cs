namespace SharpInfer.Sampling;

/// <summary>
/// Speculative decoding with a sampled draft (Leviathan et al. 2023; Chen et al. 2023): the draft model draws its
/// proposal x from its own processed distribution q, and the target accepts x with probability min(1, p(x)/q(x)),
/// else draws from norm(max(0, p − q)). Whatever q is, the returned token is distributed exactly as
/// <see cref="Sampler.Sample"/>'s; the closer q is to p, the more proposals stand.
/// </summary>
internal sealed partial class Sampler
{
    // The draft's draws come from their own stream, derived from the request's seed, so they are independent of the
    // verification's draws and survive preemption (the sampler lives as long as the request).
    private const ulong DraftStream = 0xD1B54A32D192ED03UL;
    private Xoshiro256 _draftRng;
    private bool _draftRngReady;

    /// <summary>
    /// Draws a draft model's proposal from <paramref name="logits"/> (the draft's, modified in place) under this
    /// request's stateless rules and its penalties as of the accepted tokens (logit bias, penalties, temperature, top-k,
    /// top-p, min-p; not the grammar mask, and not penalty updates within the proposed run: any q keeps the output
    /// exact, these only cost acceptance). Writes the distribution it drew from into <paramref name="q"/> (vocabulary
    /// long). Sampled requests only.
    /// </summary>
    public int Propose(Span<float> logits, SamplerScratch scratch, Span<float> q)
    {
        if (_p.IsGreedy) throw new InvalidOperationException("a greedy request proposes the draft's argmax");
        ApplyRules(logits, scratch, withProcessor: false);   // the grammar's state belongs to the target's run
        int n = Candidates(logits, scratch, out double sum);
        int[] ids = scratch.Ids;
        float[] vals = scratch.Values;
        q.Clear();
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            // draw from exactly the values reported in q
            float v = (float)(vals[i] / sum);
            q[ids[i]] = v;
            vals[i] = v;
            total += v;
        }
        if (!_draftRngReady)
        {
            _draftRng = new Xoshiro256(Seed ^ DraftStream);
            _draftRngReady = true;
        }
        return DrawFrom(ids, vals, n, total, ref _draftRng);
    }

    /// <summary>
    /// Verifies <paramref name="draft"/>, drawn from <paramref name="q"/> by <see cref="Propose"/>, against the target's
    /// distribution p after every rule of the request (as <see cref="Verify(Span{float}, SamplerScratch, int, out bool)"/>):
    /// accepted with probability min(1, p(x)/q(x)); otherwise the returned token is drawn from norm(max(0, p − q)).
    /// Greedy requests take the argmax as always.
    /// </summary>
    public int Verify(Span<float> logits, SamplerScratch scratch, int draft, ReadOnlySpan<float> q, out bool accepted) =>
        Verify(logits, scratch, draft, q, out accepted, residualIsPForTests: false);

    /// <param name="residualIsPForTests">Tests only: redraw a rejected position from p instead of max(0, p − q), a
    /// deliberately wrong rule the distribution test must catch.</param>
    internal int Verify(Span<float> logits, SamplerScratch scratch, int draft, ReadOnlySpan<float> q, out bool accepted, bool residualIsPForTests)
    {
        ApplyRules(logits, scratch, withProcessor: true);
        if (_p.IsGreedy)
        {
            int t = ArgMax(logits);
            accepted = t == draft;
            return t;
        }
        int n = Candidates(logits, scratch, out double sum);
        int[] ids = scratch.Ids;
        float[] vals = scratch.Values;
        double px = 0;
        for (int i = 0; i < n; i++) if (ids[i] == draft) { px = vals[i] / sum; break; }
        // u < p(x)/q(x), without dividing by a q(x) of 0 (impossible for a drawn x; it would accept any p(x) > 0)
        if (_rng.NextDouble() * q[draft] < px)
        {
            accepted = true;
            return draft;
        }
        accepted = false;
        double rest = 0;
        for (int i = 0; i < n; i++)
        {
            double p = vals[i] / sum;
            double r = residualIsPForTests ? p : Math.Max(0, p - q[ids[i]]);
            vals[i] = (float)r;
            rest += vals[i];
        }
        // nothing left only when p equals q (up to rounding), where no rejection can happen: the proposal stands
        if (rest <= 0)
        {
            accepted = true;
            return draft;
        }
        return DrawFrom(ids, vals, n, rest, ref _rng);
    }
}
