namespace SharpInfer.Tests.Tokenization;

/// <summary>Every string of ../shared/golden/tokenize/*.jsonl must tokenize to exactly llama.cpp's ids
/// (<c>llama_tokenize(text, add_special: true, parse_special: true)</c>).</summary>
public class GoldenTokenizeTests
{
    public static TheoryData<string, int, string> Rows()
    {
        var data = new TheoryData<string, int, string>();
        foreach (var model in TokenizerModels.Names)
        {
            var lines = TokenizerModels.Golden(model);
            for (int i = 0; i < lines.Count; i++) data.Add(model, i, Abbreviate(lines[i].Text));
        }
        return data;
    }

    private static string Abbreviate(string s) => s.Length <= 60 ? s : s[..60] + "…";

    [Theory]
    [MemberData(nameof(Rows))]
    public void MatchesLlamaCpp(string model, int line, string text)
    {
        var (fullText, expected) = TokenizerModels.Golden(model)[line];
        Assert.StartsWith(text.TrimEnd('…'), fullText);
        var ids = TokenizerModels.Get(model).Encode(fullText);
        Assert.Equal(expected, ids);
    }

    [Fact]
    public void IsThreadSafe()
    {
        // one fresh tokenizer per model (cold word cache), many threads at once
        var work = TokenizerModels.Names
            .Select(m => (Tokenizer: SharpInfer.Tokenization.Tokenizer.Create(TokenizerModels.Get(m).Vocabulary), Lines: TokenizerModels.Golden(m)))
            .SelectMany(x => Enumerable.Range(0, 8).SelectMany(_ => x.Lines.Select(l => (x.Tokenizer, l.Text, l.Ids))))
            .ToArray();
        int failures = 0;
        Parallel.ForEach(work, new ParallelOptions { MaxDegreeOfParallelism = 8 }, w =>
        {
            var list = new List<int>();
            w.Tokenizer.Encode(w.Text, list);
            if (!list.SequenceEqual(w.Ids)) Interlocked.Increment(ref failures);
            Span<int> buf = stackalloc int[512];
            int n = w.Tokenizer.Encode(w.Text, buf);
            if (!buf[..n].SequenceEqual(w.Ids)) Interlocked.Increment(ref failures);
        });
        Assert.Equal(0, failures);
    }
}
