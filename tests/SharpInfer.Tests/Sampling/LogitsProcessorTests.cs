using SharpInfer.Sampling;

namespace SharpInfer.Tests.Sampling;

public class LogitsProcessorTests
{
    /// <summary>Allows only tokens of one parity, flipping after each accepted token.</summary>
    private sealed class Parity : ILogitsProcessor, ILogitsProcessorFactory
    {
        public int Next;
        public List<int> Accepted { get; } = [];
        public ILogitsProcessor Create() => this;
        public void Process(Span<float> logits)
        {
            for (int i = 0; i < logits.Length; i++) if (i % 2 != Next) logits[i] = float.NegativeInfinity;
        }
        public void Accept(int token) { Accepted.Add(token); Next ^= 1; }
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(1.3f)]
    public void MaskAppliesBeforeBiasPenaltiesAndTruncation(float temperature)
    {
        var proc = new Parity();
        // a huge bias on token 1 must not resurrect it while only even tokens are allowed
        var p = new SamplingParams
        {
            Temperature = temperature,
            TopK = 3,
            TopP = 0.9f,
            MinP = 0.05f,
            RepetitionPenalty = 1.3f,
            Seed = 7,
            LogitBias = new Dictionary<int, float> { [1] = 100f },
            LogitsProcessor = proc,
        };
        var s = new Sampler(p, 8, [1, 2]);
        var scratch = new SamplerScratch(8);
        for (int step = 0; step < 50; step++)
        {
            int expectParity = proc.Next;
            float[] logits = [1.0f, 3.0f, 2.0f, -1.0f, 0.5f, 2.9f, -3f, 0f];
            int t = s.Sample(logits, scratch);
            Assert.Equal(expectParity, t % 2);
            s.Accept(t);
        }
        Assert.Equal(50, proc.Accepted.Count);
    }
}
