using SharpInfer.Engine;
using SharpInfer.Engine.Speculation;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Sampling;

namespace SharpInfer.Tests.Engine;

/// <summary>
/// Speculative decoding with n-gram (prompt lookup) proposals: greedy output token for token and log-prob for
/// log-prob identical to plain decoding — alone, in a batch, under preemption, with stop strings — and sampled output
/// distributed exactly as without speculation (a chi-square test that also catches a wrong acceptance rule).
/// </summary>
public class SpeculativeDecodingTests
{
    private static readonly SpeculativeConfig Ngram = new() { NumSpeculativeTokens = 5, PromptLookupMax = 4, PromptLookupMin = 1, DisableByBatchSize = 64 };

    private sealed record Result(int[] Tokens, (int Id, int Bits)[][] Top, FinishReason Finish, string Text, int Drafted, int Accepted);

    private static async Task<Result> Collect(IAsyncEnumerable<RequestOutput> stream)
    {
        var tokens = new List<int>();
        var tops = new List<(int, int)[]>();
        var text = new System.Text.StringBuilder();
        var finish = FinishReason.Abort;
        int drafted = 0, accepted = 0;
        await foreach (var o in stream)
        {
            tokens.AddRange(o.TokenIds);
            text.Append(o.Text);
            if (o.LogProbs != null) foreach (var lp in o.LogProbs) tops.Add(lp.Top.Select(t => (t.Id, BitConverter.SingleToInt32Bits(t.LogProb))).ToArray());
            if (o.Finish is { } f) finish = f;
            if (o.Timings is { } t) (drafted, accepted) = (t.DraftTokens, t.DraftAccepted);
        }
        return new Result(tokens.ToArray(), tops.ToArray(), finish, text.ToString(), drafted, accepted);
    }

    private static EngineOptions Options(SpeculativeConfig? spec, int maxSeqs = 16, long? kvBytes = null) => new()
    {
        Threads = 2,
        MaxNumSeqs = maxSeqs,
        MaxNumBatchedTokens = 128,
        KvType = KvDataType.F32,
        KvCacheMemoryBytes = kvBytes,
        Speculative = spec,
        EnablePrefixCaching = false,   // every run computes everything: the comparison is about speculation alone
    };

    private static async Task<Result[]> Run(Model model, EngineOptions options, int[][] prompts, Func<int, SamplingParams> sampling)
    {
        using var engine = new LlmEngine(model, options);
        return await Task.WhenAll(prompts.Select((p, i) => Collect(engine.AddRequest(new EngineRequest { PromptTokens = p, Sampling = sampling(i) }))));
    }

    private static void AssertSame(Result[] plain, Result[] spec)
    {
        for (int i = 0; i < plain.Length; i++)
        {
            Assert.True(plain[i].Tokens.SequenceEqual(spec[i].Tokens),
                $"request {i}: [{string.Join(",", plain[i].Tokens)}] plain vs [{string.Join(",", spec[i].Tokens)}] speculative");
            Assert.Equal(plain[i].Finish, spec[i].Finish);
            Assert.Equal(plain[i].Text, spec[i].Text);
            Assert.Equal(plain[i].Top.Length, spec[i].Top.Length);
            for (int s = 0; s < plain[i].Top.Length; s++) Assert.Equal(plain[i].Top[s], spec[i].Top[s]);
        }
    }

    private static SamplingParams Greedy(int max) => new() { Temperature = 0, MaxTokens = max, Logprobs = 3 };

    [Fact]
    public void NgramLookupProposesWhatFollowedTheMostRecentLongestMatch()
    {
        Span<int> draft = stackalloc int[4];
        // ... 1 2 3 [9 9] ... 1 2 3 [7 8] ... 2 3 → the most recent match of "2 3" is followed by 7 8
        int[] tokens = [1, 2, 3, 9, 9, 5, 1, 2, 3, 7, 8, 6, 2, 3];
        Assert.Equal(4, NgramProposer.Lookup(tokens, draft, 1, 3));
        Assert.Equal([7, 8, 6, 2], draft.ToArray());
        // the longest suffix wins over a more recent shorter one: "1 2 3" appears only once before
        int[] t2 = [1, 2, 3, 4, 4, 3, 5, 1, 2, 3];
        Assert.Equal(4, NgramProposer.Lookup(t2, draft, 1, 3));
        Assert.Equal([4, 4, 3, 5], draft.ToArray());
        // a match at the very end proposes only what there is; no match (or below the minimum) proposes nothing
        int[] t3 = [5, 6, 5];
        Assert.Equal(2, NgramProposer.Lookup(t3, draft, 1, 2));
        Assert.Equal([6, 5], draft[..2].ToArray());
        Assert.Equal(0, NgramProposer.Lookup([1, 2, 3, 4], draft, 1, 3));
        Assert.Equal(0, NgramProposer.Lookup([1, 2, 3, 2], draft, 2, 3));
    }

