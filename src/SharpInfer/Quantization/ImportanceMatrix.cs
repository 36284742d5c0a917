using System.Text;
using SharpInfer.Gguf;
using SharpInfer.Tensors;

namespace SharpInfer.Quantization;

/// <summary>One matrix weight's statistics: per input column the sum of squared activations, for each expert
/// (<c>Sums.Length == columns · Counts.Length</c>), and how many activation rows each expert saw.</summary>
internal sealed record ImatrixEntry(float[] Sums, long[] Counts)
{
    public int Columns => Counts.Length == 0 ? 0 : Sums.Length / Counts.Length;
}

/// <summary>
/// An importance matrix in llama.cpp's formats. The GGUF one (what llama-imatrix writes by default): metadata
/// <c>general.type = imatrix</c>, <c>imatrix.datasets</c> (strings), <c>imatrix.chunk_count</c>, <c>imatrix.chunk_size</c>
/// (u32), and per weight two F32 tensors, <c>NAME.in_sum2</c> [columns, experts] and <c>NAME.counts</c> [1, experts], in
/// name order. The legacy <c>.dat</c> one (read only): i32 entry count, then per entry i32 name length, name, i32 ncall,
/// i32 value count, floats (already sum/count·ncall); then optionally i32 chunk count, i32 length and the dataset name.
/// </summary>
internal sealed class ImportanceMatrix
{
    public const string DatasetsKey = "imatrix.datasets", ChunkCountKey = "imatrix.chunk_count", ChunkSizeKey = "imatrix.chunk_size";

    public required SortedDictionary<string, ImatrixEntry> Entries { get; init; }
    public List<string> Datasets { get; init; } = [];
    public int ChunkCount { get; init; }
    public int ChunkSize { get; init; }
    public bool IsLegacy { get; init; }

    /// <summary>Reads either format (GGUF when the file starts with the GGUF magic, as llama.cpp falls back to the
    /// legacy reader when gguf_init fails). Bad files are a clear <see cref="QuantizationException"/>.</summary>
    public static ImportanceMatrix Load(string path)
    {
        if (!File.Exists(path)) throw new QuantizationException($"imatrix file {path} does not exist");
        bool gguf;
        using (var f = File.OpenRead(path))
        {
            Span<byte> magic = stackalloc byte[4];
            gguf = f.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && BitConverter.ToUInt32(magic) == GgufFile.Magic;
        }
        try
        {
            return gguf ? LoadGguf(path) : LoadLegacy(path);
        }
        catch (GgufFormatException e)
        {
            throw new QuantizationException($"imatrix file {path}: {e.Message}", e);
        }
    }

    private static ImportanceMatrix LoadGguf(string path)
    {
        using var g = GgufFile.Open(path);
        if (g.Tensors.Count < 1) throw new QuantizationException($"imatrix file {path} has no data");
        // llama-quantize insists on the three metadata keys in a GGUF imatrix ("missing imatrix metadata").
        if (!g.Has(DatasetsKey) || !g.Has(ChunkCountKey) || !g.Has(ChunkSizeKey))
            throw new QuantizationException($"imatrix file {path} lacks its metadata ({DatasetsKey}, {ChunkCountKey}, {ChunkSizeKey}): not an imatrix file");
        var datasets = new List<string>();
        if (g.GetArray(DatasetsKey) is { ElementType: GgufValueType.String } a)
            foreach (var s in a.Items) datasets.Add((string)s!);
        var sums = new Dictionary<string, GgufTensorInfo>(StringComparer.Ordinal);
        var counts = new Dictionary<string, GgufTensorInfo>(StringComparer.Ordinal);
        foreach (var t in g.Tensors)
        {
            if (t.Name.EndsWith(".in_sum2", StringComparison.Ordinal)) sums[t.Name[..^8]] = t;
            else if (t.Name.EndsWith(".counts", StringComparison.Ordinal)) counts[t.Name[..^7]] = t;
        }
        var entries = new SortedDictionary<string, ImatrixEntry>(StringComparer.Ordinal);
        foreach (var name in sums.Keys.Union(counts.Keys))
        {
            if (!sums.TryGetValue(name, out var s) || !counts.TryGetValue(name, out var c))
                throw new QuantizationException($"imatrix file {path}: mismatched sums and counts for {FileText.Quote(name)}");
            if (s.Type != GgmlType.F32 || c.Type != GgmlType.F32)
                throw new QuantizationException($"imatrix file {path}: {FileText.Quote(name)} is not F32 data");
            var sumValues = ReadFloats(g, s);
            var countValues = ReadFloats(g, c);
            if (countValues.Length == 0 || sumValues.Length % countValues.Length != 0)
                throw new QuantizationException($"imatrix file {path}: {FileText.Quote(name)} has {sumValues.Length} sums for {countValues.Length} counts");
            // llama.cpp reads the float counts with lround.
            var n = countValues.Select(v => (long)Math.Round((double)v, MidpointRounding.AwayFromZero)).ToArray();
            entries[name] = new ImatrixEntry(sumValues, n);
        }
        return new ImportanceMatrix
        {
            Entries = entries,
            Datasets = datasets,
            ChunkCount = (int)(g.GetInteger(ChunkCountKey) ?? 0),
            ChunkSize = (int)(g.GetInteger(ChunkSizeKey) ?? 0),
        };
    }

