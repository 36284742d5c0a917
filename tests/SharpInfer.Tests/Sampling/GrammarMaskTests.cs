using System.Text;
using SharpInfer.Sampling;
using SharpInfer.Sampling.Grammar;

namespace SharpInfer.Tests.Sampling;

/// <summary>The mask a grammar processor applies, checked token by token against the automaton itself, and the
/// background mask prefetch, which must change nothing but timing.</summary>
public class GrammarMaskTests
{
    private const int Eog = 0;

    // printable ASCII, some multi-character pieces (JSON-ish and not), one multi-byte character, an empty token:
    // 103 tokens, so the last mask word is partial
    private static TokenTrie SmallVocabulary()
    {
        var tokens = new List<byte[]> { Array.Empty<byte>() };   // id 0: end of generation
        for (int c = 0x20; c < 0x7F; c++) tokens.Add([(byte)c]);
        foreach (var s in new[] { "{\"", "\":", "\",", "true", "false", "null", "  ", "\n", "\"}", "é" })
            tokens.Add(Encoding.UTF8.GetBytes(s));
        tokens.Add([]);   // a control token: no bytes, never allowed
        return new TokenTrie([.. tokens], [Eog]);
    }

    [Theory]
    [InlineData(0, 1)]     // logits exactly the vocabulary
    [InlineData(30, 2)]    // padded logits (model vocabulary larger than the tokenizer's): padding is always masked
    [InlineData(100, 3)]
    public void ProcessBansExactlyTheTokensTheAutomatonRejects(int padding, int seed)
    {
        var trie = SmallVocabulary();
        var constraint = new GrammarConstraint(CompiledGrammar.FromGbnf(GbnfGrammarTests.Json), trie, trie.VocabSize + padding);
        var reference = new GrammarAutomaton(CompiledGrammar.FromGbnf(GbnfGrammarTests.Json));
        var processor = constraint.Create();
        var rng = new Random(seed);
        int state = reference.Start;
        var logits = new float[trie.VocabSize + padding];
        var allowed = new List<int>();
        for (int step = 0; step < 200; step++)
        {
            Array.Fill(logits, 1f);
            processor.Process(logits);
            allowed.Clear();
            bool anyText = false;
            for (int id = 0; id < logits.Length; id++)
            {
                bool fits = id < trie.VocabSize && id != Eog && trie.TokenBytes[id].Length > 0
                    && reference.Step(state, trie.TokenBytes[id]) >= 0;
                anyText |= fits;
                if (id != Eog) Assert.True(fits == !float.IsNegativeInfinity(logits[id]), $"step {step}, token {id}");
                if (fits) allowed.Add(id);
            }
            Assert.Equal(reference.CanEnd(state) || !anyText, !float.IsNegativeInfinity(logits[Eog]));
            if (allowed.Count == 0) break;   // only end of generation is left
            int token = allowed[rng.Next(allowed.Count)];
            processor.Accept(token);
            state = reference.Step(state, trie.TokenBytes[token]);
        }
    }

    [Fact]
    public void PrefetchedMasksEqualMasksComputedOnDemand()
    {
        var trie = SmallVocabulary();
        var grammar = CompiledGrammar.FromGbnf(GbnfGrammarTests.Json);
        // several requests on one prefetching constraint run interleaved, so prefetches race with lookups
        var prefetching = new GrammarConstraint(grammar, trie, trie.VocabSize) { PrefetchMasks = true };
        var onDemand = new GrammarConstraint(grammar, trie, trie.VocabSize) { PrefetchMasks = false };
        var pairs = Enumerable.Range(0, 4).Select(_ => (A: prefetching.Create(), B: onDemand.Create())).ToArray();
        var rngs = Enumerable.Range(0, pairs.Length).Select(i => new Random(10 + i)).ToArray();
        var done = new bool[pairs.Length];
        var a = new float[trie.VocabSize];
        var b = new float[trie.VocabSize];
        for (int step = 0; step < 150; step++)
            for (int r = 0; r < pairs.Length; r++)
            {
                if (done[r]) continue;
                Array.Fill(a, 1f);
                Array.Fill(b, 1f);
                pairs[r].A.Process(a);
                pairs[r].B.Process(b);
                Assert.Equal(b, a);
                var allowed = Enumerable.Range(0, a.Length).Where(i => i != Eog && !float.IsNegativeInfinity(a[i])).ToArray();
                if (allowed.Length == 0) { done[r] = true; continue; }
                int token = allowed[rngs[r].Next(allowed.Length)];
                pairs[r].A.Accept(token);
                pairs[r].B.Accept(token);
            }
    }
}
