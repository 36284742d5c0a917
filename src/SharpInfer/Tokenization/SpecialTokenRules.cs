namespace SharpInfer.Tokenization;

/// <summary>
/// llama.cpp's text-based rules for special tokens, applied after the ids from metadata: auto-detection of
/// EOT/EOM/FIM tokens, "unused" control tokens, the end-of-generation set and its exceptions, the special-token
/// cache used to split text, and per-model attribute fixes.
/// </summary>
internal static class SpecialTokenRules
{
    // When several candidates exist, llama.cpp takes whichever its hash map yields first; we take the first in
    // these lists (so e.g. <|eot_id|> wins over <|end_of_text|>, <|im_end|> over <|endoftext|>).
    private static readonly string[] EotTexts =
        ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
         "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"];
    private static readonly string[] EomTexts = ["<|eom_id|>"];
    private static readonly string[] FimPreTexts =
        ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"];
    private static readonly string[] FimSufTexts =
        ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"];
    private static readonly string[] FimMidTexts =
        ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"];
    private static readonly string[] FimPadTexts = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
    private static readonly string[] FimRepTexts = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
    private static readonly string[] FimSepTexts = ["<|file_sep|>"];

    /// <summary>Texts that end generation wherever they occur in a vocabulary.</summary>
    internal static readonly string[] EogTexts =
        ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
         "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
         "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~["];

    public static void Apply(VocabularyBuilder b, string? modelName, string? architecture)
    {
        DetectByText(b, ref b.Eot, EotTexts);
        DetectByText(b, ref b.Eom, EomTexts);
        DetectByText(b, ref b.FimPre, FimPreTexts);
        DetectByText(b, ref b.FimSuf, FimSufTexts);
        DetectByText(b, ref b.FimMid, FimMidTexts);
        DetectByText(b, ref b.FimPad, FimPadTexts);
        DetectByText(b, ref b.FimRep, FimRepTexts);
        DetectByText(b, ref b.FimSep, FimSepTexts);

        // control tokens named "...unused..." are unused
        for (int id = 0; id < b.Texts.Length; id++)
            if ((b.Attrs[id] & TokenAttributes.Control) != 0 && b.Texts[id].Contains("unused", StringComparison.Ordinal))
                b.Attrs[id] |= TokenAttributes.Unused;

        BuildEndOfGeneration(b);

        // gpt-oss: these are always rendered
        foreach (var t in (ReadOnlySpan<string>)["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"])
            if (b.Find(t) is var id and >= 0) b.Attrs[id] = TokenAttributes.UserDefined;

        foreach (var (id, name) in (ReadOnlySpan<(int, string)>)[(b.Eos, "EOS"), (b.Eot, "EOT"), (b.Eom, "EOM")])
            if (id >= 0 && b.Eog.Add(id))
                b.Warnings.Add($"the {name} token {id} was not in the end-of-generation set; added");

        ApplyEogExceptions(b);

        // the tokens recognised in text: control, user-defined and unknown, longest first (ties by id)
        var cache = new List<int>();
        for (int id = 0; id < b.Texts.Length; id++)
            if ((b.Attrs[id] & (TokenAttributes.Control | TokenAttributes.UserDefined | TokenAttributes.Unknown)) != 0)
                cache.Add(id);
        b.SpecialCache = [.. cache.OrderByDescending(id => System.Text.Encoding.UTF8.GetByteCount(b.Texts[id])).ThenBy(id => id)];

        ApplyModelSpecificAttributes(b, modelName, architecture);
    }

    private static void DetectByText(VocabularyBuilder b, ref int slot, string[] candidates)
    {
        if (slot != Vocabulary.None) return;
        foreach (var t in candidates)
        {
            int id = b.Find(t);
            if (id < 0) continue;
            slot = id;
            b.MakeControl(id);
            return;
        }
    }

    private static void BuildEndOfGeneration(VocabularyBuilder b)
    {
        b.Eog.Clear();
        foreach (int id in (ReadOnlySpan<int>)[b.FimPad, b.FimRep, b.FimSep])
            if (id >= 0) b.Eog.Add(id);
        foreach (var t in EogTexts)
        {
            int id = b.Find(t);
            if (id < 0) continue;
            b.Eog.Add(id);
            b.MakeControl(id);
        }
    }

    private static void ApplyEogExceptions(VocabularyBuilder b)
    {
        // o200k_harmony / solar-open: with <|return|>+<|call|> or <|calls|>+<|flush|>, <|end|> does not end generation
        bool hasReturn = false, hasCall = false, hasFlush = false;
        int end = Vocabulary.None;
        foreach (int id in b.Eog)
        {
            switch (b.Texts[id])
            {
                case "<|return|>": hasReturn = true; break;
                case "<|call|>" or "<|calls|>": hasCall = true; break;
                case "<|flush|>": hasFlush = true; break;
                case "<|end|>": end = id; break;
            }
        }
        if (end >= 0 && ((hasReturn && hasCall) || (hasCall && hasFlush)))
        {
            b.Eog.Remove(end);
            b.Attrs[end] = TokenAttributes.UserDefined;
        }

        // gemma4 / paddleocr: with <|tool_response>, </s> does not end generation
        int toolResponse = Vocabulary.None, s = Vocabulary.None;
        foreach (int id in b.Eog)
        {
            if (b.Texts[id] == "<|tool_response>") toolResponse = id;
            else if (b.Texts[id] == "</s>") s = id;
        }
        if (toolResponse >= 0 && s >= 0)
        {
            b.Eog.Remove(s);
            b.Attrs[s] = TokenAttributes.Normal;
        }
    }

    private static void ApplyModelSpecificAttributes(VocabularyBuilder b, string? modelName, string? architecture)
    {
        string name = (modelName ?? "").ToLowerInvariant();
        string pre = b.PreName ?? "";
        string arch = architecture ?? "";
        void Set(string text, TokenAttributes a, bool on)
        {
            int id = b.Find(text);
            if (id >= 0) b.Attrs[id] = on ? b.Attrs[id] | a : b.Attrs[id] & ~a;
        }

        if (pre.Contains("jina-v2-de") || pre.Contains("jina-v2-es") || pre.Contains("jina-v2-code")
            || arch.Contains("nomic-bert-moe") || arch.Contains("jina-bert-v3"))
        {
            Set("<mask>", TokenAttributes.LStrip, true);
        }
        else if (name.Contains("phi-3") || name.Contains("phi3"))
        {
            foreach (int id in b.SpecialCache) b.Attrs[id] |= TokenAttributes.RStrip;
            Set("</s>", TokenAttributes.RStrip, true);
            foreach (var t in (ReadOnlySpan<string>)["<unk>", "<s>", "<|endoftext|>"]) Set(t, TokenAttributes.RStrip, false);
        }
        else if (name.Contains("modern-bert"))
        {
            Set("[MASK]", TokenAttributes.LStrip, true);
        }
    }
}
