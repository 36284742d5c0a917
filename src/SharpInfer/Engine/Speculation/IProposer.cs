using SharpInfer.Sampling;
using SharpInfer.Scheduling;

namespace SharpInfer.Engine.Speculation;

/// <summary>
/// Proposes tokens that may follow sequences, for the target model to verify (speculative decoding). The engine calls
/// <see cref="Propose"/> once per step with every sequence that speculates in it, so that a proposer that runs a
/// model (a draft model, or an early exit from the target's own layers) can run them all as one batch.
/// Engine-loop thread only.
/// </summary>
internal interface IProposer : IDisposable
{
    /// <summary>For each entry of <paramref name="batch"/>, writes up to its limit of proposed tokens and their count.</summary>
    void Propose(ProposalBatch batch);

    /// <summary>The sequence has finished, was aborted or preempted: drop whatever state is kept for it.</summary>
    void Forget(Sequence sequence);
}

/// <summary>The sequences of one step that want proposals, each with its limit and a buffer for the tokens, and for
/// sampled requests their sampler and room for the distribution each proposal was drawn from. Reused from step to step
/// (no allocation per token; the distribution rows are allocated once, the first time a proposer asks for them).</summary>
internal sealed class ProposalBatch(int capacity, int maxTokens)
{
    private readonly Sequence[] _sequences = new Sequence[capacity];
    private readonly Sampler?[] _samplers = new Sampler?[capacity];
    private readonly int[] _limits = new int[capacity];
    private readonly int[] _counts = new int[capacity];
    private readonly bool[] _drawn = new bool[capacity];
    private readonly int[] _tokens = new int[capacity * maxTokens];
    private float[]? _distributions;   // capacity × maxTokens rows of the vocabulary
    private int _vocab;

    public int Count { get; private set; }
    public int Capacity => capacity;
    public int MaxTokens { get; } = maxTokens;

    public void Clear() => Count = 0;

    /// <summary>Adds a sequence; <paramref name="sampler"/> is its request's when the request samples (temperature &gt; 0),
    /// null when it is greedy (a proposer then proposes its most likely tokens).</summary>
    public void Add(Sequence s, int limit, Sampler? sampler = null)
    {
        _sequences[Count] = s;
        _samplers[Count] = sampler;
        _limits[Count] = Math.Min(limit, MaxTokens);
        _counts[Count] = 0;
        _drawn[Count] = false;
        Count++;
    }

    public Sequence Sequence(int i) => _sequences[i];
    /// <summary>The sampler of a sampled request, null for a greedy one.</summary>
    public Sampler? SamplerOf(int i) => _samplers[i];
    public int Limit(int i) => _limits[i];
    /// <summary>The proposal buffer of entry <paramref name="i"/> (its <see cref="Limit"/> long).</summary>
    public Span<int> Tokens(int i) => _tokens.AsSpan(i * MaxTokens, _limits[i]);
    public int Proposed(int i) => _counts[i];
    public void SetProposed(int i, int count) => _counts[i] = Math.Clamp(count, 0, _limits[i]);

    /// <summary>Whether entry <paramref name="i"/>'s proposals were drawn from distributions written with
    /// <see cref="Distribution"/> (else each was proposed with certainty: a one-hot q, as n-gram lookups are).</summary>
    public bool IsDrawn(int i) => _drawn[i];

    /// <summary>The row (vocabulary long) for the distribution proposal <paramref name="j"/> of entry <paramref name="i"/> was
    /// drawn from; asking for it marks the entry as drawn.</summary>
    public Span<float> Distribution(int i, int j, int vocab)
    {
        if (_distributions == null || _vocab != vocab)
        {
            _vocab = vocab;
            _distributions = new float[(long)capacity * MaxTokens * vocab];
        }
        _drawn[i] = true;
        return _distributions.AsSpan((i * MaxTokens + j) * vocab, vocab);
    }

    /// <summary>The distribution proposal <paramref name="j"/> of a drawn entry came from (see <see cref="Distribution"/>).</summary>
    public ReadOnlySpan<float> DistributionOf(int i, int j) => _distributions.AsSpan((i * MaxTokens + j) * _vocab, _vocab);
}
