using SharpInfer.Gguf;
using SharpInfer.Quantization;
using SharpInfer.Tests.Gguf;

namespace SharpInfer.Tests.Quantization;

internal static class QuantizeTestUtil
{
    public static QuantizeOptions Options(string type, int threads = 2, bool pure = false) =>
        QuantFileType.TryParse(type, out var t) ? new QuantizeOptions(t, threads, Pure: pure) : throw new ArgumentException(type);

    /// <summary>SHA-256 of the file <c>quantize</c> would write (streamed into a hash, not to disk).</summary>
    public static string QuantizedSha256(string input, QuantizeOptions options)
    {
        using var g = GgufFile.Open(input);
        var plan = QuantizationPlan.Create(g, options);
        using var hash = new HashingStream();
        ModelQuantizer.Write(g, plan, hash, options.Threads);
        return hash.HexDigest();
    }

    /// <summary>A synthetic f32 model, checked against the hash ../shared/golden/models.sha256 publishes for it, so a
    /// changed generator fails here and not as a confusing hash mismatch of the quantized file.</summary>
    public static string SyntheticModel(string preset, string type = "f32") =>
        Verified.GetOrAdd((preset, type), k => VerifiedSyntheticModel(k.Preset, k.Type));

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string Preset, string Type), string> Verified = new();

    private static string VerifiedSyntheticModel(string preset, string type)
    {
        string path = TestModels.Get(preset, type);
        string name = Path.GetFileName(path);
        var line = File.ReadLines(Path.Combine(TestPaths.Golden, "models.sha256")).Single(l => l.EndsWith("  " + name, StringComparison.Ordinal));
        Assert.Equal(line[..64], HashingStream.HexDigestOfFile(path));
        return path;
    }

    /// <summary>A minimal llama-architecture GGUF holding the given tensors (enough for the mix rules to run).</summary>
    public static string TinyModel(Action<GgufWriter> tensors, int layers = 1)
    {
        var w = new GgufWriter()
            .Add("general.architecture", "llama")
            .Add("general.alignment", 32u)
            .Add("llama.block_count", (uint)layers)
            .Add("llama.attention.head_count", 4u)
            .Add("llama.attention.head_count_kv", 2u);
        tensors(w);
        var path = TestPaths.NewTempFile();
        w.Write(path);
        return path;
    }
}
