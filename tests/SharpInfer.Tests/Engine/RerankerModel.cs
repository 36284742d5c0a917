using SharpInfer.Gguf;
using SharpInfer.Tensors;
using SharpInfer.Tests.Gguf;

namespace SharpInfer.Tests.Engine;

/// <summary>
/// A tiny Qwen3 reranker: the synthetic qwen3-tiny (f32, seed 1) with a classification head added the way llama.cpp
/// reads Qwen3 rerankers (<c>cls.output.weight</c> [n_embd, 2], <c>qwen3.classifier.output_labels</c> = yes/no,
/// <c>qwen3.pooling_type</c> = 4 (rank)). The head's values come from a fixed formula, so the file is the same bytes on
/// every machine (its sha256 is in Data/embedding-refs.json, next to llama-embedding's scores for it).
/// </summary>
public static class RerankerModel
{
    private static readonly object Gate = new();

    public static string Get()
    {
        var path = Path.Combine(TestPaths.Cache, "models", "qwen3-tiny-f32-s1-rank.gguf");
        lock (Gate)
        {
            if (File.Exists(path)) return path;
            const int embd = 256, classes = 2;
            var head = new float[embd * classes];
            for (int i = 0; i < head.Length; i++) head[i] = 0.5f * MathF.Sin(i * 0.37f);
            var bytes = new byte[head.Length * 4];
            Buffer.BlockCopy(head, 0, bytes, 0, bytes.Length);
            var patch = GgufPatch.From(TestModels.Get("qwen3-tiny", "f32"))
                .Set("qwen3.pooling_type", GgufValueType.UInt32, 4u)
                .Set("qwen3.classifier.output_labels", GgufValueType.Array, new GgufArray(GgufValueType.String, new[] { "yes", "no" }));
            patch.Tensors.Add(new GgufPatch.Tensor("cls.output.weight", [embd, classes], GgmlType.F32, bytes));
            var tmp = patch.Write();
            File.Move(tmp, path, overwrite: true);
            return path;
        }
    }
}
