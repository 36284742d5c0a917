using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using SharpInfer.Quantization;
using SharpInfer.Tensors;

namespace SharpInfer.Cli.Commands;

/// <summary><c>sharpinfer quantize IN.gguf OUT.gguf TYPE [threads]</c>: llama-quantize's command line and result (same
/// types, mixes and options, byte-identical files). Progress goes to stderr (a bar on a terminal, one line per tensor
/// elsewhere); the size summary goes to stdout.</summary>
internal static class QuantizeCommand
{
    public static Command Create(CliIo io)
    {
        var input = new Argument<string>("input") { Description = "GGUF model to quantize (F32, F16 or BF16; quantized with --allow-requantize)" };
        var output = new Argument<string>("output") { Description = "GGUF file to write (replaced only when complete)" };
        var type = new Argument<string>("type") { Description = "llama-quantize type: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K, IQ4_NL, F16, BF16, F32, COPY" };
        var threads = new Argument<int?>("threads") { Description = "Worker threads (default: all cores); the output does not depend on it", Arity = ArgumentArity.ZeroOrOne };
        var pure = new Option<bool>("--pure") { Description = "No mix: every quantizable tensor gets TYPE's own type" };
        var outputType = new Option<string?>("--output-tensor-type") { Description = "ggml type for output.weight (e.g. q8_0, f16)" };
        var embdType = new Option<string?>("--token-embedding-type") { Description = "ggml type for token_embd.weight" };
        var leaveOutput = new Option<bool>("--leave-output-tensor") { Description = "Keep output.weight as it is" };
        var requantize = new Option<bool>("--allow-requantize") { Description = "Accept an input that is already quantized (loses quality)" };
        var imatrix = new Option<string?>("--imatrix") { Description = "Importance matrix (llama-imatrix's GGUF or legacy .dat file, or sharpinfer imatrix's)" };
        var includeWeights = new Option<string[]>("--include-weights") { Description = "Use the imatrix only for tensors whose name contains this (repeatable)", AllowMultipleArgumentsPerToken = false };
        var excludeWeights = new Option<string[]>("--exclude-weights") { Description = "Do not use the imatrix for tensors whose name contains this (repeatable)", AllowMultipleArgumentsPerToken = false };
        var method = new Option<string>("--method") { Description = "rtn (plain rounding, llama-quantize's bytes), imatrix (importance-weighted, matrix computed from --calibration), awq (per-channel scales folded into the norms, searched on --calibration), gptq (GPTQ error feedback from --calibration)", DefaultValueFactory = _ => "rtn" };
        var calibration = new Option<string?>("--calibration") { Description = "Calibration text for --method imatrix|awq|gptq" };
        var calibrationCtx = new Option<int>("--calibration-ctx") { Description = "Tokens per calibration chunk", DefaultValueFactory = _ => 512 };
        var calibrationChunks = new Option<int?>("--calibration-chunks") { Description = "Use at most this many calibration chunks" };
        var cmd = new Command("quantize", "Quantize a GGUF model like llama-quantize (same types, same bytes)")
        {
            input, output, type, threads, pure, outputType, embdType, leaveOutput, requantize, imatrix, includeWeights, excludeWeights,
            method, calibration, calibrationCtx, calibrationChunks,
        };
        cmd.SetAction(r =>
        {
            string[] include = r.GetValue(includeWeights) ?? [], exclude = r.GetValue(excludeWeights) ?? [];
            string? imatrixPath = r.GetValue(imatrix);
            if (imatrixPath == null && (include.Length > 0 || exclude.Length > 0))
                throw new CliException("--include-weights/--exclude-weights need --imatrix");
            if (include.Length > 0 && exclude.Length > 0)
                throw new CliException("--include-weights and --exclude-weights cannot be used together");
            string typeName = r.GetValue(type)!;
            if (!QuantFileType.TryParse(typeName, out var fileType))
                throw new CliException($"unknown quantization type '{typeName}'; known: {string.Join(", ", QuantFileType.All.Select(t => t.Name))}");
            int nThreads = r.GetValue(threads) ?? Environment.ProcessorCount;
            if (nThreads < 1) throw new CliException($"threads must be at least 1, got {nThreads}");
            var quantMethod = ParseMethod(r.GetValue(method)!);
            string? calibrationPath = r.GetValue(calibration);
            if (quantMethod == QuantMethod.Rtn && calibrationPath != null)
                throw new CliException("--calibration is used by --method imatrix|awq|gptq; plain rounding (rtn) does not read it");
            if (quantMethod != QuantMethod.Rtn)
            {
                string name = quantMethod.ToString().ToLowerInvariant();
                if (calibrationPath == null) throw new CliException($"--method {name} needs calibration text: pass --calibration FILE");
                if (imatrixPath != null) throw new CliException($"--method {name} computes its importance matrix from --calibration; do not also pass --imatrix");
                if (Directory.Exists(calibrationPath)) throw new CliException($"{calibrationPath} is a directory, not a text file");
                if (!File.Exists(calibrationPath)) throw new CliException($"calibration text not found: {calibrationPath}");
            }
            var options = new QuantizeOptions(fileType, nThreads, r.GetValue(pure), r.GetValue(leaveOutput),
                ParseGgmlType(r.GetValue(outputType), "--output-tensor-type"), ParseGgmlType(r.GetValue(embdType), "--token-embedding-type"),
                r.GetValue(requantize), imatrixPath == null ? null : QuantImatrix.Load(imatrixPath, include, exclude));
            string inPath = ModelFileCheck.Ensure(r.GetValue(input)!);
            if (quantMethod != QuantMethod.Rtn)
                options = Calibrate(inPath, calibrationPath!, quantMethod, new ImatrixOptions(r.GetValue(calibrationCtx), r.GetValue(calibrationChunks), nThreads), options, io);
            return Run(inPath, r.GetValue(output)!, options, io);
        });
        return cmd;
    }

