using System.Text;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Sampling;

public class SamplerTests
{
    private static readonly SamplerScratch Scratch = new(8);

    private static float[] Logits() => [1.0f, 3.0f, 2.0f, -1.0f, 0.5f, 2.9f, -3f, 0f];

    private static int[] Draws(SamplingParams p, int n, float[]? logits = null)
    {
        var s = new Sampler(p, 8, []);
        var r = new int[n];
        for (int i = 0; i < n; i++) r[i] = s.Sample((logits ?? Logits()).ToArray(), Scratch);
        return r;
    }

    [Fact]
    public void GreedyPicksArgMax() => Assert.All(Draws(SamplingParams.Greedy(), 5), t => Assert.Equal(1, t));

    [Fact]
    public void SameSeedSameTokens()
    {
        var p = new SamplingParams { Temperature = 1.5f, Seed = 42 };
        Assert.Equal(Draws(p, 200), Draws(p, 200));
        Assert.NotEqual(Draws(p, 200), Draws(p with { Seed = 43 }, 200));
    }

    [Fact]
    public void TopKOneIsGreedy() =>
        Assert.All(Draws(new SamplingParams { Temperature = 5f, TopK = 1, Seed = 1 }, 100), t => Assert.Equal(1, t));

    [Fact]
    public void TopKRestrictsToMostLikely()
    {
        var d = Draws(new SamplingParams { Temperature = 10f, TopK = 3, Seed = 7 }, 2000);
        Assert.All(d, t => Assert.Contains(t, new[] { 1, 5, 2 }));
        Assert.Equal(3, d.Distinct().Count());
    }

    [Fact]
    public void TopPKeepsNucleus()
    {
        // softmax(Logits) ≈ token1 0.38, token5 0.34, token2 0.14 ...: p = 0.5 needs tokens 1 and 5
        var d = Draws(new SamplingParams { Temperature = 1f, TopP = 0.5f, Seed = 3 }, 2000);
        Assert.All(d, t => Assert.Contains(t, new[] { 1, 5 }));
        Assert.Equal(2, d.Distinct().Count());
        var tiny = Draws(new SamplingParams { Temperature = 1f, TopP = 0.01f, Seed = 3 }, 200);
        Assert.All(tiny, t => Assert.Equal(1, t));
    }

    [Fact]
    public void MinPDropsUnlikely()
    {
        // min_p 0.3: keep p >= 0.3 * p(token1): tokens 1, 5, 2 (0.14/0.38 = 0.37)
        var d = Draws(new SamplingParams { Temperature = 1f, MinP = 0.3f, Seed = 5 }, 3000);
        Assert.Equal(new[] { 1, 2, 5 }, d.Distinct().OrderBy(x => x).ToArray());
    }

    [Fact]
    public void FrequenciesFollowSoftmax()
    {
        float[] logits = [0f, MathF.Log(2f), MathF.Log(3f)]; // probabilities 1/6, 2/6, 3/6
        var s = new Sampler(new SamplingParams { Temperature = 1f, Seed = 11 }, 3, []);
        var scratch = new SamplerScratch(3);
        var counts = new int[3];
        const int n = 60000;
        for (int i = 0; i < n; i++) counts[s.Sample(logits.ToArray(), scratch)]++;
        for (int k = 0; k < 3; k++) Assert.InRange(counts[k] / (double)n, (k + 1) / 6.0 - 0.01, (k + 1) / 6.0 + 0.01);
    }

    [Fact]
    public void TemperatureSharpens()
    {
        float[] logits = [0f, 1f];
        int High(float temp)
        {
            var s = new Sampler(new SamplingParams { Temperature = temp, Seed = 2 }, 2, []);
            var scratch = new SamplerScratch(2);
            int c = 0;
            for (int i = 0; i < 5000; i++) c += s.Sample(logits.ToArray(), scratch);
            return c;
        }
        Assert.True(High(0.3f) > High(1f));
        Assert.True(High(1f) > High(3f));
    }

    [Fact]
    public void RepetitionPenaltyDividesPositiveAndMultipliesNegative()
    {
        var s = new Sampler(new SamplingParams { Temperature = 0, RepetitionPenalty = 2f }, 8, [1, 3]);
        var l = Logits();
        Assert.Equal(5, s.Sample(l, Scratch)); // token 1: 3 → 1.5, so token 5 (2.9) wins
        Assert.Equal(1.5f, l[1]);
        Assert.Equal(-2f, l[3]);
    }

