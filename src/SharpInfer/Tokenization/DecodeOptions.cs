namespace SharpInfer.Tokenization;

/// <summary>
/// How token ids become text. The defaults are llama.cpp's <c>llama_detokenize(remove_special: false,
/// unparse_special: false)</c> — what <c>common_detokenize</c> does: special tokens render as nothing, a
/// SentencePiece vocabulary with <see cref="Vocabulary.AddSpacePrefix"/> loses one leading space of the first token,
/// and vocabularies with <see cref="Vocabulary.CleanSpaces"/> get HF-style space clean-up.
/// </summary>
internal sealed record DecodeOptions
{
    public static DecodeOptions Default { get; } = new();

    /// <summary>Concatenated <c>token_to_piece</c> of each token, untouched: what llama.cpp prints while it
    /// generates (no leading-space removal, no clean-up). Use this for tokens that continue a sequence.</summary>
    public static DecodeOptions Pieces { get; } = new() { StripLeadingSpace = false, CleanUpSpaces = false };

    /// <summary>Render control and unknown tokens as their text (user-defined tokens always render).</summary>
    public bool RenderSpecial { get; init; }

    /// <summary>Control tokens that render as their text although <see cref="RenderSpecial"/> is off: llama-server's
    /// "preserved tokens", which a chat format needs to see in the reply (gpt-oss's harmony headers). A handful of ids,
    /// decided once per request; null or empty: none.</summary>
    public int[]? PreservedTokens { get; init; }

    /// <summary>Whether token <paramref name="id"/> renders as its text when it is a control or unknown token.</summary>
    public bool RendersSpecial(int id) => RenderSpecial || (PreservedTokens is { } p && Array.IndexOf(p, id) >= 0);

    /// <summary>Drop a leading BOS (when the vocabulary adds BOS) and a trailing EOS (when it adds EOS), as
    /// llama.cpp's <c>remove_special</c>. After a dropped BOS the leading space is kept.</summary>
    public bool RemoveSpecial { get; init; }

    /// <summary>Remove one leading space from the first token when <see cref="Vocabulary.AddSpacePrefix"/> is set
    /// (the sequence is decoded from its start).</summary>
    public bool StripLeadingSpace { get; init; } = true;

    /// <summary>Apply the space clean-up; null: as the vocabulary says (<see cref="Vocabulary.CleanSpaces"/>).</summary>
    public bool? CleanUpSpaces { get; init; }
}
