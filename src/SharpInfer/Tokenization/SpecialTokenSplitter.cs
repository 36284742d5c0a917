namespace SharpInfer.Tokenization;

/// <summary>A piece of the input: either a run of raw text (<see cref="TokenId"/> &lt; 0) or a special token.</summary>
internal readonly record struct Fragment(int TokenId, int Start, int Length)
{
    public bool IsText => TokenId < 0;
    public static Fragment Text(int start, int length) => new(-1, start, length);
}

/// <summary>
/// Finds special tokens written in text, the way llama.cpp's <c>tokenizer_st_partition</c> does: the special
/// tokens are taken one at a time, longest text first, and each one splits every remaining run of raw text at
/// each of its (left-to-right, non-overlapping) occurrences. So a longer token wins over a shorter one that overlaps
/// it anywhere, not only at the same position. A token with the LStrip (RStrip) attribute also swallows the
/// whitespace to its left (right). Without <c>parseSpecial</c>, control and unknown tokens are not looked for, but
/// user-defined tokens still are.
/// </summary>
internal static class SpecialTokenSplitter
{
    public static void Split(Vocabulary v, string text, bool parseSpecial, List<Fragment> fragments, List<Fragment> scratch)
    {
        fragments.Clear();
        if (text.Length == 0) return;
        fragments.Add(Fragment.Text(0, text.Length));
        List<Fragment> cur = fragments, next = scratch;
        foreach (int id in v.SpecialTokensLongestFirst)
        {
            var attr = v.Attrs[id];
            if (!parseSpecial && (attr & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0) continue;
            string token = v.Texts[id];
            bool any = false;
            foreach (var f in cur)
            {
                if (f.IsText && text.AsSpan(f.Start, f.Length).IndexOf(token.AsSpan(), StringComparison.Ordinal) >= 0) { any = true; break; }
            }
            if (!any) continue;

            next.Clear();
            foreach (var f in cur)
            {
                if (!f.IsText) { next.Add(f); continue; }
                SplitOne(text, f.Start, f.Length, token, id, attr, next);
            }
            (cur, next) = (next, cur);
        }
        if (!ReferenceEquals(cur, fragments))
        {
            fragments.Clear();
            fragments.AddRange(cur);
        }
    }

    private static void SplitOne(string text, int start, int length, string token, int id, TokenAttributes attr, List<Fragment> output)
    {
        while (length > 0)
        {
            int rel = text.AsSpan(start, length).IndexOf(token.AsSpan(), StringComparison.Ordinal);
            if (rel < 0) break;
            int match = start + rel;
            int leftLength = rel;
            if ((attr & TokenAttributes.LStrip) != 0)
                while (leftLength > 0 && IsCSpace(text[start + leftLength - 1])) leftLength--;
            if (leftLength > 0) output.Add(Fragment.Text(start, leftLength));
            output.Add(new Fragment(id, match, token.Length));

            int rightStart = match + token.Length;
            int rightLength = start + length - rightStart;
            if ((attr & TokenAttributes.RStrip) != 0)
                while (rightLength > 0 && IsCSpace(text[rightStart])) { rightStart++; rightLength--; }
            start = rightStart;
            length = rightLength;
        }
        if (length > 0) output.Add(Fragment.Text(start, length));
    }

    /// <summary>C's isspace in the "C" locale (what llama.cpp strips around LStrip/RStrip tokens).</summary>
    private static bool IsCSpace(char c) => c is ' ' or '\t' or '\n' or '\v' or '\f' or '\r';
}
