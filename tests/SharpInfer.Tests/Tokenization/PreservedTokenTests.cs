using SharpInfer.Engine.Tools;
using SharpInfer.Sampling.Grammar;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Tokenization;

/// <summary>
/// Preserved tokens (llama-server's <c>preserved_tokens</c>): the control tokens a request names render as their text
/// and every other control token as nothing, whole or streamed, with no allocation per token beyond the returned text;
/// a grammar matches exactly the preserved control tokens by their text. Harmony's markers themselves need no
/// preserving with this vocabulary: llama.cpp makes <c>&lt;|channel|&gt;</c>, <c>&lt;|message|&gt;</c>,
/// <c>&lt;|start|&gt;</c>, <c>&lt;|constrain|&gt;</c> and (beside <c>&lt;|return|&gt;</c> and <c>&lt;|call|&gt;</c>)
/// <c>&lt;|end|&gt;</c> user-defined, so they always render; the seam is shown on a control token of the same vocabulary.
/// </summary>
public class PreservedTokenTests
{
    private const string Reply = "<|channel|>analysis<|message|>Simple sum.<|end|><|start|>assistant<|channel|>final<|message|>4";

    private static Tokenizer Harmony => TokenizerModels.Get("gpt-oss-tiny");

    [Fact]
    public void HarmonyMarkersAlwaysRenderAndArePreservedAnyway()
    {
        var t = Harmony;
        var v = t.Vocabulary;
        var ids = t.Encode(Reply, addSpecial: false);
        Assert.Equal(6, ids.Count(v.IsUserDefined));               // the markers are single tokens, not text
        Assert.Equal(Reply, t.Decode(ids, DecodeOptions.Pieces));   // llama.cpp's default detokenization renders them
        var plan = ChatReplyPlan.Create(File.ReadAllText(Path.Combine(TestPaths.Shared, "templates", "openai-gpt-oss-120b.jinja")),
                                        [], null, null, null, otherConstraint: false);
        var preserved = plan.PreservedTokenIds(v)!;
        Assert.Equal(plan.PreservedTokenTexts, preserved.Select(v.GetText));   // every marker is one token of the vocabulary
        Assert.Equal(Reply, t.Decode(ids, DecodeOptions.Pieces with { PreservedTokens = preserved }));
    }

    /// <summary>A reply with a control token that is not end-of-generation in the middle.</summary>
    private static (int[] Ids, int Control) WithControlToken()
    {
        var t = Harmony;
        int control = t.Vocabulary.GetId("<|startoftext|>");
        Assert.True(t.Vocabulary.IsControl(control) && !t.Vocabulary.IsEndOfGeneration(control));
        return ([.. t.Encode("Hello", addSpecial: false), control, .. t.Encode(" world", addSpecial: false)], control);
    }

    [Fact]
    public void PreservedControlTokensRenderAndOthersDoNot()
    {
        var t = Harmony;
        var (ids, control) = WithControlToken();
        var preserved = DecodeOptions.Pieces with { PreservedTokens = [control] };
        var unrelated = DecodeOptions.Pieces with { PreservedTokens = [t.Vocabulary.GetId("<|call|>")] };
        Assert.Equal("Hello<|startoftext|> world", t.Decode(ids, preserved));
        Assert.Equal("Hello world", t.Decode(ids, DecodeOptions.Pieces));   // llama.cpp's default: control tokens are nothing
        Assert.Equal("Hello world", t.Decode(ids, unrelated));
        foreach (var options in new[] { preserved, unrelated, DecodeOptions.Pieces })
        {
            var d = new StreamingDetokenizer(t, options);
            string streamed = string.Concat(ids.Select(d.Push)) + d.Flush();
            Assert.Equal(t.Decode(ids, options), streamed);
        }
    }

    [Fact]
    public void APreservedSetCostsNoAllocationPerToken()
    {
        var t = Harmony;
        var (_, control) = WithControlToken();
        var d = new StreamingDetokenizer(t, DecodeOptions.Pieces with { PreservedTokens = [t.Vocabulary.GetId("<|call|>"), t.Vocabulary.GetId("<|end|>")] });
        d.Push(control);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) Assert.Same(string.Empty, d.Push(control));   // looked up, not preserved: nothing
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void AGrammarMatchesPreservedControlTokensByTheirText()
    {
        var t = Harmony;
        var (_, control) = WithControlToken();
        int channel = t.Vocabulary.GetId("<|channel|>");
        const string Gbnf = "root ::= \"<|startoftext|>\" [a-z]+";
        var plain = GrammarConstraint.FromGbnf(Gbnf, t, t.Vocabulary.Count);
        var withControl = GrammarConstraint.FromGbnf(Gbnf, t, t.Vocabulary.Count, preserved: [control]);
        Assert.Empty(plain.Trie.TokenBytes[control]);                           // llama.cpp's default: control tokens never match
        Assert.Equal("<|startoftext|>"u8.ToArray(), withControl.Trie.TokenBytes[control]);
        Assert.Equal("<|channel|>"u8.ToArray(), plain.Trie.TokenBytes[channel]);   // user-defined: always text
        int[] two = [control, t.Vocabulary.GetId("<|end|>")];
        Assert.Same(TokenTrie.For(t, two), TokenTrie.For(t, [.. two.Reverse()]));   // one trie per set, whatever the order
        Assert.Same(plain.Trie, TokenTrie.For(t, null));
    }
}
