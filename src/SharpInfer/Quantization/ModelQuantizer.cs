using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using SharpInfer.Gguf;
using SharpInfer.Tensors;

namespace SharpInfer.Quantization;

/// <summary>Progress of a quantization: the tensor being written and the fraction of the input done.</summary>
internal readonly record struct QuantizeProgress(int TensorIndex, int TensorCount, string TensorName, double Fraction);

/// <summary>One tensor as written, for the size summary.</summary>
internal sealed record QuantizedTensor(string Name, long[] Dims, GgmlType From, GgmlType To, long BytesBefore, long BytesAfter);

/// <summary>The outcome: what each tensor became and the sizes before and after (tensor data only, like llama-quantize's
/// summary).</summary>
internal sealed record QuantizeResult(LlamaFileType FileType, IReadOnlyList<QuantizedTensor> Tensors, IReadOnlyList<string> Fallbacks)
{
    /// <summary>What --method did: which tensors GPTQ rounded, the α AWQ chose per input.</summary>
    public IReadOnlyList<string> MethodNotes { get; init; } = [];

    public long BytesBefore => Tensors.Sum(t => t.BytesBefore);
    public long BytesAfter => Tensors.Sum(t => t.BytesAfter);
    public long Elements => Tensors.Sum(t => t.Dims.Aggregate(1L, (a, b) => a * b));
}

/// <summary>
/// <c>sharpinfer quantize</c>: turns a GGUF model into one whose tensors have the types of a llama-quantize mix, with the
/// same bytes llama-quantize writes. The input stays memory-mapped; the output is streamed (header first, then each
/// tensor in batches of rows, never the whole file in memory) into a temporary file beside the destination that is
/// renamed over it only when complete, so a failure leaves no partial output. Rows are quantized on several threads;
/// each row's bytes depend only on that row, so the file does not depend on the thread count.
/// </summary>
internal static class ModelQuantizer
{
    /// <summary>Output bytes per batch of rows: large enough to keep the threads busy, small enough to stay out of the
    /// way of the page cache.</summary>
    private const int BatchBytes = 4 << 20;

    public static QuantizeResult Run(string inputPath, string outputPath, QuantizeOptions options, Action<QuantizeProgress>? progress = null)
    {
        if (options.Threads < 1) throw new QuantizationException($"threads must be at least 1, got {options.Threads}");
        string fullIn = Path.GetFullPath(inputPath), fullOut = Path.GetFullPath(outputPath);
        if (string.Equals(fullIn, fullOut, OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal))
            throw new QuantizationException($"the output {outputPath} is the input file; write to another path");
        if (Directory.Exists(fullOut)) throw new QuantizationException($"the output {outputPath} is a directory");

        using var input = GgufFile.Open(inputPath);
        var plan = QuantizationPlan.Create(input, options);

        string dir = Path.GetDirectoryName(fullOut)!;
        if (!Directory.Exists(dir)) throw new QuantizationException($"cannot write {outputPath}: directory {dir} does not exist");
        string temp = Path.Combine(dir, $".{Path.GetFileName(fullOut)}.{Guid.NewGuid():N}.tmp");
        FileStream stream;
        try
        {
            stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QuantizationException($"cannot write {outputPath}: {e.Message}", e);
        }
        try
        {
            List<QuantizedTensor> done;
            using (stream)
            {
                done = Write(input, plan, stream, options.Threads, progress);
            }
            File.Move(temp, fullOut, overwrite: true);
            return new QuantizeResult(plan.FileType, done, plan.Fallbacks) { MethodNotes = MethodNotes(plan, options) };
        }
        catch (Exception e)
        {
            TryDelete(temp);
            if (e is IOException or UnauthorizedAccessException)
                throw new QuantizationException($"writing {outputPath} failed: {e.Message}", e);
            throw;
        }
    }

