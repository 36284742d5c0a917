namespace SharpInfer.Tokenization;

/// <summary>
/// Splits text (as codepoints) into the words a byte-level BPE merges independently, exactly as llama.cpp's
/// <c>unicode_regex_split</c> does for each supported pre-tokenizer: a sequence of stages, each splitting every
/// piece of the previous stage further. The regexes are implemented by hand at the codepoint level (as llama.cpp's
/// own custom splitters do), with llama.cpp's character classes (<see cref="UnicodeClass"/>), so that results do not
/// depend on a regex engine's notion of <c>\s</c> or on UTF-16 surrogates.
/// </summary>
internal static class PreTokenizer
{
    private delegate void Stage(ReadOnlySpan<int> cps, int start, int end, List<int> pieces);

    private static readonly Stage[] DefaultStages =
        [PunctuationRuns, (c, s, e, p) => Gpt2(c, s, e, p), NumberRuns, AsciiDigitTriples];
    private static readonly Stage[] Gpt2Stages = [(c, s, e, p) => Gpt2(c, s, e, p)];
    private static readonly Stage[] Llama3Stages = [(c, s, e, p) => Llama3(c, s, e, p, maxDigits: 3)];
    private static readonly Stage[] Qwen2Stages = [(c, s, e, p) => Llama3(c, s, e, p, maxDigits: 1)];
    private static readonly Stage[] StarCoderStages = [EachNumber, (c, s, e, p) => Gpt2(c, s, e, p)];
    private static readonly Stage[] Gpt4oStages = [(c, s, e, p) => Gpt4o(c, s, e, p)];

    private static Stage[] StagesFor(PreTokenizerType type) => type switch
    {
        PreTokenizerType.Default => DefaultStages,
        PreTokenizerType.Gpt2 => Gpt2Stages,
        PreTokenizerType.Llama3 => Llama3Stages,
        PreTokenizerType.Qwen2 => Qwen2Stages,
        PreTokenizerType.StarCoder => StarCoderStages,
        PreTokenizerType.Gpt4o => Gpt4oStages,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a BPE pre-tokenizer"),
    };

    /// <summary>Fills <paramref name="pieces"/> with the lengths (in codepoints) of consecutive words covering
    /// <paramref name="cps"/>. <paramref name="scratch"/> is working space.</summary>
    public static void Split(PreTokenizerType type, ReadOnlySpan<int> cps, List<int> pieces, List<int> scratch)
    {
        pieces.Clear();
        if (cps.IsEmpty) return;
        List<int> cur = pieces, next = scratch;
        cur.Add(cps.Length);
        foreach (var stage in StagesFor(type))
        {
            next.Clear();
            int start = 0;
            foreach (int len in cur)
            {
                stage(cps, start, start + len, next);
                start += len;
            }
            (cur, next) = (next, cur);
        }
        if (!ReferenceEquals(cur, pieces))
        {
            pieces.Clear();
            pieces.AddRange(cur);
        }
    }

    /// <summary>Appends pieces of a range to a list given their end positions; zero-length pieces are dropped.</summary>
    private struct Emitter(List<int> pieces, int start)
    {
        private int _prev = start;
        public int Add(int end)
        {
            int len = end - _prev;
            if (len > 0) pieces.Add(len);
            _prev = end;
            return len;
        }
    }

    private const int OutOfRange = -1;

