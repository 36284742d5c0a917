namespace SharpInfer.Tokenization;

/// <summary>
/// Maps <c>tokenizer.ggml.pre</c> names to a splitter and to the flags llama.cpp sets with them
/// (llama.cpp's <c>llama_vocab::impl::load</c>, for every name whose regex this engine implements).
/// </summary>
internal static class PreTokenizerNames
{
    internal readonly record struct Entry(PreTokenizerType Type, bool IgnoreMerges = false, bool AddBos = false,
        bool CleanSpaces = true, bool NoBos = false);

    private static readonly Dictionary<string, Entry> Map = Build();

    private static Dictionary<string, Entry> Build()
    {
        var m = new Dictionary<string, Entry>(StringComparer.Ordinal);
        void Add(Entry e, params string[] names) { foreach (var n in names) m.Add(n, e); }

        Add(new(PreTokenizerType.Default), "default");
        Add(new(PreTokenizerType.Llama3, IgnoreMerges: true, AddBos: true),
            "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano");
        Add(new(PreTokenizerType.Llama3), "dbrx", "smaug-bpe");
        Add(new(PreTokenizerType.Llama3, NoBos: true), "glm4", "chatglm-bpe");
        Add(new(PreTokenizerType.Qwen2, CleanSpaces: false), "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open");
        Add(new(PreTokenizerType.Qwen2), "stablelm2", "megrez");
        // "gpt2" is not a llama.cpp name (it uses "gpt-2"); accepted as an alias.
        Add(new(PreTokenizerType.Gpt2), "gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
            "a.x-4.0", "mellum", "modern-bert", "mpt", "olmo", "jais", "exaone4", "jina-v1-en", "jina-v2-code", "roberta-bpe");
        Add(new(PreTokenizerType.Gpt2, CleanSpaces: false), "trillion", "granite-docling");
        Add(new(PreTokenizerType.StarCoder), "starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2");
        Add(new(PreTokenizerType.StarCoder, CleanSpaces: false), "command-r", "smollm");
        Add(new(PreTokenizerType.Gpt4o, CleanSpaces: false), "gpt-4o", "llama4", "kanana2", "talkie");
        return m;
    }

    /// <summary>
    /// The entry for a name. A missing name is llama.cpp's "default". An unknown name (llama.cpp refuses the
    /// model) falls back to the Llama 3 / cl100k split without clean-up of spaces on decode: most byte-level BPE
    /// vocabularies of recent models use that regex or a close variant, so it is the least-wrong guess, and it
    /// splits contractions, letters, digit groups, punctuation and newlines sensibly for any vocabulary.
    /// </summary>
    public static Entry Resolve(string? name, out bool isFallback)
    {
        isFallback = false;
        if (string.IsNullOrEmpty(name)) return new(PreTokenizerType.Default);
        if (Map.TryGetValue(name, out var e)) return e;
        isFallback = true;
        return new(PreTokenizerType.Llama3, CleanSpaces: false);
    }
}
