namespace SharpInfer.Tokenization;

/// <summary>How a byte-level BPE vocabulary splits text into words before merging (llama.cpp's
/// <c>llama_vocab_pre_type</c>, reduced to the splitters this engine implements).</summary>
internal enum PreTokenizerType
{
    /// <summary>Not a BPE vocabulary (SentencePiece does not pre-split).</summary>
    None,
    /// <summary>llama.cpp's "default" (no or "default" <c>tokenizer.ggml.pre</c>): punctuation runs, then the GPT-2
    /// regex, then digit runs, then groups of three ASCII digits.</summary>
    Default,
    /// <summary>GPT-2: <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>.</summary>
    Gpt2,
    /// <summary>Llama 3 / cl100k: <c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c>.</summary>
    Llama3,
    /// <summary>Qwen2: as <see cref="Llama3"/> but every digit is its own word (<c>\p{N}</c>).</summary>
    Qwen2,
    /// <summary>StarCoder / SmolLM: every digit split off first, then the GPT-2 regex.</summary>
    StarCoder,
    /// <summary>GPT-4o / o200k (gpt-oss, Llama 4): case-aware letter runs with contractions attached, as llama.cpp
    /// rewrites it for std::regex (<c>\p{M}</c> dropped, ASCII-only case classes), see <see cref="PreTokenizer"/>.</summary>
    Gpt4o,
}
