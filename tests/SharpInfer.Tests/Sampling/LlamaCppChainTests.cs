using System.Numerics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SharpInfer.Sampling;
using SharpInfer.Tests.Server;

namespace SharpInfer.Tests.Sampling;

/// <summary>llama.cpp's sampler chain and its std::mt19937 draw: the generator against the C++ standard, the draw
/// against libstdc++'s generate_canonical, the chain against a first-principles walk of llama.cpp's steps, and the
/// whole path against llama.cpp's own server tests (the text llama-server writes at seed 42).</summary>
public class LlamaCppChainTests
{
    [Fact]
    public void Mt19937MatchesTheCppStandard()
    {
        // [rand.predef]: the 10000th consecutive invocation of a default-constructed mt19937 produces 4123659995
        var mt = new Mt19937();
        uint last = 0;
        for (int i = 0; i < 10000; i++) last = mt.Next();
        Assert.Equal(4123659995u, last);
        // the first outputs for seed 5489 (the reference implementation's mt19937ar with init_genrand(5489))
        var again = new Mt19937(5489);
        Assert.Equal(3499211612u, again.Next());
        Assert.Equal(581869302u, again.Next());
    }

    [Fact]
    public void CanonicalDrawIsLowWordPlusHighWordOver2To64()
    {
        var mt = new Mt19937(42);
        var copy = new Mt19937(42);
        for (int i = 0; i < 1000; i++)
        {
            double u = mt.NextCanonical();
            BigInteger lo = copy.Next(), hi = copy.Next();
            // exact value (lo + hi·2^32) / 2^64, then the nearest double: the draw may differ from it by one rounding
            double exact = (double)(lo + (hi << 32)) / 18446744073709551616.0;
            Assert.InRange(u, 0.0, Math.BitDecrement(1.0));
            Assert.True(Math.Abs(u - exact) <= Math.BitIncrement(exact) - exact, $"{u} vs {exact}");
        }
    }

    /// <summary>llama.cpp's steps written out independently: top-k (sorted), top-p on the softmax of the raw logits,
    /// min-p on logits, temperature, then the first token whose running sum reaches sum × u.</summary>
    private static int Reference(float[] logits, int topK, float topP, float minP, float temp, double u)
    {
        var c = logits.Select((l, i) => (Id: i, Logit: l)).OrderByDescending(x => x.Logit).ThenBy(x => x.Id).Take(topK).ToList();
        float max = c[0].Logit;
        double z = c.Sum(x => Math.Exp(x.Logit - max));
        double acc = 0;
        int keep = c.Count;
        for (int i = 0; i < c.Count; i++)
        {
            acc += Math.Exp(c[i].Logit - max) / z;
            if (acc >= topP) { keep = i + 1; break; }
        }
        c = c.Take(keep).Where((x, i) => i == 0 || x.Logit >= max + Math.Log(minP)).ToList();
        var w = c.Select(x => Math.Exp((x.Logit - max) / temp)).ToList();
        double target = w.Sum() * u, run = 0;
        for (int i = 0; i < c.Count; i++)
        {
            run += w[i];
            if (run >= target) return c[i].Id;
        }
        return c[^1].Id;
    }

    [Fact]
    public void ChainPicksWhatLlamaCppsStepsPick()
    {
        var rng = new Random(7);
        var scratch = new SamplerScratch(64);
        for (int trial = 0; trial < 200; trial++)
        {
            // well-separated logits, so float and double agree on every threshold
            var logits = Enumerable.Range(0, 64).Select(i => (float)(rng.Next(0, 4000) / 100.0 - 20)).Distinct().ToArray();
            if (logits.Length < 64) continue;
            var p = new SamplingParams { TopK = 40, TopP = 0.95f, MinP = 0.05f, Temperature = 0.8f, Seed = (ulong)trial, LlamaCppChain = true };
            var sampler = new Sampler(p, 64, []);
            double u = new Mt19937((uint)trial).NextCanonical();
            int expected = Reference(logits, 40, 0.95f, 0.05f, 0.8f, u);
            Assert.Equal(expected, sampler.Sample((float[])logits.Clone(), scratch));
        }
    }

    [Theory]
    // llama.cpp's tools/server/tests/unit/test_completion.py: tinyllama2 preset (--temp 0.8 --seed 42), n_predict 8 / 64
    [InlineData("I believe the meaning of life is", 8, "(going|bed)+")]
    [InlineData("Write a joke about AI from a very long prompt which will not be truncated", 64, "(princesses|everyone|kids|Anna|forest)+")]
    public async Task NativeCompletionWritesLlamaServersTextAtItsSeed(string prompt, int nPredict, string pattern)
    {
        await using var s = await ServerHarness.StartAsync(configure: o => o with { DefaultSeed = 42, DefaultTemperature = 0.8f });
        var body = new JsonObject { ["prompt"] = prompt, ["n_predict"] = nPredict };
        string first = (await s.PostOkAsync("completion", body.DeepClone()))["content"]!.GetValue<string>();
        Assert.Matches(new Regex(pattern), first);
        Assert.Equal(first, (await s.PostOkAsync("completion", body.DeepClone()))["content"]!.GetValue<string>());
    }
}
