using System.Runtime.CompilerServices;
using SharpInfer.Tokenization;

namespace SharpInfer.Sampling.Grammar;

/// <summary>
/// The vocabulary as a byte trie, so a token mask is one walk in which a grammar state is advanced once per trie
/// edge and a dead state prunes every token below it (most of a 152k vocabulary is cut at the first byte).
/// Built once per tokenizer (cached) from the tokens' raw bytes; control tokens (except a request's preserved ones)
/// and tokens with no bytes never match a grammar, end-of-generation tokens are kept apart.
/// </summary>
internal sealed class TokenTrie
{
    private static readonly ConditionalWeakTable<Tokenizer, TokenTrie> Cache = new();

    internal readonly byte[][] TokenBytes;
    internal readonly int[] EndOfGeneration;
    // node i: children are nodes [ChildStart[i], ChildStart[i] + ChildCount[i]) reached by EdgeByte of each child;
    // tokens ending at node i are Sorted[TokStart[i] .. TokStart[i] + TokCount[i])
    internal readonly byte[] EdgeByte;
    internal readonly int[] ChildStart, ChildCount, TokStart, TokCount, Sorted;

    public int VocabSize => TokenBytes.Length;

    public static TokenTrie For(Tokenizer tokenizer) => Cache.GetValue(tokenizer, t => Build(t, null));

    /// <summary>The trie in which the control tokens <paramref name="preserved"/> match a grammar by their text, as the
    /// request that renders them sees them (llama-server's preserved tokens: a grammar can then force gpt-oss's
    /// <c>&lt;|channel|&gt;</c> as the token the model was trained to write). Cached per tokenizer and set.</summary>
    public static TokenTrie For(Tokenizer tokenizer, int[]? preserved)
    {
        if (preserved is not { Length: > 0 }) return For(tokenizer);
        string key = string.Join(',', preserved.Order());
        var byKey = PreservedCache.GetValue(tokenizer, _ => []);
        lock (byKey)
        {
            if (!byKey.TryGetValue(key, out var trie)) byKey[key] = trie = Build(tokenizer, preserved);
            return trie;
        }
    }

    private static readonly ConditionalWeakTable<Tokenizer, Dictionary<string, TokenTrie>> PreservedCache = new();

    private static TokenTrie Build(Tokenizer t, int[]? preserved)
    {
        var v = t.Vocabulary;
        var bytes = new byte[v.Count][];
        var eog = new List<int>();
        for (int id = 0; id < v.Count; id++)
        {
            if (v.IsEndOfGeneration(id)) { eog.Add(id); bytes[id] = []; }
            else bytes[id] = t.TokenBytes(id, renderSpecial: preserved != null && Array.IndexOf(preserved, id) >= 0);
        }
        return new TokenTrie(bytes, [.. eog]);
    }

    public TokenTrie(byte[][] tokenBytes, int[] endOfGeneration)
    {
        TokenBytes = tokenBytes;
        EndOfGeneration = endOfGeneration;
        var ids = Enumerable.Range(0, tokenBytes.Length).Where(i => tokenBytes[i].Length > 0).ToArray();
        Array.Sort(ids, (a, b) => tokenBytes[a].AsSpan().SequenceCompareTo(tokenBytes[b]));
        Sorted = ids;
        var edge = new List<byte>();
        var cs = new List<int>();
        var cc = new List<int>();
        var ts = new List<int>();
        var tc = new List<int>();
        var queue = new Queue<(int Node, int Lo, int Hi, int Depth)>();
        edge.Add(0); cs.Add(0); cc.Add(0); ts.Add(0); tc.Add(0);
        queue.Enqueue((0, 0, ids.Length, 0));
        while (queue.Count > 0)
        {
            var (node, lo, hi, depth) = queue.Dequeue();
            int i = lo;
            while (i < hi && tokenBytes[ids[i]].Length == depth) i++;
            ts[node] = lo;
            tc[node] = i - lo;
            cs[node] = edge.Count;
            int children = 0;
            while (i < hi)
            {
                byte b = tokenBytes[ids[i]][depth];
                int j = i + 1;
                while (j < hi && tokenBytes[ids[j]][depth] == b) j++;
                int child = edge.Count;
                edge.Add(b); cs.Add(0); cc.Add(0); ts.Add(0); tc.Add(0);
                queue.Enqueue((child, i, j, depth + 1));
                children++;
                i = j;
            }
            cc[node] = children;
        }
        EdgeByte = [.. edge];
        ChildStart = [.. cs];
        ChildCount = [.. cc];
        TokStart = [.. ts];
        TokCount = [.. tc];
    }
}
