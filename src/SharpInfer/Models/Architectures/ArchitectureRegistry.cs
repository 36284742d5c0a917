using SharpInfer.Gguf;
using SharpInfer.Models.Architectures;

namespace SharpInfer.Models;

/// <summary>The registry of model families by GGUF <c>general.architecture</c>.</summary>
internal static class ArchitectureRegistry
{
    private static readonly Architecture[] All = [new Llama(), new Qwen2(), new Qwen3(), new Qwen3Moe(), new SmolLm3(), new Phi3(), new Gemma3(), new GptOss()];

    private static readonly Dictionary<string, Architecture> ByName = All.ToDictionary(a => a.Name, StringComparer.Ordinal);

    /// <summary>The supported <c>general.architecture</c> values, in registry order.</summary>
    public static IReadOnlyList<string> Names { get; } = All.Select(a => a.Name).ToArray();

    public static bool TryGet(string name, out Architecture family) => ByName.TryGetValue(name, out family!);

    /// <summary>The family named <paramref name="name"/>; an unknown name is an <see cref="UnsupportedModelException"/>
    /// that lists the supported ones.</summary>
    public static Architecture Get(string name) => TryGet(name, out var a) ? a
        : throw new UnsupportedModelException($"architecture {FileText.Quote(name)} is not supported (supported: {string.Join(", ", Names)})");
}
