using SharpInfer.Gguf;

namespace SharpInfer.Tokenization;

/// <summary>Reads and validates <c>tokenizer.ggml.*</c> metadata into a <see cref="VocabularyBuilder"/>, with
/// llama.cpp's defaults and precedence.</summary>
internal static class VocabularyReader
{
    private const string P = "tokenizer.ggml.";

    public static VocabularyBuilder Read(GgufFile g)
    {
        var b = new VocabularyBuilder();
        string model = g.GetString(P + "model")
            ?? throw new UnsupportedModelException($"{g.Path}: the file has no tokenizer ({P}model is missing)");
        b.Model = model;
        b.PreName = g.GetString(P + "pre");

        switch (model)
        {
            case "llama":
                b.Kind = VocabularyKind.SentencePiece;
                b.Bos = 1; b.Eos = 2; b.Unk = 0;
                b.AddSpacePrefix = true; b.CleanSpaces = false; b.AddBos = true; b.AddEos = false;
                b.PreType = PreTokenizerType.None;
                break;
            case "gpt2":
                b.Kind = VocabularyKind.BytePair;
                b.Bos = 11; b.Eos = 11; // llama.cpp's defaults for BPE vocabularies without these keys
                b.AddSpacePrefix = false; b.CleanSpaces = true;
                var e = PreTokenizerNames.Resolve(b.PreName, out b.PreIsFallback);
                b.PreType = e.Type;
                b.IgnoreMerges = e.IgnoreMerges;
                b.AddBos = e.AddBos;
                b.CleanSpaces = e.CleanSpaces;
                if (e.NoBos) b.Bos = Vocabulary.None;
                if (b.PreIsFallback)
                    b.Warnings.Add($"unknown pre-tokenizer {FileText.Quote(b.PreName)}: using the Llama 3 split (llama.cpp would refuse this model)");
                else if (b.PreName is null)
                    b.Warnings.Add("no pre-tokenizer type (tokenizer.ggml.pre): using llama.cpp's 'default' split; generation quality may suffer");
                break;
            case "no_vocab" or "none":
                throw new UnsupportedModelException($"{g.Path}: the model has no vocabulary ({P}model = {FileText.Quote(model)})");
            default:
                throw new UnsupportedModelException(
                    $"{g.Path}: tokenizer {FileText.Quote(model)} is not supported (supported: 'llama' SentencePiece, 'gpt2' byte-level BPE)");
        }
        if (g.GetBool(P + "add_space_prefix") is bool asp) b.AddSpacePrefix = asp;

        ReadTokens(g, b);
        if (b.Kind == VocabularyKind.BytePair)
        {
            var merges = g.GetArray(P + "merges")
                ?? throw new UnsupportedModelException($"{g.Path}: cannot find the tokenizer merges ({P}merges) of a BPE vocabulary");
            if (merges.ElementType != GgufValueType.String)
                throw new GgufFormatException(g.Path, $"metadata '{P}merges' should be an array of strings but is {GgufFile.DescribeValue(merges)}");
            b.Merges = (string[])merges.Items;
        }

        ReadSpecialIds(g, b);

        if (g.GetBool(P + "add_bos_token") is bool addBos) b.AddBos = addBos;
        if (g.GetBool(P + "add_eos_token") is bool addEos) b.AddEos = addEos;
        if (b.AddBos && b.Bos < 0)
            throw new UnsupportedModelException($"{g.Path}: {P}add_bos_token is true, but there is no BOS token ({P}bos_token_id)");
        if (b.AddEos && b.Eos < 0)
            throw new UnsupportedModelException($"{g.Path}: {P}add_eos_token is true, but there is no EOS token ({P}eos_token_id)");

        SpecialTokenRules.Apply(b, g.GetString("general.name"), g.GetString("general.architecture"));
        return b;
    }

