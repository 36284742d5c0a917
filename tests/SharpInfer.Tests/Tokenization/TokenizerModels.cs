using SharpInfer.Gguf;
using SharpInfer.Tokenization;

namespace SharpInfer.Tests.Tokenization;

/// <summary>The vocabularies with llama.cpp goldens, loaded once per test run.</summary>
internal static class TokenizerModels
{
    public static readonly string[] Names = ["stories260K", "mistral-tiny", "llama3-tiny", "qwen3-tiny", "phi3-tiny", "gpt-oss-tiny", "gemma3-tiny"];

    private static readonly Dictionary<string, Lazy<Tokenizer>> Cache = Names.ToDictionary(n => n, n => new Lazy<Tokenizer>(() => Load(n)));

    public static Tokenizer Get(string name) => Cache[name].Value;

    public static string PathOf(string name) => name == "stories260K" ? TestPaths.Stories260K
        : name == "phi3-tiny" ? TestModels.GetLarge(name, "q4_k_m")   // the smallest phi3 file (13 MB); same vocabulary
        : name == "gpt-oss-tiny" ? TestModels.Get(name, "q8_0")        // 125 MB instead of 430 (f32); same vocabulary
        : name == "gemma3-tiny" ? TestModels.GetLarge(name, "q8_0")   // 262k vocabulary: the q8_0 file (about 100 MB) is the smallest
        : TestModels.Get(name, "f32");

    private static Tokenizer Load(string name)
    {
        using var g = GgufFile.Open(PathOf(name));
        return Tokenizer.FromGguf(g);
    }

    /// <summary>(text, ids) of each golden line of a model.</summary>
    public static IReadOnlyList<(string Text, int[] Ids)> Golden(string name) =>
        GoldenCache.GetOrAdd(name, n => Tests.Golden.Lines($"tokenize/{n}.jsonl")
            .Select(e => (e.GetProperty("text").GetString()!, e.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray()))
            .ToList());

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, List<(string, int[])>> GoldenCache = new();
}
