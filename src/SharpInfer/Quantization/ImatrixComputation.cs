using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Quantization;

/// <summary>What <c>sharpinfer imatrix</c> is asked for: llama-imatrix's -c, --chunks and threads.</summary>
internal sealed record ImatrixOptions(int Context = 512, int? MaxChunks = null, int Threads = 1);

/// <summary>
/// <c>sharpinfer imatrix</c>: runs the model over a calibration text as llama-imatrix does and collects the importance
/// matrix. The text is tokenized with the model's special tokens (BOS when the vocabulary adds one) and cut into chunks
/// of <c>Context</c> tokens (at least two are needed, as llama-imatrix requires; the remainder is dropped); each
/// chunk starts from an empty cache with its first token replaced by BOS, and is evaluated in micro-batches of at most
/// 512 tokens (llama.cpp's default n_ubatch). Float weights give exact activations; quantized weights use the same
/// kernels as inference.
/// </summary>
internal static class ImatrixComputation
{
    private const int BlockSize = 16, MicroBatch = 512;

    public static ImportanceMatrix Run(Model model, string text, string datasetName, ImatrixOptions o, Action<int, int>? onChunk = null)
    {
        var collector = new ImatrixCollector();
        Calibrate(model, text, o, collector, onChunk);
        return collector.ToImportanceMatrix([datasetName], o.Context);
    }

    /// <summary>Runs the model over the calibration chunks with <paramref name="observer"/> seeing every weight
    /// product's input (the imatrix collector; GPTQ's Hessians too).</summary>
    public static void Calibrate(Model model, string text, ImatrixOptions o, IActivationObserver observer, Action<int, int>? onChunk = null)
    {
        int ctx = o.Context;
        if (ctx < ImatrixCollector.MinDenseRows)
            throw new InvalidRequestException($"the context (-c) must be at least {ImatrixCollector.MinDenseRows} tokens (llama-imatrix ignores smaller batches), got {ctx}", "ctx-size");
        if (o.Threads < 1) throw new InvalidRequestException("--threads must be at least 1", "threads");
        var tokens = model.Tokenizer.Encode(text, addSpecial: true, parseSpecial: false);
        if (tokens.Length < 2 * ctx)
            throw new InvalidRequestException($"the text has {tokens.Length} tokens; a context of {ctx} needs at least {2 * ctx} (use a smaller -c or a longer text)", "file");
        int chunks = tokens.Length / ctx;
        if (o.MaxChunks is { } m && m > 0) chunks = Math.Min(chunks, m);
        int bos = model.Vocabulary.BosId;
        bool addBos = model.Vocabulary.AddBos && bos >= 0;
        int pass = Math.Min(ctx, MicroBatch);

        using var runner = new ModelRunner(model, o.Threads, pass, BlockSize, BlockTable.BlocksFor(ctx, BlockSize), KvDataType.F16, MatMulPrecision.Fast);   // llama.cpp's default cache type
        runner.Transformer.ActivationObserver = observer;
        var batch = new ForwardBatch(pass, 1);
        var logits = new float[model.Config.VocabSize];
        try
        {
            for (int c = 0; c < chunks; c++)
            {
                var table = new BlockTable();
                if (!runner.Blocks.TryGrow(table, ctx)) throw new InvalidOperationException("imatrix KV cache too small");
                try
                {
                    for (int p0 = 0; p0 < ctx; p0 += pass)
                    {
                        int len = Math.Min(pass, ctx - p0);
                        batch.Clear();
                        int si = batch.AddSequence(table);
                        for (int k = 0; k < len; k++)
                        {
                            int pos = p0 + k;
                            int token = pos == 0 && addBos ? bos : tokens[c * ctx + pos];
                            batch.AddToken(si, token, pos, wantLogits: k == len - 1);
                        }
                        runner.Forward(batch, logits);
                    }
                }
                finally
                {
                    runner.Blocks.Free(table);
                }
                onChunk?.Invoke(c + 1, chunks);
            }
        }
        finally
        {
            runner.Transformer.ActivationObserver = null;
        }
    }
}