    [Fact]
    public void SpeculativeConfigParsesVllmsJsonAndRejectsNonsense()
    {
        var c = SpeculativeConfig.Parse("""{"method": "ngram", "num_speculative_tokens": 7, "prompt_lookup_max": 5, "prompt_lookup_min": 3}""");
        Assert.Equal((7, 5, 3), (c.NumSpeculativeTokens, c.PromptLookupMax, c.PromptLookupMin));
        var d = SpeculativeConfig.Parse("""{"model": "draft.gguf", "num_speculative_tokens": 4}""");   // vLLM's form: the model implies the method
        Assert.Equal(("draft_model", "draft.gguf", 4), (d.Method, d.Model, d.NumSpeculativeTokens));
        foreach (var bad in new[]
                 {
                     "", "[]", "{\"method\": \"eagle\"}", "{\"num_speculative_tokens\": 0}", "{\"num_speculative_tokens\": 99}",
                     "{\"prompt_lookup_min\": 4, \"prompt_lookup_max\": 2}", "{\"method\": 1}", "{\"num_speculative_tokens\": \"5\"}",
                     "{\"bogus\": 1}", "{\"method\": \"draft_model\"}", "{\"method\": \"ngram\", \"model\": \"d.gguf\"}",
                 })
        {
            var e = Assert.Throws<InvalidRequestException>(() => SpeculativeConfig.Parse(bad));
            Assert.Contains("speculative config", e.Message);
        }
    }

