namespace SharpInfer.Tokenization;

/// <summary>Mutable state of a vocabulary while the loader's rules run; frozen into a <see cref="Vocabulary"/>.</summary>
internal sealed class VocabularyBuilder
{
    public VocabularyKind Kind;
    public string Model = "";
    public string? PreName;
    public PreTokenizerType PreType;
    public bool PreIsFallback;

    public string[] Texts = [];
    public float[] Scores = [];
    public TokenType[] Types = [];
    public TokenAttributes[] Attrs = [];
    public Dictionary<string, int> TextToId = new(StringComparer.Ordinal);
    public string[]? Merges;
    public int MaxTokenLength;

    public int Bos = Vocabulary.None, Eos = Vocabulary.None, Eot = Vocabulary.None, Eom = Vocabulary.None;
    public int Unk = Vocabulary.None, Sep = Vocabulary.None, Pad = Vocabulary.None, Mask = Vocabulary.None;
    public int FimPre = Vocabulary.None, FimSuf = Vocabulary.None, FimMid = Vocabulary.None;
    public int FimPad = Vocabulary.None, FimRep = Vocabulary.None, FimSep = Vocabulary.None;

    public bool AddBos, AddEos, AddSpacePrefix, CleanSpaces, IgnoreMerges;

    public SortedSet<int> Eog = [];
    public int[] SpecialCache = [];
    public List<string> Warnings = [];

    public int Find(string text) => TextToId.TryGetValue(text, out int id) ? id : Vocabulary.None;

    /// <summary>Marks a token control-type (llama.cpp does this to end-of-turn/FIM/EOG-looking tokens that were
    /// stored as another type).</summary>
    public void MakeControl(int id) => Attrs[id] |= TokenAttributes.Control;
}
