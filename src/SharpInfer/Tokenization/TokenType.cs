namespace SharpInfer.Tokenization;

/// <summary>A token's type as stored in <c>tokenizer.ggml.token_type</c> (numbered as in GGUF / llama.cpp).</summary>
internal enum TokenType
{
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>llama.cpp's per-token attribute bits. They start as the token's <see cref="TokenType"/> and are then
/// adjusted by the loader's rules (e.g. an end-of-turn token stored as normal becomes control, control tokens
/// whose text contains "unused" also become unused, Phi-3's special tokens get <see cref="RStrip"/>).</summary>
[Flags]
internal enum TokenAttributes
{
    Undefined = 0,
    Unknown = 1 << 0,
    Unused = 1 << 1,
    Normal = 1 << 2,
    Control = 1 << 3,
    UserDefined = 1 << 4,
    Byte = 1 << 5,
    Normalized = 1 << 6,
    /// <summary>When the token is matched in text, whitespace to its left is removed.</summary>
    LStrip = 1 << 7,
    /// <summary>When the token is matched in text, whitespace to its right is removed.</summary>
    RStrip = 1 << 8,
    SingleWord = 1 << 9,
}

/// <summary>The tokenizer family named by <c>tokenizer.ggml.model</c>.</summary>
internal enum VocabularyKind
{
    /// <summary><c>llama</c>: SentencePiece-style (score-ordered bigram merges, ▁ for spaces, byte fallback).</summary>
    SentencePiece,
    /// <summary><c>gpt2</c>: byte-level BPE (ranked merges over GPT-2's byte-to-unicode alphabet, regex pre-tokenizer).</summary>
    BytePair,
}
