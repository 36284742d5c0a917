namespace SharpInfer.Engine.Pooling;

/// <summary>
/// One pooling request's state while its prompt runs through the engine, possibly in several chunks and batched with
/// other requests: which token positions it needs hidden states of, and what it has gathered so far. Everything it
/// needs is allocated when the request is created; a preempted request starts over (<see cref="Reset"/>).
/// </summary>
internal sealed class Pooler
{
    private readonly PoolingParams _params;
    private readonly ClassifierHead? _head;
    private readonly int _embd, _promptLength, _target;
    private readonly double[]? _sum;
    private readonly float[]? _picked;
    private readonly float[][]? _perToken;
    private int _seen;

    public PoolingType Type { get; }

    public Pooler(PoolingType type, PoolingParams p, ClassifierHead? head, int embeddingLength, int promptLength)
    {
        Type = type;
        _params = p;
        _head = head;
        _embd = embeddingLength;
        _promptLength = promptLength;
        switch (type)
        {
            case PoolingType.Mean:
                _sum = new double[embeddingLength];
                break;
            case PoolingType.None:
                _perToken = new float[promptLength][];
                for (int i = 0; i < promptLength; i++) _perToken[i] = new float[embeddingLength];
                break;
            default:
                _picked = new float[embeddingLength];
                bool last = type == PoolingType.Last || (type == PoolingType.Rank && head!.UsesLastToken);
                _target = last ? promptLength - 1 : 0;
                break;
        }
    }

    /// <summary>Whether the hidden state of prompt position <paramref name="position"/> is needed.</summary>
    public bool Wants(int position) => Type is PoolingType.Mean or PoolingType.None || position == _target;

    /// <summary>Forgets what was gathered (the request was preempted and recomputes its prompt from the start).</summary>
    public void Reset()
    {
        if (_sum != null) Array.Clear(_sum);
        _seen = 0;
    }

    /// <summary>Takes the output-normed hidden state of a wanted position.</summary>
    public void Accept(int position, ReadOnlySpan<float> hidden)
    {
        switch (Type)
        {
            case PoolingType.Mean:
                for (int i = 0; i < _embd; i++) _sum![i] += hidden[i];
                break;
            case PoolingType.None:
                hidden[.._embd].CopyTo(_perToken![position]);
                break;
            default:
                hidden[.._embd].CopyTo(_picked);
                break;
        }
        _seen++;
    }

    /// <summary>The request's output once its whole prompt has run.</summary>
    public PoolingOutput Finish()
    {
        int expected = Type is PoolingType.Mean or PoolingType.None ? _promptLength : 1;
        if (_seen != expected) throw new InvalidOperationException($"pooling saw {_seen} hidden states, expected {expected}");
        switch (Type)
        {
            case PoolingType.Mean:
                var mean = new float[_embd];
                for (int i = 0; i < _embd; i++) mean[i] = (float)(_sum![i] / _promptLength);
                return new PoolingOutput(Type, [Shape(mean)]);
            case PoolingType.None:
                for (int t = 0; t < _perToken!.Length; t++) _perToken[t] = Shape(_perToken[t]);
                return new PoolingOutput(Type, _perToken);
            case PoolingType.Rank:
                return new PoolingOutput(Type, [_head!.Apply(_picked)]);
            default:
                return new PoolingOutput(Type, [Shape(_picked!)]);
        }
    }

    /// <summary>Matryoshka truncation, then normalization (so a truncated vector is normalized again).</summary>
    private float[] Shape(float[] v)
    {
        if (_params.Dimensions is int d && d < v.Length) v = v[..d];
        EmbeddingNorm.Apply(v, _params.Normalize);
        return v;
    }
}
