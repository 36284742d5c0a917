using System.CommandLine;
using SharpInfer.Quantization;
using SharpInfer.Runtime;

namespace SharpInfer.Cli.Commands;

/// <summary><c>sharpinfer imatrix -m MODEL -f TEXT [-o imatrix.gguf] [-c 512] [--chunks N]</c>: llama-imatrix's importance
/// matrix (sums of squared inputs of every blk.* weight product, per expert for MoE), written in its GGUF format for
/// <c>quantize --imatrix</c> (ours or llama-quantize).</summary>
internal static class ImatrixCommand
{
    public static Command Create(CliIo io)
    {
        var model = new Option<string?>("--model", "-m") { Description = "GGUF model file" };
        var file = new Option<string?>("--file", "-f") { Description = "Calibration text (one trailing newline is dropped, as llama.cpp does)" };
        var output = new Option<string>("--output", "-o") { Description = "Imatrix file to write (GGUF)", DefaultValueFactory = _ => "imatrix.gguf" };
        var ctx = new Option<int>("--ctx-size", "-c") { Description = "Tokens per chunk", DefaultValueFactory = _ => 512 };
        var chunks = new Option<int?>("--chunks") { Description = "Process at most this many chunks" };
        var threads = new Option<int>("--threads", "-t") { Description = "Threads", DefaultValueFactory = _ => ComputePool.DefaultThreads };
        var cmd = new Command("imatrix", "Compute an importance matrix like llama-imatrix (its GGUF format)") { model, file, output, ctx, chunks, threads };
        cmd.SetAction(r =>
        {
            string modelPath = ModelFileCheck.Resolve(r.GetValue(model));
            string textPath = r.GetValue(file) ?? throw new CliException("give the calibration text with -f FILE");
            if (Directory.Exists(textPath)) throw new CliException($"{textPath} is a directory, not a text file");
            if (!File.Exists(textPath)) throw new CliException($"text file not found: {textPath}");
            string outPath = r.GetValue(output)!;
            string? dir = Path.GetDirectoryName(Path.GetFullPath(outPath));
            if (dir != null && !Directory.Exists(dir)) throw new CliException($"cannot write {outPath}: directory {dir} does not exist");
            string text = File.ReadAllText(textPath);
            if (text.EndsWith('\n')) text = text[..^1];
            using var m = LoadProgress.LoadModel(modelPath, io.Error);
            var options = new ImatrixOptions(r.GetValue(ctx), r.GetValue(chunks), r.GetValue(threads));
            var imatrix = ImatrixComputation.Run(m, text, textPath, options, (i, n) => io.Error.WriteLine($"imatrix: chunk {i}/{n}"));
            // written beside the destination, then renamed: a failed run leaves no partial file
            string temp = outPath + $".{Guid.NewGuid():N}.tmp";
            try
            {
                imatrix.Save(temp);
                File.Move(temp, outPath, overwrite: true);
            }
            catch
            {
                File.Delete(temp);
                throw;
            }
            io.Out.WriteLine($"stored {imatrix.Entries.Count} entries from {imatrix.ChunkCount} chunks of {imatrix.ChunkSize} tokens in {outPath}");
            return 0;
        });
        return cmd;
    }
}
