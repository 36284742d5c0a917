namespace SharpInfer.Sampling;

/// <summary>Vocabulary-sized work arrays shared by every sampler on one thread (the engine loop), so a sampler
/// itself holds only a few small arrays and sampling allocates nothing per token.</summary>
internal sealed class SamplerScratch
{
    public int VocabSize { get; }
    internal readonly int[] Ids;
    internal readonly float[] Values;
    internal readonly int[] Marks;
    internal int Stamp;

    public SamplerScratch(int vocabSize)
    {
        VocabSize = vocabSize;
        Ids = new int[vocabSize];
        Values = new float[vocabSize];
        Marks = new int[vocabSize];
    }

    /// <summary>A fresh stamp for marking tokens (avoids clearing <see cref="Marks"/>).</summary>
    internal int NextStamp()
    {
        if (++Stamp == int.MaxValue) { Array.Clear(Marks); Stamp = 1; }
        return Stamp;
    }
}
