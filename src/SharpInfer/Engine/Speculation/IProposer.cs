using SharpInfer.Scheduling;

namespace SharpInfer.Engine.Speculation;

/// <summary>
/// Proposes tokens that may follow sequences, for the target model to verify (speculative decoding). The engine calls
/// <see cref="Propose"/> once per step with every sequence that speculates in it, so that a proposer that runs a
/// model (a draft model, or an early exit from the target's own layers) can run them all as one batch.
/// Engine-loop thread only.
/// </summary>
public interface IProposer : IDisposable
{
    /// <summary>For each entry of <paramref name="batch"/>, writes up to its limit of proposed tokens and their count.</summary>
    void Propose(ProposalBatch batch);

    /// <summary>The sequence has finished, was aborted or preempted: drop whatever state is kept for it.</summary>
    void Forget(Sequence sequence);
}

/// <summary>The sequences of one step that want proposals, each with its limit and a buffer for the tokens. Reused
/// from step to step (no allocation per token).</summary>
public sealed class ProposalBatch(int capacity, int maxTokens)
{
    private readonly Sequence[] _sequences = new Sequence[capacity];
    private readonly int[] _limits = new int[capacity];
    private readonly int[] _counts = new int[capacity];
    private readonly int[] _tokens = new int[capacity * maxTokens];

    public int Count { get; private set; }
    public int MaxTokens { get; } = maxTokens;

    public void Clear() => Count = 0;

    public void Add(Sequence s, int limit)
    {
        _sequences[Count] = s;
        _limits[Count] = Math.Min(limit, MaxTokens);
        _counts[Count] = 0;
        Count++;
    }

    public Sequence Sequence(int i) => _sequences[i];
    public int Limit(int i) => _limits[i];
    /// <summary>The proposal buffer of entry <paramref name="i"/> (its <see cref="Limit"/> long).</summary>
    public Span<int> Tokens(int i) => _tokens.AsSpan(i * MaxTokens, _limits[i]);
    public int Proposed(int i) => _counts[i];
    public void SetProposed(int i, int count) => _counts[i] = Math.Clamp(count, 0, _limits[i]);
}
