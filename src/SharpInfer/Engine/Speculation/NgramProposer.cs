using SharpInfer.Scheduling;

namespace SharpInfer.Engine.Speculation;

/// <summary>
/// Prompt lookup decoding (vLLM's <c>ngram</c>, llama.cpp's <c>lookup</c>): find the most recent earlier occurrence
/// of the sequence's last n tokens (n from <c>prompt_lookup_max</c> down to <c>prompt_lookup_min</c>) in its prompt and
/// output so far, and propose the tokens that followed it. Free to compute and good wherever the output repeats its
/// input (summaries, code edits, extraction, RAG answers quoting sources); proposes nothing elsewhere. Stateless.
/// </summary>
internal sealed class NgramProposer(int minN, int maxN) : IProposer
{
    public void Propose(ProposalBatch batch)
    {
        for (int i = 0; i < batch.Count; i++)
            batch.SetProposed(i, Lookup(batch.Sequence(i).Tokens, batch.Tokens(i), minN, maxN));
    }

    /// <summary>Writes the continuation of the most recent earlier match of the longest suffix (of minN..maxN tokens)
    /// of <paramref name="tokens"/> into <paramref name="draft"/>; returns how many tokens it wrote.</summary>
    public static int Lookup(ReadOnlySpan<int> tokens, Span<int> draft, int minN, int maxN)
    {
        int len = tokens.Length;
        if (draft.Length == 0) return 0;
        for (int n = Math.Min(maxN, len - 1); n >= minN; n--)
        {
            var suffix = tokens[(len - n)..];
            // the most recent match that is not the suffix itself: scan start positions from the back
            for (int start = len - n - 1; start >= 0; start--)
            {
                if (tokens[start] != suffix[0] || !tokens.Slice(start, n).SequenceEqual(suffix)) continue;
                int from = start + n;
                int count = Math.Min(draft.Length, len - from);
                tokens.Slice(from, count).CopyTo(draft);
                return count;
            }
        }
        return 0;
    }

    public void Forget(Sequence sequence) { }

    public void Dispose() { }
}