    // llama.cpp's unicode_regex_split_custom_gpt2:
    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    private static void Gpt2(ReadOnlySpan<int> cps, int start, int end, List<int> pieces)
    {
        var emit = new Emitter(pieces, start);
        for (int pos = start; pos < end;)
        {
            int cpt = cps[pos];
            if (cpt == '\'' && pos + 1 < end)
            {
                int next = cps[pos + 1];
                if (next is 's' or 't' or 'm' or 'd') { pos += emit.Add(pos + 2); continue; }
                if (pos + 2 < end)
                {
                    int next2 = cps[pos + 2];
                    if ((next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l'))
                    {
                        pos += emit.Add(pos + 3);
                        continue;
                    }
                }
            }

            // an optional leading space, then a run of one class
            int first = cpt == ' ' ? (pos + 1 < end ? cps[pos + 1] : OutOfRange) : cpt;
            if (first != OutOfRange)
            {
                var cls = UnicodeClass.Class(first);
                bool ws = UnicodeClass.IsWhitespace(first);
                if (cls is CodepointClass.Letter or CodepointClass.Number || !ws)
                {
                    bool letters = cls == CodepointClass.Letter, numbers = cls == CodepointClass.Number;
                    pos += cpt == ' ' ? 1 : 0;
                    while (pos < end && Matches(cps[pos], letters, numbers)) pos++;
                    emit.Add(pos);
                    continue;
                }
            }

            int nws = 0;
            while (pos + nws < end && UnicodeClass.IsWhitespace(cps[pos + nws])) nws++;
            if (nws > 1 && pos + nws < end) // \s+(?!\S): leave the last space to the next word
            {
                pos += nws - 1;
                emit.Add(pos);
                continue;
            }
            if (nws > 0)
            {
                pos += nws;
                emit.Add(pos);
                continue;
            }
            emit.Add(++pos);
        }

        static bool Matches(int c, bool letters, bool numbers)
        {
            var k = UnicodeClass.Class(c);
            if (letters) return k == CodepointClass.Letter;
            if (numbers) return k == CodepointClass.Number;
            return k is not (CodepointClass.Letter or CodepointClass.Number) && !UnicodeClass.IsWhitespace(c);
        }
    }

    // llama.cpp's unicode_regex_split_custom_llama3 (maxDigits 3), and the Qwen2 regex (maxDigits 1), which llama.cpp
    // runs through std::regex with the same character classes and which matches identically:
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    private static void Llama3(ReadOnlySpan<int> cps, int start, int end, List<int> pieces, int maxDigits)
    {
        var emit = new Emitter(pieces, start);
        for (int pos = start; pos < end;)
        {
            int cpt = cps[pos];
            if (cpt == '\'' && pos + 1 < end)
            {
                int next = AsciiLower(cps[pos + 1]);
                if (next is 's' or 't' or 'm' or 'd') { pos += emit.Add(pos + 2); continue; }
                if (pos + 2 < end)
                {
                    int next2 = AsciiLower(cps[pos + 2]);
                    if ((next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l'))
                    {
                        pos += emit.Add(pos + 3);
                        continue;
                    }
                }
            }

            // [^\r\n\p{L}\p{N}]?\p{L}+
            if (!(cpt == '\r' || cpt == '\n' || UnicodeClass.IsNumber(cpt)) && (UnicodeClass.IsLetter(cpt) || (pos + 1 < end && UnicodeClass.IsLetter(cps[pos + 1]))))
            {
                pos++;
                while (pos < end && UnicodeClass.IsLetter(cps[pos])) pos++;
                emit.Add(pos);
                continue;
            }

            // \p{N}{1,maxDigits}
            if (UnicodeClass.IsNumber(cpt))
            {
                int ini = pos;
                while (pos < end && UnicodeClass.IsNumber(cps[pos]))
                {
                    if (++pos - ini >= maxDigits)
                    {
                        emit.Add(pos);
                        ini = pos;
                    }
                }
                emit.Add(pos);
                continue;
            }

            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            int first = cpt == ' ' ? (pos + 1 < end ? cps[pos + 1] : OutOfRange) : cpt;
            if (first != OutOfRange && IsOther(first))
            {
                pos += cpt == ' ' ? 1 : 0;
                while (pos < end && IsOther(cps[pos])) pos++;
                while (pos < end && cps[pos] is '\r' or '\n') pos++;
                emit.Add(pos);
                continue;
            }

            int nws = 0, lastNewlineEnd = 0;
            while (pos + nws < end && UnicodeClass.IsWhitespace(cps[pos + nws]))
            {
                if (cps[pos + nws] is '\r' or '\n') lastNewlineEnd = pos + nws + 1;
                nws++;
            }
            if (lastNewlineEnd > 0) // \s*[\r\n]+
            {
                pos = lastNewlineEnd;
                emit.Add(pos);
                continue;
            }
            if (nws > 1 && pos + nws < end) // \s+(?!\S)
            {
                pos += nws - 1;
                emit.Add(pos);
                continue;
            }
            if (nws > 0) // \s+
            {
                pos += nws;
                emit.Add(pos);
                continue;
            }
            emit.Add(++pos);
        }

        static int AsciiLower(int c) => c is >= 'A' and <= 'Z' ? c + 32 : c;
        static bool IsOther(int c) => !UnicodeClass.IsWhitespace(c) && UnicodeClass.Class(c) is not (CodepointClass.Letter or CodepointClass.Number);
    }

    // llama.cpp's GPT-4o regex (o200k: gpt-oss, Llama 4), which it runs through std::regex on "collapsed" text (every
    // non-ASCII codepoint replaced by one byte standing for its class: letter, number, whitespace or other):
    //   [^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?
    //  |[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|...)?
    //  |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
    // So "upper" (U) is any letter but a-z and "lower" (L) any letter but A-Z: a non-ASCII letter is both. Marks (\p{M})
    // are "other", not part of words (Hugging Face's original regex puts them in both classes: that is where the two
    // differ, e.g. on Khmer). Alternation is ordered and quantifiers backtrack, which the code below resolves directly.
    private static void Gpt4o(ReadOnlySpan<int> cps, int start, int end, List<int> pieces)
    {
        var emit = new Emitter(pieces, start);
        for (int pos = start; pos < end;)
        {
            int cpt = cps[pos];

            // the two letter alternatives, after an optional [^\r\n\p{L}\p{N}]
            int w = UnicodeClass.IsLetter(cpt) ? pos
                : !(cpt is '\r' or '\n' || UnicodeClass.IsNumber(cpt)) && pos + 1 < end && UnicodeClass.IsLetter(cps[pos + 1]) ? pos + 1
                : OutOfRange;
            if (w != OutOfRange)
            {
                // U* L+: U* backs off from its longest run to the last position where an L can start
                int u = w;
                while (u < end && IsUpper(cps[u])) u++;
                int l = u;
                while (l >= w && !(l < end && IsLower(cps[l]))) l--;
                if (l >= w)
                {
                    pos = l;
                    while (pos < end && IsLower(cps[pos])) pos++;
                }
                else pos = u;   // U+ L*: a run of A-Z only (no L can follow it)
                pos += Contraction(cps, pos, end);
                emit.Add(pos);
                continue;
            }

            // \p{N}{1,3}
            if (UnicodeClass.IsNumber(cpt))
            {
                int n = 1;
                while (n < 3 && pos + n < end && UnicodeClass.IsNumber(cps[pos + n])) n++;
                pos += emit.Add(pos + n);
                continue;
            }

            // ' ?[^\s\p{L}\p{N}]+[\r\n/]*'
            int first = cpt == ' ' ? (pos + 1 < end ? cps[pos + 1] : OutOfRange) : cpt;
            if (first != OutOfRange && IsOther(first))
            {
                pos += cpt == ' ' ? 1 : 0;
                while (pos < end && IsOther(cps[pos])) pos++;
                while (pos < end && cps[pos] is '\r' or '\n' or '/') pos++;
                emit.Add(pos);
                continue;
            }

            int nws = 0, lastNewlineEnd = 0;
            while (pos + nws < end && UnicodeClass.IsWhitespace(cps[pos + nws]))
            {
                if (cps[pos + nws] is '\r' or '\n') lastNewlineEnd = pos + nws + 1;
                nws++;
            }
            if (lastNewlineEnd > 0) // \s*[\r\n]+
            {
                pos = lastNewlineEnd;
                emit.Add(pos);
                continue;
            }
            if (nws > 1 && pos + nws < end) // \s+(?!\S)
            {
                pos += nws - 1;
                emit.Add(pos);
                continue;
            }
            if (nws > 0) // \s+
            {
                pos += nws;
                emit.Add(pos);
                continue;
            }
            emit.Add(++pos);
        }

        static bool IsUpper(int c) => UnicodeClass.IsLetter(c) && c is not (>= 'a' and <= 'z');
        static bool IsLower(int c) => UnicodeClass.IsLetter(c) && c is not (>= 'A' and <= 'Z');
        static bool IsOther(int c) => !UnicodeClass.IsWhitespace(c) && UnicodeClass.Class(c) is not (CodepointClass.Letter or CodepointClass.Number);

        // (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?: its length at pos
        static int Contraction(ReadOnlySpan<int> cps, int pos, int end)
        {
            if (pos + 1 >= end || cps[pos] != '\'') return 0;
            int a = cps[pos + 1] | 0x20;   // ASCII lower case (only ASCII letters can match below)
            if (cps[pos + 1] is not (>= 'A' and <= 'Z' or >= 'a' and <= 'z')) return 0;
            if (a is 's' or 't' or 'm' or 'd') return 2;
            if (pos + 2 >= end || cps[pos + 2] is not (>= 'A' and <= 'Z' or >= 'a' and <= 'z')) return 0;
            int b = cps[pos + 2] | 0x20;
            return (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l') ? 3 : 0;
        }
    }

    // Stages llama.cpp runs through std::regex (matches and the gaps between them both become pieces).

    // \p{N}: every number codepoint alone
    private static void EachNumber(ReadOnlySpan<int> cps, int start, int end, List<int> pieces)
    {
        var emit = new Emitter(pieces, start);
        for (int pos = start; pos < end; pos++)
        {
            if (!UnicodeClass.IsNumber(cps[pos])) continue;
            emit.Add(pos);
            emit.Add(pos + 1);
        }
        emit.Add(end);
    }

    // [\p{P}\$\+<=>\^~\|]+
    private static void PunctuationRuns(ReadOnlySpan<int> cps, int start, int end, List<int> pieces) =>
        Runs(cps, start, end, pieces, static c => UnicodeClass.IsPunctuation(c) || c is '$' or '+' or '<' or '=' or '>' or '^' or '~' or '|');

    // \p{N}+
    private static void NumberRuns(ReadOnlySpan<int> cps, int start, int end, List<int> pieces) =>
        Runs(cps, start, end, pieces, UnicodeClass.IsNumber);

    private static void Runs(ReadOnlySpan<int> cps, int start, int end, List<int> pieces, Func<int, bool> inClass)
    {
        var emit = new Emitter(pieces, start);
        for (int pos = start; pos < end;)
        {
            bool k = inClass(cps[pos]);
            int q = pos + 1;
            while (q < end && inClass(cps[q]) == k) q++;
            emit.Add(q);
            pos = q;
        }
    }

    // [0-9][0-9][0-9]
    private static void AsciiDigitTriples(ReadOnlySpan<int> cps, int start, int end, List<int> pieces)
    {
        var emit = new Emitter(pieces, start);
        for (int pos = start; pos + 3 <= end;)
        {
            if (IsDigit(cps[pos]) && IsDigit(cps[pos + 1]) && IsDigit(cps[pos + 2]))
            {
                emit.Add(pos);
                emit.Add(pos + 3);
                pos += 3;
            }
            else pos++;
        }
        emit.Add(end);

        static bool IsDigit(int c) => c is >= '0' and <= '9';
    }
}
