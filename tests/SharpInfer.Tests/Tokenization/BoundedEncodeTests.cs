using System.Text;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Tokenization;

/// <summary><see cref="Tokenizer.EncodeAtMost"/>: the ids of <see cref="Tokenizer.Encode(string, bool, bool)"/> within
/// the budget, null beyond it; the byte bound it uses is sound; an oversized text costs nothing to refuse.</summary>
public class BoundedEncodeTests
{
    public static TheoryData<string> Models => [.. TokenizerModels.Names];

    private static IEnumerable<string> Texts(Tokenizer t, string model)
    {
        yield return "";
        yield return " ";
        yield return "Hello world";
        yield return "  leading and trailing spaces  ";
        foreach (var (text, _) in TokenizerModels.Golden(model).Take(20))
            yield return text;
        // special-token text, so fragments split at control tokens
        var special = t.Vocabulary.Texts[t.Vocabulary.EosId];
        yield return $"one{special}two three{special}{special} four";
        for (int seed = 0; seed < 6; seed++) yield return TokenizerLongInputTests.Prompt(200 + 150 * seed, seed);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void WithinTheBudgetTheIdsAreIdenticalAndBeyondItNull(string model)
    {
        var t = TokenizerModels.Get(model);
        foreach (var text in Texts(t, model))
            foreach (var (addSpecial, parseSpecial) in new[] { (true, true), (false, false), (true, false) })
            {
                var full = t.Encode(text, addSpecial, parseSpecial);
                int n = full.Length;
                foreach (int budget in new[] { 0, 1, n / 2, n - 2, n - 1, n, n + 1, n + 100 }.Where(b => b >= 0).Distinct())
                {
                    var bounded = t.EncodeAtMost(text, budget, addSpecial, parseSpecial);
                    if (n <= budget) Assert.Equal(full, bounded);
                    else Assert.True(bounded is null, $"{model}: {n} tokens within a budget of {budget} for \"{text[..Math.Min(40, text.Length)]}\"");
                }
            }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void TheByteBoundNeverUnderestimatesTheTokenCount(string model)
    {
        var t = TokenizerModels.Get(model);
        Assert.True(t.MaxBytesPerToken > 0, $"{model}: every byte should give a token");
        // worst cases for the bound: runs of the longest token, and text made of what merges best
        int longest = Enumerable.Range(0, t.Vocabulary.Count).MaxBy(id => Encoding.UTF8.GetByteCount(t.Vocabulary.Texts[id]));
        var longestText = t.Decode([longest], renderSpecial: true);
        var texts = Texts(t, model).Append(string.Concat(Enumerable.Repeat(longestText, 50))).Append(new string(' ', 3000)).Append(new string('a', 3000));
        foreach (var text in texts)
        {
            long bytes = Encoding.UTF8.GetByteCount(text);
            int tokens = t.Encode(text, addSpecial: false, parseSpecial: true).Length;
            Assert.True((long)tokens * t.MaxBytesPerToken >= bytes, $"{model}: {bytes} bytes in only {tokens} tokens of at most {t.MaxBytesPerToken} bytes");
            // and so the early refusal never fires for a text that fits
            Assert.False(t.IsLongerThan(text, tokens));
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void AHugeTextIsRefusedWithoutTokenizingIt(string model)
    {
        var t = TokenizerModels.Get(model);
        var huge = new string('x', 15 << 20);
        _ = t.EncodeAtMost("warm up", 4096);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var ids = t.EncodeAtMost(huge, 4096);
        sw.Stop();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Null(ids);
        Assert.True(allocated < 4096, $"{model}: refusing a 15 MiB text allocated {allocated} bytes");
        Console.WriteLine($"{model}: a 15 MiB text refused in {sw.Elapsed.TotalMilliseconds:F1} ms, {allocated} bytes allocated");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void ATextUnderTheByteBoundButOverTheBudgetIsRefused(string model)
    {
        // short enough to pass the byte bound, but far more tokens than the budget (single letters separated by
        // spaces): the count decides (BPE stops encoding at the first word past the budget)
        var t = TokenizerModels.Get(model);
        const int budget = 64;
        var sb = new StringBuilder();
        while (Encoding.UTF8.GetByteCount(sb.ToString()) + 2 <= budget * t.MaxBytesPerToken) sb.Append("q ");
        var text = sb.ToString();
        Assert.False(t.IsLongerThan(text, budget));
        Assert.True(t.Encode(text).Length > budget);
        Assert.Null(t.EncodeAtMost(text, budget));
    }
}
