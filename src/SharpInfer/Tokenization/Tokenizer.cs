using System.Buffers;
using System.Text;
using SharpInfer.Gguf;

namespace SharpInfer.Tokenization;

/// <summary>
/// Text ↔ token ids for a GGUF model, reproducing llama.cpp: <see cref="Encode(string, bool, bool)"/> is
/// <c>llama_tokenize</c>, <see cref="Decode(ReadOnlySpan{int}, bool)"/> is <c>llama_detokenize</c>,
/// <see cref="TokenToPiece"/> is <c>llama_token_to_piece</c>. Thread-safe; create once per model with
/// <see cref="FromGguf"/> or <see cref="Create"/>.
/// </summary>
/// <remarks>Input strings are processed as their UTF-8 encoding; a lone surrogate encodes as U+FFFD (as
/// <see cref="Encoding.UTF8"/> does), which is also what llama.cpp does with the corresponding invalid bytes.</remarks>
internal abstract class Tokenizer
{
    private protected readonly TokenPieces Pieces;

    private protected Tokenizer(Vocabulary vocabulary)
    {
        Vocabulary = vocabulary;
        Pieces = new TokenPieces(vocabulary);
    }

    public Vocabulary Vocabulary { get; }

    /// <summary>Reads the vocabulary from the file and builds the matching tokenizer.</summary>
    public static Tokenizer FromGguf(GgufFile g) => Create(Vocabulary.FromGguf(g));

    public static Tokenizer Create(Vocabulary vocabulary) => vocabulary.Kind switch
    {
        VocabularyKind.SentencePiece => new SentencePieceTokenizer(vocabulary),
        VocabularyKind.BytePair => new BytePairTokenizer(vocabulary),
        _ => throw new UnsupportedModelException($"vocabulary kind {vocabulary.Kind} is not supported"),
    };

    // ---- encoding -----------------------------------------------------------------------------------

    /// <summary><c>llama_tokenize(text, add_special, parse_special)</c>.</summary>
    /// <param name="addSpecial">Add BOS / EOS as the vocabulary says (<see cref="Vocabulary.AddBos"/>, <see cref="Vocabulary.AddEos"/>).</param>
    /// <param name="parseSpecial">Turn control tokens written in the text (e.g. <c>&lt;|im_start|&gt;</c>) into their ids.
    /// User-defined tokens are recognised either way.</param>
    public int[] Encode(string text, bool addSpecial = true, bool parseSpecial = true)
    {
        var list = new List<int>(text.Length / 3 + 4);
        Encode(text, list, addSpecial, parseSpecial);
        return [.. list];
    }

    /// <summary>Appends the ids of <paramref name="text"/> to <paramref name="output"/> (reuse the list to avoid garbage).</summary>
    public void Encode(string text, List<int> output, bool addSpecial = true, bool parseSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(output);
        var scratch = EncodeScratch.Rent();
        try
        {
            EncodeCore(text, output, addSpecial, parseSpecial, scratch);
        }
        finally
        {
            EncodeScratch.Return(scratch);
        }
    }

