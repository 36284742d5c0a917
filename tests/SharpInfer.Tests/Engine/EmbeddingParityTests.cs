using System.Security.Cryptography;
using System.Text.Json;
using SharpInfer.Engine;
using SharpInfer.Engine.Pooling;
using SharpInfer.Models;

namespace SharpInfer.Tests.Engine;

/// <summary>
/// Pooling requests give llama.cpp's embeddings: Data/embedding-refs.json holds the vectors llama-embedding printed for
/// synthetic models (made by Data/make_embedding_refs.py; the file records the command, the llama.cpp commit and each
/// model's sha256); rank scores come from a tiny Qwen3 reranker (<see cref="RerankerModel"/>). The models are regenerated here by synth_gguf.py, and their sha256 is checked first, so the
/// references are known to be about these very bytes. Each vector must have cosine similarity ≥ 0.9999 with llama.cpp's.
/// </summary>
public class EmbeddingParityTests
{
    internal static JsonElement Refs { get; } = JsonDocument.Parse(File.ReadAllText(
        Path.Combine(TestPaths.RepoRoot, "tests", "SharpInfer.Tests", "Engine", "Data", "embedding-refs.json"))).RootElement;

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var c in Refs.GetProperty("cases").EnumerateArray()) data.Add(c.GetProperty("preset").GetString()!, c.GetProperty("pooling").GetString()!);
        return data;
    }

    internal static JsonElement Case(string preset, string pooling) =>
        Refs.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("preset").GetString() == preset && c.GetProperty("pooling").GetString() == pooling);

    /// <summary>The synthetic model of a reference case, checked against the sha256 the references were made from.</summary>
    internal static string ModelFile(JsonElement c)
    {
        var preset = c.GetProperty("preset").GetString()!;
        var path = preset == "qwen3-tiny-rank" ? RerankerModel.Get()
            : TestModels.Get(preset, c.GetProperty("type").GetString()!, c.GetProperty("seed").GetInt32());
        using var f = File.OpenRead(path);
        Assert.Equal(c.GetProperty("sha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(f)));
        return path;
    }

    internal static string[] Texts => Refs.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();

    internal static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
        return ab / Math.Sqrt(aa * bb);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Vectors_match_llama_embedding(string preset, string pooling)
    {
        var c = Case(preset, pooling);
        using var model = Model.Load(ModelFile(c));
        // a small token budget splits the long text into several prompt chunks, and the three run in one batch
        using var engine = new LlmEngine(model, new EngineOptions { Threads = 2, MaxNumSeqs = 4, MaxNumBatchedTokens = 16, MaxModelLen = 256 });
        var type = PoolingTypes.Parse(pooling);
        var texts = Texts;
        var results = await Task.WhenAll(texts.Select(t =>
            engine.PoolAsync(EngineRequest.ForPooling(model.Tokenizer.Encode(t), new PoolingParams { Type = type }))));
        var expected = c.GetProperty("vectors").EnumerateArray().ToArray();
        Assert.Equal(texts.Length, expected.Length);
        for (int i = 0; i < texts.Length; i++)
        {
            var want = expected[i].EnumerateArray().Select(v => v.GetSingle()).ToArray();
            var got = Assert.Single(results[i].Vectors);
            Assert.Equal(type, results[i].Type);
            if (type == PoolingType.Rank)
            {
                // the classification head's outputs (a softmax over yes/no), value by value: 1e-3 absolute, since the head
                // amplifies the hidden state's rounding differences (measured: 1.1e-4 on the first text)
                Assert.Equal(want.Length, got.Length);
                for (int k = 0; k < want.Length; k++) Assert.True(Math.Abs(want[k] - got[k]) < 1e-3, $"text {i} class {k}: {got[k]} vs llama.cpp {want[k]}");
                continue;
            }
            double cos = Cosine(got, want);
            Assert.True(cos >= 0.9999, $"{preset} {pooling} text {i}: cosine {cos:F6} with llama-embedding");
            // L2 normalization (llama-embedding's --embd-normalize 2)
            Assert.Equal(1.0, Math.Sqrt(got.Sum(x => (double)x * x)), 4);
        }
    }
}