    [Fact]
    public void PresenceAndFrequencyPenaltiesUseGeneratedCounts()
    {
        var s = new Sampler(new SamplingParams { Temperature = 0, PresencePenalty = 0.5f, FrequencyPenalty = 0.25f }, 8, [5, 5]);
        s.Accept(1); s.Accept(1);
        var l = Logits();
        s.Sample(l, Scratch);
        Assert.Equal(3f - 0.5f - 2 * 0.25f, l[1]);
        Assert.Equal(2.9f, l[5]); // prompt tokens are not penalised by presence/frequency
    }

    [Fact]
    public void LogitBiasApplies()
    {
        var p = new SamplingParams { Temperature = 0, LogitBias = new Dictionary<int, float> { [6] = 10f } };
        Assert.All(Draws(p, 3), t => Assert.Equal(6, t));
    }

    [Theory]
    [InlineData("temperature")]
    [InlineData("top_p")]
    [InlineData("top_k")]
    [InlineData("min_p")]
    [InlineData("repetition_penalty")]
    [InlineData("presence_penalty")]
    [InlineData("frequency_penalty")]
    [InlineData("max_tokens")]
    [InlineData("logit_bias")]
    [InlineData("top_logprobs")]
    public void InvalidParametersNameTheirField(string field)
    {
        var bad = field switch
        {
            "temperature" => new SamplingParams { Temperature = -1 },
            "top_p" => new SamplingParams { TopP = 1.5f },
            "top_k" => new SamplingParams { TopK = -5 },
            "min_p" => new SamplingParams { MinP = float.NaN },
            "repetition_penalty" => new SamplingParams { RepetitionPenalty = 0 },
            "presence_penalty" => new SamplingParams { PresencePenalty = 3 },
            "frequency_penalty" => new SamplingParams { FrequencyPenalty = -2.5f },
            "max_tokens" => new SamplingParams { MaxTokens = 0 },
            "logit_bias" => new SamplingParams { LogitBias = new Dictionary<int, float> { [99] = 1 } },
            _ => new SamplingParams { Logprobs = 50 },
        };
        var e = Assert.Throws<InvalidRequestException>(() => bad.Validate(8));
        Assert.Equal(field, e.Field);
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void LogProbsTopAreSortedAndNormalised()
    {
        var l = Logits();
        double lse = LogProbs.LogSumExp(l);
        var top = new TokenLogProb[3];
        Assert.Equal(3, LogProbs.Top(l, lse, top));
        Assert.Equal(new[] { 1, 5, 2 }, top.Select(t => t.Id).ToArray());
        double total = l.Sum(x => Math.Exp(x - lse));
        Assert.Equal(1.0, total, 6);
        Assert.Equal(Math.Log(Math.Exp(3) / l.Sum(x => Math.Exp(x))), top[0].LogProb, 5);
    }
}

public class StopStringMatcherTests
{
    private static (string Text, bool Stopped, List<string> Chunks) Run(string[] stops, params string[] deltas)
    {
        var m = new StopStringMatcher(stops);
        var sb = new StringBuilder();
        var chunks = new List<string>();
        foreach (var d in deltas)
        {
            int before = sb.Length;
            bool stop = m.Push(d, sb);
            chunks.Add(sb.ToString(before, sb.Length - before));
            if (stop) return (sb.ToString(), true, chunks);
        }
        sb.Append(m.Flush());
        return (sb.ToString(), false, chunks);
    }

    [Fact]
    public void StopsAcrossDeltaBoundaries()
    {
        var (text, stopped, chunks) = Run(["\n\nUser:"], "Hello", " there\n", "\nUs", "er: more");
        Assert.True(stopped);
        Assert.Equal("Hello there", text);
        Assert.DoesNotContain(chunks, c => c.Contains('\n')); // the partial stop string was never shown
    }

    [Fact]
    public void ReleasesHeldTextWhenRuledOut()
    {
        var (text, stopped, chunks) = Run(["STOP"], "ab S", "T", "x done");
        Assert.False(stopped);
        Assert.Equal("ab STx done", text);
        Assert.Equal("ab ", chunks[0]);
    }

    [Fact]
    public void EarliestOfSeveralStopsWins()
    {
        var (text, stopped, _) = Run(["b", "xyz"], "a xyz b");
        Assert.True(stopped);
        Assert.Equal("a ", text);
    }

    [Fact]
    public void FlushReturnsHeldPrefixAtEnd()
    {
        var (text, stopped, _) = Run(["END"], "the EN");
        Assert.False(stopped);
        Assert.Equal("the EN", text);
    }
}