    /// <summary>Writes the ids into <paramref name="destination"/>; returns their number, or minus the number needed when
    /// it is too small (as <c>llama_tokenize</c>).</summary>
    public int Encode(string text, Span<int> destination, bool addSpecial = true, bool parseSpecial = true)
    {
        var scratch = EncodeScratch.Rent();
        var list = scratch.Output;
        try
        {
            list.Clear();
            EncodeCore(text, list, addSpecial, parseSpecial, scratch);
            if (list.Count > destination.Length) return -list.Count;
            System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list).CopyTo(destination);
            return list.Count;
        }
        finally
        {
            list.Clear();
            EncodeScratch.Return(scratch);
        }
    }

    /// <summary>
    /// <see cref="Encode(string, bool, bool)"/> for a caller with a token budget (a server checking a prompt against the
    /// context): returns the same ids when the text has at most <paramref name="maxTokens"/> tokens, and null as soon as
    /// it is known to have more, without encoding the rest. A text longer than <paramref name="maxTokens"/> ×
    /// <see cref="MaxBytesPerToken"/> UTF-8 bytes is refused before any tokenization; otherwise encoding stops once
    /// more than <paramref name="maxTokens"/> ids were produced (after a word for BPE, after a run of text between
    /// special tokens for SentencePiece, whose merges span the whole run).
    /// </summary>
    public int[]? EncodeAtMost(string text, int maxTokens, bool addSpecial = true, bool parseSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        if (IsLongerThan(text, maxTokens)) return null;
        var scratch = EncodeScratch.Rent();
        var list = scratch.Output;
        try
        {
            list.Clear();
            EncodeCore(text, list, addSpecial, parseSpecial, scratch, maxTokens);
            return list.Count > maxTokens ? null : [.. list];
        }
        finally
        {
            list.Clear();
            EncodeScratch.Return(scratch);
        }
    }

    /// <summary>
    /// The most UTF-8 bytes of input one token can stand for (the longest token text; an escaped space ▁ or a GPT-2
    /// byte character is longer in the vocabulary than the byte it stands for, so this over-estimates, which is the
    /// safe side), or 0 when the vocabulary can drop bytes (no byte tokens and no unknown token, or BPE merges whose
    /// result is not a token) so that no such bound holds.
    /// </summary>
    /// <remarks>Why this direction: every token of the output except BOS/EOS covers at least one byte and at most
    /// this many bytes of the input, so <c>tokens ≥ bytes / MaxBytesPerToken</c>, and a text of more than
    /// <c>n × MaxBytesPerToken</c> bytes certainly has more than <c>n</c> tokens. The other direction (fewer bytes
    /// than <c>n</c> means at most <c>n</c> tokens) only bounds from above and cannot reject anything early.</remarks>
    public int MaxBytesPerToken => _maxBytesPerToken ??= EveryByteGivesATokenCore ? Math.Max(1, Vocabulary.MaxTokenLength) : 0;

    private int? _maxBytesPerToken;

    /// <summary>True when <paramref name="text"/> is certainly more than <paramref name="maxTokens"/> tokens long, judged
    /// by its UTF-8 length alone (see <see cref="MaxBytesPerToken"/>); false means "maybe not".</summary>
    public bool IsLongerThan(string text, int maxTokens) => IsLongerThan(Encoding.UTF8.GetByteCount(text), maxTokens);

    /// <summary><see cref="IsLongerThan(string, int)"/> for a text of <paramref name="utf8Bytes"/> bytes.</summary>
    public bool IsLongerThan(long utf8Bytes, int maxTokens) => MaxBytesPerToken > 0 && utf8Bytes > (long)maxTokens * MaxBytesPerToken;

    /// <summary>Whether every byte of any text yields at least one token (see <see cref="MaxBytesPerToken"/>).</summary>
    private protected abstract bool EveryByteGivesATokenCore { get; }

    private void EncodeCore(string text, List<int> output, bool addSpecial, bool parseSpecial, EncodeScratch scratch, int limit = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = ReplaceLoneSurrogates(text);
        SpecialTokenSplitter.Split(Vocabulary, text, parseSpecial, scratch.Fragments, scratch.FragmentsAlt);
        if (addSpecial && Vocabulary.AddBos) output.Add(Vocabulary.BosId);
        EncodeFragments(text, scratch.Fragments, output, scratch, limit);
        if (addSpecial && Vocabulary.AddEos) output.Add(Vocabulary.EosId);
    }

    /// <summary>Encodes the fragments (raw text and special tokens, in order) between BOS and EOS; may stop early once
    /// <paramref name="output"/> holds more than <paramref name="limit"/> ids.</summary>
    private protected abstract void EncodeFragments(string text, List<Fragment> fragments, List<int> output, EncodeScratch scratch, int limit);

    private static string ReplaceLoneSurrogates(string s)
    {
        int i = 0;
        for (; i < s.Length; i++)
        {
            char c = s[i];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            break;
        }
        if (i >= s.Length) return s;
        var sb = new StringBuilder(s.Length);
        for (int j = 0; j < s.Length; j++)
        {
            char c = s[j];
            if (char.IsHighSurrogate(c) && j + 1 < s.Length && char.IsLowSurrogate(s[j + 1])) { sb.Append(c).Append(s[++j]); continue; }
            sb.Append(char.IsSurrogate(c) ? '\uFFFD' : c);
        }
        return sb.ToString();
    }

    // ---- decoding -----------------------------------------------------------------------------------

    /// <summary>A token's bytes as <c>llama_token_to_piece</c> gives them, from a cache: with
    /// <paramref name="renderSpecial"/> false, control and unknown tokens give nothing.</summary>
    public ReadOnlySpan<byte> PieceBytes(int id, bool renderSpecial = true)
    {
        CheckId(id);
        if (!renderSpecial && (Vocabulary.Attrs[id] & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0) return default;
        return Pieces[id];
    }

    /// <summary>A copy of <see cref="PieceBytes"/>: the raw UTF-8 bytes of a token (possibly part of a character).</summary>
    public byte[] TokenBytes(int id, bool renderSpecial = true) => PieceBytes(id, renderSpecial).ToArray();

    /// <summary><c>llama_token_to_piece</c>: writes the token's bytes, after skipping up to <paramref name="lstrip"/>
    /// leading spaces, into <paramref name="destination"/>. Returns the number of bytes, or minus the number needed
    /// when <paramref name="destination"/> is too small.</summary>
    public int TokenToPiece(int id, Span<byte> destination, bool renderSpecial = false, int lstrip = 0)
    {
        var piece = PieceBytes(id, renderSpecial);
        for (int i = 0; i < lstrip && !piece.IsEmpty && piece[0] == ' '; i++) piece = piece[1..];
        if (piece.Length > destination.Length) return -piece.Length;
        piece.CopyTo(destination);
        return piece.Length;
    }

    /// <summary><c>llama_detokenize(ids, remove_special: false, unparse_special: renderSpecial)</c>, i.e.
    /// <see cref="Decode(ReadOnlySpan{int}, DecodeOptions)"/> with default options.</summary>
    public string Decode(ReadOnlySpan<int> ids, bool renderSpecial = false) =>
        Decode(ids, renderSpecial ? RenderSpecialOptions : DecodeOptions.Default);

    private static readonly DecodeOptions RenderSpecialOptions = new() { RenderSpecial = true };

    /// <summary>Token ids to text; see <see cref="DecodeOptions"/>. Bytes that do not form valid UTF-8 become U+FFFD.</summary>
    public string Decode(ReadOnlySpan<int> ids, DecodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var v = Vocabulary;
        bool removeSpace = v.AddSpacePrefix && options.StripLeadingSpace;
        if (options.RemoveSpecial && v.AddBos && ids.Length > 0 && ids[0] == v.BosId)
        {
            removeSpace = false;
            ids = ids[1..];
        }
        if (options.RemoveSpecial && v.AddEos && ids.Length > 0 && ids[^1] == v.EosId) ids = ids[..^1];

        int total = 0;
        foreach (int id in ids) total += PieceBytes(id, options.RendersSpecial(id)).Length;
        byte[] buf = ArrayPool<byte>.Shared.Rent(Math.Max(total, 1));
        try
        {
            int n = 0;
            foreach (int id in ids)
            {
                n += TokenToPiece(id, buf.AsSpan(n), options.RendersSpecial(id), removeSpace ? 1 : 0);
                removeSpace = false;
            }
            if (options.CleanUpSpaces ?? v.CleanSpaces) n = SpaceCleanup.Apply(buf.AsSpan(0, n));
            return Encoding.UTF8.GetString(buf, 0, n);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
    }

    private protected void CheckId(int id)
    {
        if ((uint)id >= (uint)Vocabulary.Count)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id must be in [0, {Vocabulary.Count})");
    }
}
