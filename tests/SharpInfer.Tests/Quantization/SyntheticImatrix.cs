using SharpInfer.Gguf;
using SharpInfer.Quantization;

namespace SharpInfer.Tests.Quantization;

/// <summary>
/// A deterministic importance matrix for a model, written by our own imatrix writer, so that byte-identity tests with
/// llama-quantize need no llama-imatrix run: for every matrix weight except token_embd (an input of get_rows, never
/// of a matmul) and for each expert e, column i gets in_sum2 = v²·8 with counts 8, v = (hash(tensor, e, i) mod 2048 + 1)/64
/// — so the weights llama-quantize derives (in_sum2/counts = v²) are exact floats spread over six orders of magnitude.
/// In a MoE tensor expert 1 has count 0 (llama-quantize then uses weight 1 for its columns).
/// The files are cached in .cache/models beside the model as MODEL.synthetic-imatrix.gguf (and .dat, the legacy
/// format holding the same weights); the reference hashes came from <c>llama-quantize --imatrix imatrix.gguf MODEL.gguf
/// OUT TYPE 2</c> with the file copied to imatrix.gguf in the working directory (llama-quantize records the file name as
/// given, so tests pass that name).
/// </summary>
internal static class SyntheticImatrix
{
    private static readonly object Gate = new();

    public static ImportanceMatrix Create(string modelPath)
    {
        using var g = GgufFile.Open(modelPath);
        var entries = new SortedDictionary<string, ImatrixEntry>(StringComparer.Ordinal);
        uint nameIndex = 0;
        foreach (var t in g.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            nameIndex++;
            if (t.Dims.Length < 2 || !t.Name.EndsWith(".weight", StringComparison.Ordinal) || t.Name.Contains("_norm", StringComparison.Ordinal)
                || t.Name == "token_embd.weight" || t.Name.Contains("ffn_gate_inp", StringComparison.Ordinal))
                continue;
            int ne0 = (int)t.Dims[0], experts = t.Dims.Length > 2 ? (int)t.Dims[2] : 1;
            var sums = new float[ne0 * experts];
            var counts = new long[experts];
            for (int e = 0; e < experts; e++)
            {
                counts[e] = experts > 1 && e == 1 ? 0 : 8;
                for (int i = 0; i < ne0; i++)
                {
                    uint h = unchecked((uint)i * 2654435761u + nameIndex * 40503u + (uint)e * 977u);
                    h ^= h >> 15;
                    float v = (h % 2048 + 1) / 64f;
                    sums[e * ne0 + i] = counts[e] == 0 ? 0f : v * v * 8f;
                }
            }
            entries[t.Name] = new ImatrixEntry(sums, counts);
        }
        return new ImportanceMatrix { Entries = entries, Datasets = ["synthetic"], ChunkCount = 10, ChunkSize = 512 };
    }

    /// <summary>The GGUF imatrix file for the model (written once, then reused).</summary>
    public static string GgufFileFor(string modelPath) => Cached(modelPath, ".synthetic-imatrix.gguf", (m, path) => m.Save(path));

    /// <summary>The same weights in llama-imatrix's legacy .dat format: per entry name, ncall, values (mean·ncall),
    /// then the chunk count and the dataset name.</summary>
    public static string LegacyFileFor(string modelPath) => Cached(modelPath, ".synthetic-imatrix.dat", WriteLegacy);

    private static string Cached(string modelPath, string suffix, Action<ImportanceMatrix, string> write)
    {
        string path = Path.ChangeExtension(modelPath, null) + suffix;
        lock (Gate)
        {
            if (File.Exists(path)) return path;
            string temp = path + $".{Guid.NewGuid():N}.tmp";
            write(Create(modelPath), temp);
            File.Move(temp, path, overwrite: true);
            return path;
        }
    }

    private static void WriteLegacy(ImportanceMatrix m, string path)
    {
        using var w = new BinaryWriter(File.Create(path));
        var entries = m.Entries.Where(e => e.Value.Counts.Length == 1).ToList();
        w.Write(entries.Count);
        foreach (var (name, e) in entries)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(name);
            w.Write(bytes.Length);
            w.Write(bytes);
            w.Write((int)e.Counts[0]);
            w.Write(e.Sums.Length);
            foreach (float s in e.Sums) w.Write(s);   // v²·8 = mean·ncall with ncall 8
        }
        w.Write(m.ChunkCount);
        var ds = System.Text.Encoding.UTF8.GetBytes(m.Datasets[0]);
        w.Write(ds.Length);
        w.Write(ds);
    }

    /// <summary>Options for TYPE with the imatrix loaded from <paramref name="imatrixPath"/> but recorded under
    /// <paramref name="recordedName"/>, the name llama-quantize was given.</summary>
    public static QuantizeOptions Options(string type, string imatrixPath, string recordedName = "imatrix.gguf",
        string[]? include = null, string[]? exclude = null)
    {
        var imatrix = QuantImatrix.Load(imatrixPath, include, exclude);
        return QuantizeTestUtil.Options(type) with { Imatrix = imatrix == null ? null : imatrix with { FileName = recordedName } };
    }
}