    private static float[] ReadFloats(GgufFile g, GgufTensorInfo t) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(g.TensorBytes(t)).ToArray();

    private static ImportanceMatrix LoadLegacy(string path)
    {
        using var f = File.OpenRead(path);
        using var r = new BinaryReader(f, Encoding.UTF8);
        long length = f.Length;
        string Fail(string what) => throw new QuantizationException($"imatrix file {path} is neither GGUF nor a legacy imatrix: {what}");
        int ReadCount(string what, long itemBytes)
        {
            if (f.Position + 4 > length) Fail($"truncated at {what}");
            int n = r.ReadInt32();
            if (n < 0 || n * itemBytes > length - f.Position) Fail($"{what} {n} does not fit in the file");
            return n;
        }
        int nEntries = ReadCount("entry count", 12);
        if (nEntries < 1) Fail("no entries");
        var entries = new SortedDictionary<string, ImatrixEntry>(StringComparer.Ordinal);
        for (int i = 0; i < nEntries; i++)
        {
            int len = ReadCount("name length", 1);
            string name = Encoding.UTF8.GetString(r.ReadBytes(len));
            if (f.Position + 8 > length) Fail($"truncated in entry {i + 1}");
            int ncall = r.ReadInt32();
            int nval = ReadCount("value count", 4);
            if (nval < 1) Fail($"entry {i + 1} has no values");
            var sums = new float[nval];
            for (int j = 0; j < nval; j++) sums[j] = r.ReadSingle();
            entries[name] = new ImatrixEntry(sums, [ncall]);
        }
        int chunks = 0;
        var datasets = new List<string>();
        if (f.Position + 4 <= length)
        {
            chunks = r.ReadInt32();
            if (f.Position + 4 <= length)
            {
                int len = r.ReadInt32();
                if (len > 0 && len <= length - f.Position) datasets.Add(Encoding.UTF8.GetString(r.ReadBytes(len)));
            }
        }
        return new ImportanceMatrix { Entries = entries, Datasets = datasets, ChunkCount = chunks, IsLegacy = true };
    }

    /// <summary>The per-column weights llama-quantize hands to the quantizers (its load_imatrix): GGUF sums divided
    /// by each expert's count (all 1 for an expert that saw nothing), legacy sums divided by ncall.</summary>
    public float[] QuantWeights(ImatrixEntry e)
    {
        var w = new float[e.Sums.Length];
        if (!IsLegacy)
        {
            int ne0 = e.Columns;
            for (int j = 0; j < e.Counts.Length; j++)
            {
                float count = e.Counts[j];
                for (int i = 0; i < ne0; i++) w[j * ne0 + i] = count > 0f ? e.Sums[j * ne0 + i] / count : 1f;
            }
        }
        else
        {
            long ncall = e.Counts.Length == 0 ? 0 : e.Counts[0];
            for (int i = 0; i < w.Length; i++) w[i] = ncall > 0 ? e.Sums[i] / ncall : e.Sums[i];
        }
        return w;
    }

    /// <summary>llama-quantize's prepare_imatrix: the weights by tensor name, minus names containing any
    /// <paramref name="exclude"/> pattern, or only those containing an <paramref name="include"/> pattern; non-finite
    /// weights are an error as in llama_model_quantize.</summary>
    public Dictionary<string, float[]> SelectWeights(IReadOnlyList<string> include, IReadOnlyList<string> exclude)
    {
        if (include.Count > 0 && exclude.Count > 0)
            throw new QuantizationException("--include-weights and --exclude-weights cannot be used together");
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var (name, e) in Entries)
        {
            if (exclude.Any(p => name.Contains(p, StringComparison.Ordinal))) continue;
            if (include.Count > 0 && !include.Any(p => name.Contains(p, StringComparison.Ordinal))) continue;
            var w = QuantWeights(e);
            foreach (float v in w)
                if (!float.IsFinite(v)) throw new QuantizationException($"imatrix contains non-finite value {v} (entry {FileText.Quote(name)})");
            result[name] = w;
        }
        return result;
    }

    /// <summary>Writes llama-imatrix's GGUF format: general.type, the three imatrix keys, then per entry in name
    /// order NAME.in_sum2 [columns, experts] and NAME.counts [1, experts] (dimensions written as ggml counts them,
    /// trailing 1s dropped).</summary>
    public void Save(string path)
    {
        var w = new GgufWriter();
        w.Add("general.type", "imatrix");
        w.Add(DatasetsKey, new GgufArray(GgufValueType.String, Datasets.ToArray()));
        w.Add(ChunkCountKey, (uint)ChunkCount);
        w.Add(ChunkSizeKey, (uint)ChunkSize);
        foreach (var (name, e) in Entries)
        {
            if (e.Sums.Length == 0 || e.Counts.Length == 0) continue;
            w.AddTensor(name + ".in_sum2", Dims(e.Columns, e.Counts.Length), e.Sums);
            w.AddTensor(name + ".counts", Dims(1, e.Counts.Length), e.Counts.Select(c => (float)c).ToArray());
        }
        w.Write(path);
    }

    private static long[] Dims(long ne0, long ne1) => ne1 == 1 ? [ne0] : [ne0, ne1];
}
