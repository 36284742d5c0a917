using System.CommandLine;
using System.Globalization;
using SharpInfer.Evaluation;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Cli.Commands;

/// <summary>
/// <c>sharpinfer perplexity -m M -f text.txt [-c 512]</c>: perplexity of a text, measured and printed as
/// llama-perplexity does (docs/perplexity.md). <c>--kl-divergence-base F</c> alone writes the run's
/// log-probabilities to F (llama-perplexity's layout); with <c>--kl-divergence</c> it reads F instead and prints the
/// KL-divergence, Δp and same-top statistics of this model (or cache type) against that base run.
/// </summary>
internal static class PerplexityCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "GGUF model file" };
        var file = new Option<string?>("--file", "-f") { Description = "Text file to evaluate (one trailing newline is dropped, as llama.cpp does)" };
        var ctx = new Option<int>("--ctx-size", "-c") { Description = "Tokens per chunk; the second half of each is scored", DefaultValueFactory = _ => 512 };
        var batch = new Option<int?>("--batch-size", "-b") { Description = "Tokens per forward pass (default: one chunk; a multiple of -c evaluates several chunks per pass)" };
        var chunks = new Option<int?>("--chunks") { Description = "Evaluate at most this many chunks" };
        var threads = new Option<int>("--threads", "-t") { Description = "Threads", DefaultValueFactory = _ => ComputePool.DefaultThreads };
        var cacheType = new KvCacheTypeOptions();
        var exact = new Option<bool>("--exact") { Description = "Float activations for quantized weights (slower, exact)" };
        var klBase = new Option<string?>("--kl-divergence-base") { Description = "Log-probability file: written by a run without --kl-divergence, read by one with it" };
        var kl = new Option<bool>("--kl-divergence") { Description = "Compare against --kl-divergence-base (its tokens and -c are used; -f is not needed)" };
        var cmd = new Command("perplexity", "Perplexity and KL divergence of a model on a text, like llama-perplexity")
        {
            model, file, ctx, batch, chunks, threads, cacheType.Both, cacheType.Keys, cacheType.Values, exact, klBase, kl,
        };
        cmd.SetAction(r => Run(new Args
        {
            ModelPath = ModelFileCheck.Resolve(r.GetValue(model)),
            TextPath = r.GetValue(file),
            BasePath = r.GetValue(klBase),
            Compare = r.GetValue(kl),
            Options = new PerplexityOptions
            {
                Context = r.GetValue(ctx),
                BatchSize = r.GetValue(batch),
                MaxChunks = r.GetValue(chunks),
                Threads = r.GetValue(threads),
                KvType = cacheType.Get(r).Keys,
                KvValueType = cacheType.Get(r).Values,
                Precision = r.GetValue(exact) ? MatMulPrecision.Exact : MatMulPrecision.Fast,
            },
        }, Console.Out, Console.Error));
        return cmd;
    }

    public sealed record Args
    {
        public required string ModelPath { get; init; }
        public string? TextPath { get; init; }
        public string? BasePath { get; init; }
        public bool Compare { get; init; }
        public PerplexityOptions Options { get; init; } = new();
    }

    public static int Run(Args a, TextWriter stdout, TextWriter stderr)
    {
        if (a.Compare && a.BasePath == null)
            throw new InvalidRequestException("--kl-divergence needs --kl-divergence-base FILE (made by an earlier run without --kl-divergence)", "kl-divergence-base");
        if (!a.Compare && a.TextPath == null) throw new InvalidRequestException("give the text to evaluate with -f FILE", "file");
        if (a.Options.Threads < 1) throw new InvalidRequestException("--threads must be at least 1", "threads");
        string? text = null;
        if (!a.Compare)
        {
            text = ReadText(a.TextPath!);
        }
        using var model = LoadProgress.LoadModel(a.ModelPath, stderr, a.Options.Precision);
        bool bar = ProgressDisplay.IsTerminal(stderr);
        PerplexityResult Evaluate(Action<int, int, double>? onChunk)
        {
            if (a.Compare)
            {
                using var input = OpenBase(a.BasePath!);
                return Perplexity.CompareWithBase(model, input, a.BasePath!, a.Options, onChunk);
            }
            if (a.BasePath == null) return Perplexity.Run(model, text!, a.Options, null, onChunk);
            using var output = new BufferedStream(File.Create(a.BasePath), 1 << 20);
            return Perplexity.Run(model, text!, a.Options, output, onChunk);
        }
        PerplexityResult result;
        if (bar)
            result = ProgressDisplay.Run(ProgressDisplay.StandardError(), "perplexity", report =>
                Evaluate((i, n, ppl) => report($"perplexity: chunk {i}/{n}, PPL {ppl:F4}", (double)i / n)));
        else
        {
            // llama-perplexity's running estimate: "[1]3.7843,[2]4.1986,..." on one line
            result = Evaluate((i, n, ppl) =>
            {
                stderr.Write(string.Create(CultureInfo.InvariantCulture, $"[{i}]{ppl:F4},"));
                if (i == n) stderr.WriteLine();
                stderr.Flush();
            });
        }
        Print(result, stdout);
        return 0;
    }

    private static string ReadText(string path)
    {
        if (Directory.Exists(path)) throw new InvalidRequestException($"{path} is a directory, not a text file", "file");
        if (!File.Exists(path)) throw new InvalidRequestException($"text file not found: {path}", "file");
        var text = File.ReadAllText(path);
        return text.EndsWith('\n') ? text[..^1] : text;
    }

    private static FileStream OpenBase(string path)
    {
        if (!File.Exists(path)) throw new InvalidRequestException($"--kl-divergence-base file not found: {path}", "kl-divergence-base");
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
    }

    private static void Print(PerplexityResult r, TextWriter o)
    {
        var ci = CultureInfo.InvariantCulture;
        o.WriteLine(string.Create(ci, $"{r.Tokens} tokens, {r.Chunks} chunks of {r.Context}, {r.Scored} scored"));
        o.WriteLine(string.Create(ci, $"Final estimate: PPL = {r.Ppl:F4} +/- {r.Error:F5}"));
        if (r.Kl is not { } k) return;
        o.WriteLine();
        o.WriteLine("====== Perplexity statistics ======");
        o.WriteLine(string.Create(ci, $"Mean PPL(Q)                   : {k.Ppl.Value,10:F6} ± {k.Ppl.Error,10:F6}"));
        o.WriteLine(string.Create(ci, $"Mean PPL(base)                : {k.PplBase.Value,10:F6} ± {k.PplBase.Error,10:F6}"));
        o.WriteLine(string.Create(ci, $"Mean ln(PPL(Q)/PPL(base))     : {k.LogPplRatio.Value,10:F6} ± {k.LogPplRatio.Error,10:F6}"));
        o.WriteLine(string.Create(ci, $"Mean PPL(Q)/PPL(base)         : {Math.Exp(k.LogPplRatio.Value),10:F6} ± {Math.Exp(k.LogPplRatio.Value) * k.LogPplRatio.Error,10:F6}"));
        o.WriteLine();
        o.WriteLine("====== KL divergence statistics ======");
        o.WriteLine(string.Create(ci, $"Mean    KLD: {k.MeanKld.Value,10:F6} ± {k.MeanKld.Error,10:F6}"));
        string[] names = ["Maximum", "99.9%  ", "99.0%  ", "95.0%  ", "90.0%  ", "Median ", "10.0%  ", " 5.0%  ", " 1.0%  ", " 0.1%  ", "Minimum"];
        double[] at = [1, 0.999, 0.99, 0.95, 0.9, 0.5, 0.1, 0.05, 0.01, 0.001, 0];
        var kld = k.KldPercentiles(at);
        for (int i = 0; i < at.Length; i++) o.WriteLine(string.Create(ci, $"{names[i]} KLD: {kld[i],10:F6}"));
        o.WriteLine();
        o.WriteLine("====== Token probability statistics ======");
        o.WriteLine(string.Create(ci, $"Mean    Δp: {100 * k.MeanPDiff.Value,6:F3} ± {100 * k.MeanPDiff.Error,5:F3} %"));
        var dp = k.PDiffPercentiles(1, 0.99, 0.95, 0.5, 0.05, 0.01, 0);
        string[] dpNames = ["Maximum", "99.0%  ", "95.0%  ", "Median ", " 5.0%  ", " 1.0%  ", "Minimum"];
        for (int i = 0; i < dp.Length; i++) o.WriteLine(string.Create(ci, $"{dpNames[i]} Δp: {100 * dp[i],6:F3}%"));
        o.WriteLine(string.Create(ci, $"RMS Δp    : {100 * k.RmsPDiff.Value,6:F3} ± {100 * k.RmsPDiff.Error,5:F3} %"));
        o.WriteLine(string.Create(ci, $"Same top p: {100 * k.SameTopRate.Value,6:F3} ± {100 * k.SameTopRate.Error,5:F3} %"));
    }
}