    [Fact]
    public async Task GreedyOutputIsIdenticalAloneAndInABatchOfSixteenWithStopStrings()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var prompts = EngineExactnessTests.Prompts(model, 16, seed: 5);
        SamplingParams Sampling(int i) => i % 4 == 3 ? Greedy(60) with { Stop = ["Lily", "park."] } : Greedy(60);
        var plain = await Run(model, Options(null), prompts, Sampling);
        // one at a time: speculation runs (the batch never exceeds DisableByBatchSize)
        var alone = new Result[prompts.Length];
        using (var engine = new LlmEngine(model, Options(Ngram)))
            for (int i = 0; i < prompts.Length; i++)
                alone[i] = await Collect(engine.AddRequest(new EngineRequest { PromptTokens = prompts[i], Sampling = Sampling(i) }));
        AssertSame(plain, alone);
        var batched = await Run(model, Options(Ngram), prompts, Sampling);
        AssertSame(plain, batched);
        // the proposals were real: many verified, a good share accepted (TinyStories text repeats itself)
        int drafted = batched.Sum(r => r.Drafted), accepted = batched.Sum(r => r.Accepted);
        Assert.True(drafted > 100 && accepted > drafted / 10, $"drafted {drafted}, accepted {accepted}");
        Assert.Contains(plain, r => r.Finish == FinishReason.Stop);
    }

    [Fact]
    public async Task GreedyOutputIsIdenticalUnderPreemption()
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var prompts = EngineExactnessTests.Prompts(model, 16, seed: 6);
        long perToken = ModelRunner.KvBytesPerToken(model.Config, KvDataType.F32);
        var plain = await Run(model, Options(null), prompts, _ => Greedy(48));
        using var engine = new LlmEngine(model, Options(Ngram, kvBytes: perToken * 16 * 20));   // 20 blocks: constant preemption
        var spec = await Task.WhenAll(prompts.Select(p => Collect(engine.AddRequest(new EngineRequest { PromptTokens = p, Sampling = Greedy(48) }))));
        AssertSame(plain, spec);
        Assert.True(engine.Stats.Preemptions > 0, "the tiny cache should have forced preemption");
        Assert.True(engine.Stats.SpecAcceptedTokens > 0);
        await EngineExactnessTests.WaitIdle(engine);
        Assert.Equal(0, engine.Stats.KvBlocksUsed);   // rejected proposals gave their blocks back
    }

    /// <summary>Histogram of (position, token) over many sampled continuations of one prompt.</summary>
    internal static async Task<Dictionary<(int, int), int>> Histogram(Model model, SpeculativeConfig? spec, SamplingParams sampling, int requests, ulong seed0,
                                                                      Action<EngineStats>? stats = null)
    {
        using var engine = new LlmEngine(model, Options(spec, maxSeqs: 4) with { Threads = 1 });
        var prompt = model.Tokenizer.Encode("Once upon a time, there was a little girl named Lily. She loved to play. Once upon a time, there was a little");
        var counts = new Dictionary<(int, int), int>();
        for (int start = 0; start < requests; start += 4)
        {
            var batch = await Task.WhenAll(Enumerable.Range(start, 4).Select(i =>
                Collect(engine.AddRequest(new EngineRequest { PromptTokens = prompt, Sampling = sampling with { Seed = seed0 + (ulong)i } }))));
            foreach (var r in batch)
                for (int p = 0; p < r.Tokens.Length; p++) counts[(p, r.Tokens[p])] = counts.GetValueOrDefault((p, r.Tokens[p])) + 1;
        }
        if (spec != null) Assert.True(engine.Stats.SpecAcceptedTokens > 1000, $"accepted {engine.Stats.SpecAcceptedTokens}: the test must exercise verification");
        await EngineExactnessTests.WaitIdle(engine);   // the published stats include the last step
        stats?.Invoke(engine.Stats);
        return counts;
    }

    /// <summary>Two-sample chi-square statistic over the categories (rare ones pooled), and its degrees of freedom.</summary>
    internal static (double Chi2, int Df) ChiSquare(Dictionary<(int, int), int> a, Dictionary<(int, int), int> b)
    {
        double na = a.Values.Sum(), nb = b.Values.Sum();
        var keys = a.Keys.Union(b.Keys).ToList();
        double chi = 0;
        int df = -1;
        double poolA = 0, poolB = 0;
        void Add(double x, double y)
        {
            double total = x + y;
            double ea = total * na / (na + nb), eb = total * nb / (na + nb);
            chi += (x - ea) * (x - ea) / ea + (y - eb) * (y - eb) / eb;
            df++;
        }
        foreach (var k in keys)
        {
            double x = a.GetValueOrDefault(k), y = b.GetValueOrDefault(k);
            if (x + y < 20) { poolA += x; poolB += y; continue; }
            Add(x, y);
        }
        if (poolA + poolB > 0) Add(poolA, poolB);
        return (chi, df);
    }

    /// <summary>Upper 0.001 critical value of chi-square (Wilson–Hilferty approximation, good for df ≥ 10).</summary>
    internal static double Critical001(int df)
    {
        const double z = 3.0902;   // standard normal quantile at 0.999
        double h = 2.0 / (9 * df);
        return df * Math.Pow(1 - h + z * Math.Sqrt(h), 3);
    }

    [Theory]
    [InlineData(1.0f, 1.0f)]
    [InlineData(1.0f, 0.9f)]
    public async Task SampledOutputIsDistributedAsWithoutSpeculation(float temperature, float topP)
    {
        using var model = Model.Load(TestPaths.Stories260K);
        var sampling = new SamplingParams { Temperature = temperature, TopP = topP, MaxTokens = 8, IgnoreEos = true };
        const int Requests = 2600;   // × 8 tokens ≥ 20,000 per side
        var plain = await Histogram(model, null, sampling, Requests, 1);
        var spec = await Histogram(model, Ngram, sampling, Requests, 1_000_000);
        Assert.True(plain.Values.Sum() >= 20_000 && spec.Values.Sum() >= 20_000);
        var (chi, df) = ChiSquare(plain, spec);
        Assert.True(df >= 10, $"df {df}");
        Assert.True(chi < Critical001(df), $"chi-square {chi:F1} with {df} degrees of freedom rejects equality (critical {Critical001(df):F1})");

        // the same test catches a wrong rule: accepting every proposal skews the distribution towards repetition
        var wrong = await Histogram(model, Ngram with { AcceptAllForTests = true }, sampling, Requests, 2_000_000);
        var (chiWrong, dfWrong) = ChiSquare(plain, wrong);
        Assert.True(chiWrong > Critical001(dfWrong), $"a wrong acceptance rule went unnoticed: chi-square {chiWrong:F1}, df {dfWrong}");
    }

    // ---- draft model: stories260K drafting for a widened copy of itself (../shared/tools/widen_gguf.py) ----------

    internal static readonly Lazy<string> WidenedPath = new(() => Widen("widened-tiny-f32.gguf"));

    /// <summary>stories260K widened to 8 layers of 256 by ../shared/tools/widen_gguf.py (f32), generated once into the
    /// shared cache; <paramref name="extra"/> adds arguments (e.g. a larger --noise).</summary>
    internal static string Widen(string name, params string[] extra)
    {
        var path = Path.Combine(Directory.CreateDirectory(Path.Combine(TestPaths.Cache, "models")).FullName, name);
        if (File.Exists(path)) return path;
        var tmp = path + "." + Environment.ProcessId + ".tmp";
        var psi = new System.Diagnostics.ProcessStartInfo("python3") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in (string[])[Path.Combine(TestPaths.Shared, "tools", "widen_gguf.py"), "--type", "f32", "--dim", "256", "--n-layer", "8",
                                     "--n-ff", "512", "--head-dim", "32", "--n-head-kv", "4", .. extra, "-o", tmp])
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException("widen_gguf.py failed: " + err);
        File.Move(tmp, path, overwrite: true);   // same arguments, same bytes: a concurrent writer wrote the same file
        return path;
    }

    internal static SpeculativeConfig Draft(int k = 5) =>
        new() { Method = "draft_model", Model = TestPaths.Stories260K, NumSpeculativeTokens = k, DisableByBatchSize = 64 };

    [Fact]
    public async Task ADraftModelGivesIdenticalGreedyOutputAloneBatchedAndUnderPreemption()
    {
        using var model = Model.Load(WidenedPath.Value);
        var prompts = EngineExactnessTests.Prompts(model, 16, seed: 8);
        SamplingParams Sampling(int i) => i % 4 == 1 ? Greedy(50) with { Stop = ["Lily", "park."] } : Greedy(50);
        var plain = await Run(model, Options(null), prompts, Sampling);
        var alone = new Result[prompts.Length];
        using (var engine = new LlmEngine(model, Options(Draft())))
            for (int i = 0; i < prompts.Length; i++)
                alone[i] = await Collect(engine.AddRequest(new EngineRequest { PromptTokens = prompts[i], Sampling = Sampling(i) }));
        AssertSame(plain, alone);
        int drafted = alone.Sum(r => r.Drafted), accepted = alone.Sum(r => r.Accepted);
        Assert.True(drafted > 200 && accepted > drafted / 2, $"drafted {drafted}, accepted {accepted}: the draft is the widened model's own core");
        AssertSame(plain, await Run(model, Options(Draft()), prompts, Sampling));
        long perToken = ModelRunner.KvBytesPerToken(model.Config, KvDataType.F32);
        using (var tiny = new LlmEngine(model, Options(Draft(), kvBytes: perToken * 16 * 20)))
        {
            var spec = await Task.WhenAll(prompts.Select((p, i) => Collect(tiny.AddRequest(new EngineRequest { PromptTokens = p, Sampling = Sampling(i) }))));
            AssertSame(plain, spec);
            Assert.True(tiny.Stats.Preemptions > 0, "the tiny cache should have forced preemption");
        }
    }

    [Fact]
    public async Task GreedyOutputUnderAGrammarIsIdenticalWithBothProposers()
    {
        // a grammar that leaves the story text mostly free (lowercase words) but forbids capitals, digits and most
        // punctuation: proposals of the plain model often break it, so verification must apply the mask before
        // comparing with the target's choice, or the outputs would differ
        using var model = Model.Load(WidenedPath.Value);
        var grammar = SharpInfer.Sampling.Grammar.GrammarConstraint.FromGbnf(
            "root ::= word (\" \" word)* \".\"\nword ::= [a-z]{1,12}", model.Tokenizer, model.Config.VocabSize);
        var prompts = EngineExactnessTests.Prompts(model, 8, seed: 9);
        SamplingParams Sampling(int i) => Greedy(40) with { LogitsProcessor = grammar };
        var plain = await Run(model, Options(null), prompts, Sampling);
        Assert.All(plain, r => Assert.Matches("^[a-z]+( [a-z]+)*\\.?$", r.Text));
        foreach (var spec in new[] { Ngram, Draft() })
        {
            var alone = new Result[prompts.Length];
            using (var engine = new LlmEngine(model, Options(spec)))
                for (int i = 0; i < prompts.Length; i++)
                    alone[i] = await Collect(engine.AddRequest(new EngineRequest { PromptTokens = prompts[i], Sampling = Sampling(i) }));
            AssertSame(plain, alone);
            Assert.True(alone.Sum(r => r.Drafted) > 0, $"{spec.Method}: nothing was proposed");
            AssertSame(plain, await Run(model, Options(spec), prompts, Sampling));
        }
    }

    [Fact]
    public void ADraftWithAnotherVocabularyIsRefused()
    {
        using var model = Model.Load(WidenedPath.Value);
        var e = Assert.Throws<InvalidRequestException>(() =>
            new LlmEngine(model, Options(Draft() with { Model = TestModels.Get("qwen3-tiny", "f32") })));
        Assert.Contains("different vocabularies", e.Message);
    }
}