    private static void ReadTokens(GgufFile g, VocabularyBuilder b)
    {
        var tokens = g.GetArray(P + "tokens")
            ?? throw new UnsupportedModelException($"{g.Path}: cannot find the tokenizer vocabulary ({P}tokens is missing)");
        if (tokens.ElementType != GgufValueType.String)
            throw new GgufFormatException(g.Path, $"metadata '{P}tokens' should be an array of strings but is {GgufFile.DescribeValue(tokens)}");
        var texts = (string[])tokens.Items;
        int n = texts.Length;
        if (n == 0) throw new UnsupportedModelException($"{g.Path}: the tokenizer vocabulary ({P}tokens) is empty");

        var scores = new float[n];
        if (g.GetArray(P + "scores") is { } s)
        {
            CheckLength(g, "scores", s, n);
            switch (s.Items)
            {
                case float[] f: Array.Copy(f, scores, n); break;
                case int[] iv: for (int i = 0; i < n; i++) scores[i] = iv[i]; break;
                default:
                    throw new GgufFormatException(g.Path, $"metadata '{P}scores' should be an array of FLOAT32 or INT32 but is {GgufFile.DescribeValue(s)}");
            }
        }

        var types = new TokenType[n];
        var attrs = new TokenAttributes[n];
        int[]? rawTypes = null;
        if (g.GetArray(P + "token_type") is { } t)
        {
            CheckLength(g, "token_type", t, n);
            rawTypes = t.Items as int[]
                ?? throw new GgufFormatException(g.Path, $"metadata '{P}token_type' should be an array of INT32 but is {GgufFile.DescribeValue(t)}");
        }

        var copy = new string[n];
        var map = new Dictionary<string, int>(n, StringComparer.Ordinal);
        int maxLen = 0;
        for (int i = 0; i < n; i++)
        {
            string w = texts[i];
            if (w.Length == 0)
            {
                w = $"[EMPTY_{i}]";
                b.Warnings.Add($"empty token at index {i}");
            }
            if (!map.TryAdd(w, i))
                throw new UnsupportedModelException($"{g.Path}: duplicate token in the vocabulary: {FileText.Quote(w)} has ids {map[w]} and {i}");
            copy[i] = w;
            maxLen = Math.Max(maxLen, System.Text.Encoding.UTF8.GetByteCount(w));
            var type = rawTypes is null ? TokenType.Normal : rawTypes[i] is >= 0 and <= 6 ? (TokenType)rawTypes[i] : TokenType.Undefined;
            types[i] = type;
            attrs[i] = type switch
            {
                TokenType.Normal => TokenAttributes.Normal,
                TokenType.Unknown => TokenAttributes.Unknown,
                TokenType.Control => TokenAttributes.Control,
                TokenType.UserDefined => TokenAttributes.UserDefined,
                TokenType.Unused => TokenAttributes.Unused,
                TokenType.Byte => TokenAttributes.Byte,
                _ => TokenAttributes.Undefined,
            };
        }
        b.Texts = copy;
        b.Scores = scores;
        b.Types = types;
        b.Attrs = attrs;
        b.TextToId = map;
        b.MaxTokenLength = maxLen;
    }

    private static void CheckLength(GgufFile g, string key, GgufArray a, int n)
    {
        if (a.Count != n)
            throw new GgufFormatException(g.Path, $"metadata '{P}{key}' has {a.Count} entries but '{P}tokens' has {n}: the vocabulary is inconsistent");
    }

    private static void ReadSpecialIds(GgufFile g, VocabularyBuilder b)
    {
        int n = b.Texts.Length;
        // An id that is present but outside the vocabulary is an error for the tokens the engine relies on (strict),
        // and ignored with a warning (llama.cpp keeps its default) for the others. Later keys override earlier ones
        // (the deprecated prefix/suffix/middle ids override fim_*), as in llama.cpp.
        Read("bos_token_id", ref b.Bos, strict: true);
        Read("eos_token_id", ref b.Eos, strict: true);
        Read("eot_token_id", ref b.Eot, strict: true);
        Read("eom_token_id", ref b.Eom, strict: true);
        Read("unknown_token_id", ref b.Unk, strict: true);
        Read("seperator_token_id", ref b.Sep, strict: false);
        Read("padding_token_id", ref b.Pad, strict: false);
        Read("mask_token_id", ref b.Mask, strict: false);
        Read("fim_pre_token_id", ref b.FimPre, strict: false);
        Read("fim_suf_token_id", ref b.FimSuf, strict: false);
        Read("fim_mid_token_id", ref b.FimMid, strict: false);
        Read("fim_pad_token_id", ref b.FimPad, strict: false);
        Read("fim_rep_token_id", ref b.FimRep, strict: false);
        Read("fim_sep_token_id", ref b.FimSep, strict: false);
        Read("prefix_token_id", ref b.FimPre, strict: false);
        Read("suffix_token_id", ref b.FimSuf, strict: false);
        Read("middle_token_id", ref b.FimMid, strict: false);

        void Read(string key, ref int slot, bool strict)
        {
            // a default outside the vocabulary is disabled
            if (slot >= n) slot = Vocabulary.None;
            long? v = g.GetInteger(P + key);
            if (v is not long id) return;
            // -1 / 0xFFFFFFFF conventionally mean "no such token": llama.cpp keeps its default then
            if (id is -1 or 0xFFFFFFFF) return;
            if (id < 0 || id >= n)
            {
                if (strict)
                    throw new UnsupportedModelException($"{g.Path}: {P}{key} = {id} is outside the vocabulary of {n} tokens");
                b.Warnings.Add($"{P}{key} = {id} is outside the vocabulary of {n} tokens; ignored");
                return;
            }
            slot = (int)id;
        }
    }
}
