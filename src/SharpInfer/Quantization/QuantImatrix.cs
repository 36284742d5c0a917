using SharpInfer.Gguf;

namespace SharpInfer.Quantization;

/// <summary>
/// An importance matrix as <c>quantize --imatrix</c> uses it: the per-column weights by tensor name after
/// --include-weights/--exclude-weights, and what llama-quantize records about it in the output's metadata.
/// </summary>
/// <param name="FileName">The file name exactly as given on the command line: llama-quantize stores that string
/// (first 127 bytes) as quantize.imatrix.file, so the same bytes need the same spelling.</param>
internal sealed record QuantImatrix(IReadOnlyDictionary<string, float[]> Weights, string FileName, IReadOnlyList<string> Datasets, int ChunkCount)
{
    /// <summary>llama-quantize's metadata keys (llama_model_kv_override values, at most 127 bytes of text).</summary>
    public const string FileKey = "quantize.imatrix.file", DatasetKey = "quantize.imatrix.dataset",
        EntriesKey = "quantize.imatrix.entries_count", ChunksKey = "quantize.imatrix.chunks_count";

    /// <summary>Loads <paramref name="path"/> and selects its weights; null when the selection is empty (llama-quantize
    /// then quantizes as if no imatrix had been given, and records nothing).</summary>
    public static QuantImatrix? Load(string path, IReadOnlyList<string>? include = null, IReadOnlyList<string>? exclude = null)
    {
        var m = ImportanceMatrix.Load(path);
        var weights = m.SelectWeights(include ?? [], exclude ?? []);
        return weights.Count == 0 ? null : new QuantImatrix(weights, path, m.Datasets, m.ChunkCount);
    }

    /// <summary>The keys llama-quantize appends after general.file_type, in its order.</summary>
    public IEnumerable<GgufKeyValue> Metadata()
    {
        yield return new GgufKeyValue(FileKey, GgufValueType.String, Truncate(FileName));
        if (Datasets.Count > 0) yield return new GgufKeyValue(DatasetKey, GgufValueType.String, Truncate(Datasets[0]));
        yield return new GgufKeyValue(EntriesKey, GgufValueType.UInt32, (uint)Weights.Count);
        if (ChunkCount > 0) yield return new GgufKeyValue(ChunksKey, GgufValueType.UInt32, (uint)ChunkCount);
    }

    /// <summary>The weights for a tensor that is being converted, as llama_model_quantize finds them: none when the
    /// name is absent; an error when the size is not columns × experts (token embeddings excepted: they are never a
    /// matmul input, and an old imatrix may carry a mismatched entry for them).</summary>
    public float[]? WeightsFor(GgufTensorInfo t)
    {
        if (!Weights.TryGetValue(t.Name, out var w)) return null;
        long expected = t.Dims[0] * (t.Dims.Length > 2 ? t.Dims[2] : 1);
        if (w.Length == expected) return w;
        if (t.Name is "token_embd.weight" or "per_layer_token_embd.weight") return null;
        throw new QuantizationException($"imatrix size {w.Length} is different from tensor size {expected} for {FileText.Quote(t.Name)}");
    }

    /// <summary>strncpy into llama_model_kv_override's 128-byte buffer: at most 127 bytes (cut on a character
    /// boundary; llama.cpp could cut a multi-byte character in half, which no valid file name here needs).</summary>
    private static string Truncate(string s)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(s);
        if (bytes.Length <= 127) return s;
        int n = 127;
        while (n > 0 && (bytes[n] & 0xC0) == 0x80) n--;
        return System.Text.Encoding.UTF8.GetString(bytes, 0, n);
    }
}
