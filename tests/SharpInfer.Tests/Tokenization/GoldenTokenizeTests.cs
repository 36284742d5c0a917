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
}