    private static List<string> MethodNotes(QuantizationPlan plan, QuantizeOptions options)
    {
        var notes = new List<string>();
        if (options.Method == QuantMethod.Gptq)
        {
            var converted = plan.Tensors.Where(t => t.Converts).ToList();
            var others = converted.Where(t => t.Hessian == null).Select(t => $"{t.Source.Name} ({GgmlTypeInfo.Name(t.Output.Type)}, {(t.Weights != null ? "imatrix" : "rtn")})");
            notes.Add($"gptq: {converted.Count(t => t.Hessian != null)} of {converted.Count} converted tensors; the others: {string.Join(", ", others)}");
        }
        if (options.Method == QuantMethod.Awq)
            notes.Add($"awq: {plan.AwqAlphas.Count} norm inputs scaled ({string.Join("; ", plan.AwqAlphas)})");
        return notes;
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>Writes the planned file to <paramref name="stream"/>.</summary>
    public static List<QuantizedTensor> Write(GgufFile input, QuantizationPlan plan, Stream stream, int threads, Action<QuantizeProgress>? progress = null)
    {
        var writer = new GgufStreamWriter(stream, plan.Metadata, plan.Tensors.Select(t => t.Output).ToList(), plan.Alignment);
        writer.WriteHeader();
        long totalIn = Math.Max(1, plan.Tensors.Sum(t => t.Source.ByteSize)), doneIn = 0;
        var results = new List<QuantizedTensor>(plan.Tensors.Count);
        var buffer = Array.Empty<byte>();
        var factors = new Gptq.GptqFactors(plan.Tensors.Where(t => t.Hessian != null).Select(t => t.Hessian!));
        for (int i = 0; i < plan.Tensors.Count; i++)
        {
            var t = plan.Tensors[i];
            int index = i;
            long before = doneIn;
            void Report(double fraction) =>
                progress?.Invoke(new QuantizeProgress(index, plan.Tensors.Count, t.Source.Name, (before + fraction * t.Source.ByteSize) / totalIn));
            Report(0);
            if (t.Hessian != null) ConvertGptq(input, t, factors.Take(t.Hessian, threads), writer, threads);
            else if (t.Converts || t.ColumnScale != null) Convert(input, t, writer, threads, ref buffer, Report);
            else Copy(input, t.Source, writer);
            doneIn += t.Source.ByteSize;
            results.Add(new QuantizedTensor(t.Source.Name, t.Output.Dims, t.Source.Type, t.Output.Type, t.Source.ByteSize, t.Output.ByteSize));
        }
        writer.Complete();
        progress?.Invoke(new QuantizeProgress(plan.Tensors.Count, plan.Tensors.Count, "", 1.0));
        return results;
    }

    private static unsafe void Copy(GgufFile input, GgufTensorInfo t, GgufStreamWriter writer)
    {
        byte* p = input.TensorData(t);
        const int Chunk = 16 << 20;
        for (long off = 0; off < t.ByteSize; off += Chunk)
        {
            int n = (int)Math.Min(Chunk, t.ByteSize - off);
            var bytes = new ReadOnlySpan<byte>(p + off, n);
            if (t.Type == GgmlType.F32) CheckFinite(MemoryMarshal.Cast<byte, float>(bytes), t.Name, off / 4, t.Dims[0]);
            writer.WriteTensorData(bytes);
        }
    }

    private static unsafe void Convert(GgufFile input, PlannedTensor t, GgufStreamWriter writer, int threads, ref byte[] buffer, Action<double> report)
    {
        var src = t.Source;
        var to = t.Output.Type;
        int n = (int)src.Dims[0];
        long rows = src.Rows;
        int inRow = (int)GgmlTypeInfo.RowSize(src.Type, n), outRow = (int)GgmlTypeInfo.RowSize(to, n);
        int batchRows = (int)Math.Clamp(BatchBytes / Math.Max(1, outRow), 1, Math.Max(1, rows));
        if (buffer.Length < (long)batchRows * outRow) buffer = new byte[(long)batchRows * outRow];
        nint basePtr = (nint)input.TensorData(src);
        var output = buffer;
        // With an importance matrix each expert (ne[2] slice) has its own columns' weights.
        var weights = t.Weights;
        var columnScale = t.ColumnScale;
        bool needScratch = src.Type != GgmlType.F32 || columnScale != null;
        long rowsPerExpert = src.Dims.Length > 1 ? src.Dims[1] : 1;
        for (long r0 = 0; r0 < rows; r0 += batchRows)
        {
            int count = (int)Math.Min(batchRows, rows - r0);
            long first = r0;
            void Rows(int from, int to2, float[] scratch)
            {
                for (int i = from; i < to2; i++)
                {
                    long r = first + i;
                    var bytes = new ReadOnlySpan<byte>((byte*)basePtr + r * inRow, inRow);
                    ReadOnlySpan<float> x;
                    if (src.Type == GgmlType.F32) x = MemoryMarshal.Cast<byte, float>(bytes);
                    else
                    {
                        Dequantize.Row(src.Type, bytes, scratch);
                        x = scratch;
                    }
                    CheckFinite(x, src.Name, r * n, n);
                    if (columnScale != null)
                    {
                        // AWQ's fold: the norm gets 1/s, the matrices reading it W·diag(s) (exact before rounding).
                        for (int j = 0; j < n; j++) scratch[j] = x[j] * columnScale[j];
                        x = scratch;
                    }
                    if (weights == null) Quantize.Row(to, x, output.AsSpan(i * outRow, outRow));
                    else WeightedQuantize.Row(to, x, weights.AsSpan((int)(r / rowsPerExpert * n), n), output.AsSpan(i * outRow, outRow));
                }
            }
            if (threads <= 1 || count == 1) Rows(0, count, needScratch ? new float[n] : Array.Empty<float>());
            else
            {
                int chunk = Math.Max(1, count / (threads * 4));
                Parallel.ForEach(Partitioner.Create(0, count, chunk), new ParallelOptions { MaxDegreeOfParallelism = threads },
                    () => needScratch ? new float[n] : Array.Empty<float>(),
                    (range, _, scratch) => { Rows(range.Item1, range.Item2, scratch); return scratch; },
                    _ => { });
            }
            writer.WriteTensorData(output.AsSpan(0, count * outRow));
            report((double)(r0 + count) / rows);
        }
    }

    /// <summary>GPTQ needs the whole matrix at once: its rows are read (decoded if need be), rounded with error feedback
    /// against the input's inverse-Hessian factor and written in one piece.</summary>
    private static unsafe void ConvertGptq(GgufFile input, PlannedTensor t, Gptq.GptqFactors.Factor f, GgufStreamWriter writer, int threads)
    {
        var src = t.Source;
        int n = (int)src.Dims[0];
        int rows = (int)src.Rows;
        int inRow = (int)GgmlTypeInfo.RowSize(src.Type, n);
        var w = new float[(long)rows * n];
        byte* basePtr = input.TensorData(src);
        for (int r = 0; r < rows; r++)
        {
            var bytes = new ReadOnlySpan<byte>(basePtr + (long)r * inRow, inRow);
            var x = w.AsSpan(r * n, n);
            if (src.Type == GgmlType.F32) MemoryMarshal.Cast<byte, float>(bytes).CopyTo(x);
            else Dequantize.Row(src.Type, bytes, x);
            CheckFinite(x, src.Name, (long)r * n, n);
        }
        var output = new byte[t.Output.ByteSize];
        Gptq.GptqQuantizer.Quantize(t.Output.Type, w, rows, n, f.U, WeightedQuantize.UsesWeights(t.Output.Type) ? f.Importance : null,
            f.Dead, output, threads);
        writer.WriteTensorData(output);
    }

    /// <summary>llama.cpp's loader rejects tensors holding NaN or infinity (they would poison every block scale).</summary>
    private static void CheckFinite(ReadOnlySpan<float> x, string name, long firstElement, long rowLength)
    {
        for (int i = 0; i < x.Length; i++)
            if (!float.IsFinite(x[i]))
                throw new QuantizationException($"tensor {FileText.Quote(name)} has invalid data: {x[i]} in row {(firstElement + i) / Math.Max(1, rowLength)}");
    }
}