    private static QuantMethod ParseMethod(string name) => name.ToLowerInvariant() switch
    {
        "rtn" => QuantMethod.Rtn,
        "imatrix" => QuantMethod.Imatrix,
        "gptq" => QuantMethod.Gptq,
        "awq" => QuantMethod.Awq,
        _ => throw new CliException($"unknown --method '{name}'; known: rtn, imatrix, awq, gptq"),
    };

    /// <summary>Runs the input model over the calibration text and returns the options with what the method needs.</summary>
    private static QuantizeOptions Calibrate(string inPath, string textPath, QuantMethod method, ImatrixOptions o, QuantizeOptions options, CliIo io)
    {
        var clock = Stopwatch.StartNew();
        string text = File.ReadAllText(textPath);
        if (text.EndsWith('\n')) text = text[..^1];
        CalibrationResult result;
        using (var model = LoadProgress.LoadModel(inPath, io.Error))
            result = Calibration.Run(model, text, textPath, o, method, (i, n) => io.Error.WriteLine($"calibration: chunk {i}/{n}"));
        io.Error.WriteLine(string.Format(CultureInfo.InvariantCulture, "calibration: {0} matrix inputs in {1:F1} s", result.Imatrix.Weights.Count, clock.Elapsed.TotalSeconds));
        return options with { Imatrix = result.Imatrix, Hessians = result.Hessians, Method = method };
    }

    private static GgmlType? ParseGgmlType(string? name, string option)
    {
        if (name == null) return null;
        if (GgmlTypeInfo.TryParse(name, out var t) && Quantize.IsSupported(t)) return t;
        throw new CliException($"{option}: '{name}' is not a ggml type this program can write (e.g. q8_0, q6_K, q4_K, f16, bf16, f32)");
    }

    public static int Run(string inPath, string outPath, QuantizeOptions options, CliIo io)
    {
        var clock = Stopwatch.StartNew();
        io.Error.WriteLine($"quantizing {inPath} to {outPath} as {options.Type.Name} using {options.Threads} thread(s)");
        QuantizeResult result;
        if (ProgressDisplay.IsTerminal(io.Error))
        {
            result = ProgressDisplay.Run(ProgressDisplay.StandardError(), $"quantizing to {options.Type.Name}",
                report => ModelQuantizer.Run(inPath, outPath, options, p => report(p.TensorName == "" ? "done" : p.TensorName, p.Fraction)));
        }
        else
        {
            int lastTensor = -1;
            result = ModelQuantizer.Run(inPath, outPath, options, p =>
            {
                if (p.TensorIndex == lastTensor || p.TensorIndex >= p.TensorCount) return;
                lastTensor = p.TensorIndex;
                io.Error.WriteLine($"[{p.TensorIndex + 1,4}/{p.TensorCount,4}] {p.TensorName}");
            });
        }
        foreach (var f in result.Fallbacks) io.Error.WriteLine($"warning: {f}");
        foreach (var note in result.MethodNotes) io.Error.WriteLine(note);
        WriteSummary(io.Out, result, clock.Elapsed);
        return 0;
    }

    private static void WriteSummary(TextWriter o, QuantizeResult r, TimeSpan elapsed)
    {
        var c = CultureInfo.InvariantCulture;
        foreach (var t in r.Tensors)
        {
            string shape = "[" + string.Join(", ", t.Dims) + "]";
            string change = t.From == t.To ? GgmlTypeInfo.Name(t.To) : $"{GgmlTypeInfo.Name(t.From)} -> {GgmlTypeInfo.Name(t.To)}";
            o.WriteLine(string.Format(c, "{0,-40} {1,-24} {2,-16} {3,10:F3} MiB -> {4,10:F3} MiB", t.Name, shape, change, t.BytesBefore / 1048576.0, t.BytesAfter / 1048576.0));
        }
        double elements = Math.Max(1, r.Elements);
        o.WriteLine(string.Format(c, "model size  = {0,10:F2} MiB ({1:F2} BPW)", r.BytesBefore / 1048576.0, r.BytesBefore * 8.0 / elements));
        o.WriteLine(string.Format(c, "quant size  = {0,10:F2} MiB ({1:F2} BPW)", r.BytesAfter / 1048576.0, r.BytesAfter * 8.0 / elements));
        o.WriteLine(string.Format(c, "file type   = {0} ({1})", (int)r.FileType, r.FileType));
        o.WriteLine(string.Format(c, "time        = {0:F2} s", elapsed.TotalSeconds));
        if (r.Fallbacks.Count > 0) o.WriteLine($"warning: {r.Fallbacks.Count} of {r.Tensors.Count} tensor(s) required fallback quantization");
    }
}
