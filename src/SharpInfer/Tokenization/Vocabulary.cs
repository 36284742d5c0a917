namespace SharpInfer.Tokenization;

/// <summary>
/// A model's vocabulary as llama.cpp sees it: token texts, scores, types and attributes, the special token ids,
/// the tokenizer flags and the end-of-generation set, all computed by llama.cpp's loading rules
/// (<c>llama_vocab::impl::load</c>). Immutable and thread-safe. Build one with <see cref="FromGguf"/>.
/// </summary>
internal sealed class Vocabulary
{
    /// <summary>The id of an absent special token (llama.cpp's <c>LLAMA_TOKEN_NULL</c>).</summary>
    public const int None = -1;

    internal readonly string[] Texts;
    internal readonly float[] Scores;
    internal readonly TokenType[] Types;
    internal readonly TokenAttributes[] Attrs;
    private readonly Dictionary<string, int> _textToId;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _textToIdSpan;
    private readonly HashSet<int> _eog;

    internal Vocabulary(VocabularyBuilder b)
    {
        Kind = b.Kind;
        Model = b.Model;
        PreTokenizerName = b.PreName;
        PreTokenizer = b.PreType;
        IsPreTokenizerFallback = b.PreIsFallback;
        Texts = b.Texts;
        Scores = b.Scores;
        Types = b.Types;
        Attrs = b.Attrs;
        _textToId = b.TextToId;
        _textToIdSpan = _textToId.GetAlternateLookup<ReadOnlySpan<char>>();
        Merges = b.Merges;
        BosId = b.Bos; EosId = b.Eos; EotId = b.Eot; EomId = b.Eom; UnknownId = b.Unk; SeparatorId = b.Sep;
        PaddingId = b.Pad; MaskId = b.Mask; FimPrefixId = b.FimPre; FimSuffixId = b.FimSuf; FimMiddleId = b.FimMid;
        FimPadId = b.FimPad; FimRepoId = b.FimRep; FimSeparatorId = b.FimSep;
        AddBos = b.AddBos; AddEos = b.AddEos; AddSpacePrefix = b.AddSpacePrefix; CleanSpaces = b.CleanSpaces;
        IgnoreMerges = b.IgnoreMerges;
        _eog = [.. b.Eog];
        EndOfGenerationIds = [.. b.Eog.Order()];
        SpecialTokensLongestFirst = b.SpecialCache;
        MaxTokenLength = b.MaxTokenLength;
        Warnings = b.Warnings;
    }

    /// <summary>Reads the vocabulary from a GGUF file's <c>tokenizer.ggml.*</c> metadata.</summary>
    /// <exception cref="UnsupportedModelException">No tokenizer, an unsupported tokenizer model, missing tokens or
    /// merges, a duplicate token, an out-of-range BOS/EOS/EOT/EOM/UNK id, or BOS/EOS requested but absent.</exception>
    /// <exception cref="GgufFormatException">Tokenizer metadata of the wrong type or inconsistent lengths.</exception>
    public static Vocabulary FromGguf(Gguf.GgufFile g) => new(VocabularyReader.Read(g));

    public VocabularyKind Kind { get; }
    /// <summary><c>tokenizer.ggml.model</c>: "llama" or "gpt2".</summary>
    public string Model { get; }
    /// <summary><c>tokenizer.ggml.pre</c> as stored (null when absent).</summary>
    public string? PreTokenizerName { get; }
    /// <summary>The splitter used for <see cref="VocabularyKind.BytePair"/> vocabularies.</summary>
    public PreTokenizerType PreTokenizer { get; }
    /// <summary>True when <see cref="PreTokenizerName"/> is not a known name and the documented fallback (the Llama 3
    /// split) is used; llama.cpp would refuse such a model.</summary>
    public bool IsPreTokenizerFallback { get; }
    /// <summary>BPE merges in rank order (null for SentencePiece).</summary>
    internal string[]? Merges { get; }

    public int Count => Texts.Length;
    public int MaxTokenLength { get; }

    public int BosId { get; }
    public int EosId { get; }
    public int EotId { get; }
    public int EomId { get; }
    public int UnknownId { get; }
    public int SeparatorId { get; }
    public int PaddingId { get; }
    public int MaskId { get; }
    public int FimPrefixId { get; }
    public int FimSuffixId { get; }
    public int FimMiddleId { get; }
    public int FimPadId { get; }
    public int FimRepoId { get; }
    public int FimSeparatorId { get; }

    /// <summary>Whether <c>Encode(addSpecial: true)</c> prepends BOS.</summary>
    public bool AddBos { get; }
    /// <summary>Whether <c>Encode(addSpecial: true)</c> appends EOS.</summary>
    public bool AddEos { get; }
    /// <summary>SentencePiece: a space is prepended to text that starts the input or follows a special token; decoding
    /// a whole sequence removes one leading space again.</summary>
    public bool AddSpacePrefix { get; }
    /// <summary>Decoding removes spaces before <c>? ! . ,</c> and around some apostrophes (HF's
    /// <c>clean_up_tokenization_spaces</c>, as llama.cpp does it).</summary>
    public bool CleanSpaces { get; }
    /// <summary>BPE: a pre-tokenized word that is itself a token is emitted without merging.</summary>
    public bool IgnoreMerges { get; }

    /// <summary>Things the loader tolerated that llama.cpp would warn about (e.g. an unknown pre-tokenizer).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Every token id that ends generation, ascending.</summary>
    public IReadOnlyList<int> EndOfGenerationIds { get; }

    /// <summary>Control, user-defined and unknown tokens, longest text first: the tokens recognised in text.</summary>
    internal int[] SpecialTokensLongestFirst { get; }

    public bool IsEndOfGeneration(int id) => id >= 0 && _eog.Contains(id);

    public string GetText(int id) => Texts[Check(id)];
    public float GetScore(int id) => Scores[Check(id)];
    public TokenType GetTokenType(int id) => Types[Check(id)];
    public TokenAttributes GetAttributes(int id) => Attrs[Check(id)];

    public bool IsNormal(int id) => Has(id, TokenAttributes.Normal);
    public bool IsUnknown(int id) => Has(id, TokenAttributes.Unknown);
    public bool IsControl(int id) => Has(id, TokenAttributes.Control);
    public bool IsUserDefined(int id) => Has(id, TokenAttributes.UserDefined);
    public bool IsUnused(int id) => Has(id, TokenAttributes.Unused);
    public bool IsByte(int id) => Has(id, TokenAttributes.Byte);

    private bool Has(int id, TokenAttributes a) => (Attrs[Check(id)] & a) != 0;

    /// <summary>The id of the token whose text is exactly <paramref name="text"/>, or <see cref="None"/>.</summary>
    public int GetId(string text) => _textToId.TryGetValue(text, out int id) ? id : None;

    public bool TryGetId(ReadOnlySpan<char> text, out int id) => _textToIdSpan.TryGetValue(text, out id);

    private int Check(int id)
    {
        if ((uint)id >= (uint)Texts.Length)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id must be in [0, {Texts.Length})");
        return id;
    }
}
