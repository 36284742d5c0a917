using SharpInfer.Engine;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Evaluation;

internal sealed record PerplexityOptions
{
    /// <summary>Tokens per chunk (llama-perplexity's <c>-c</c>); the second half of each chunk is scored.</summary>
    public int Context { get; init; } = 512;
    /// <summary>Tokens per forward pass; a multiple of <see cref="Context"/> evaluates several chunks per pass
    /// (results are identical either way: the forward pass is batch-invariant). Default: one chunk.</summary>
    public int? BatchSize { get; init; }
    /// <summary>Evaluate at most this many chunks (llama-perplexity's <c>--chunks</c>).</summary>
    public int? MaxChunks { get; init; }
    public int Threads { get; init; } = ComputePool.DefaultThreads;
    public KvDataType KvType { get; init; } = KvDataType.F16;
    /// <summary>Value cache type; null: as keys.</summary>
    public KvDataType? KvValueType { get; init; }
    public MatMulPrecision Precision { get; init; } = MatMulPrecision.Fast;
}

/// <param name="Ppl">exp of the mean negative log-likelihood of the scored tokens.</param>
/// <param name="Error">Its standard error (llama-perplexity's "±").</param>
/// <param name="RunningPpl">The estimate after each chunk (llama-perplexity's "[i]x.xxxx," line).</param>
/// <param name="Kl">Set when the run was compared against a base file.</param>
internal sealed record PerplexityResult(double Ppl, double Error, int Context, int Tokens, int Chunks, long Scored, double[] RunningPpl, KlDivergenceStats? Kl);

/// <summary>
/// Perplexity the way llama-perplexity measures it, so the numbers compare across engines: tokenize the whole text
/// (with BOS when the vocabulary adds one), cut it into non-overlapping chunks of <c>n_ctx</c> tokens (the tail that
/// does not fill a chunk is dropped), put BOS in each chunk's first slot, evaluate each chunk from an empty cache and
/// score only its second half (positions n_ctx/2 … n_ctx−2 predicting the next token), so every scored token has at
/// least n_ctx/2 tokens of context. Optionally writes the log-probabilities as a KL-divergence base file, or reads
/// one and compares (then the tokens and n_ctx come from that file). Drives the <see cref="ModelRunner"/> directly:
/// fixed passes, no sampling.
/// </summary>
internal static class Perplexity
{
    private const int BlockSize = 16;
    private const long MaxLogitBytes = 512L << 20;

    /// <summary>Tokenizes <paramref name="text"/> as llama-perplexity does and evaluates it.</summary>
    public static PerplexityResult Run(Model model, string text, PerplexityOptions options, Stream? saveBase = null,
                                       Action<int, int, double>? onChunk = null)
    {
        var tokens = model.Tokenizer.Encode(text, addSpecial: true, parseSpecial: false);
        int ctx = options.Context;
        if (ctx < 4) throw new InvalidRequestException($"the context (-c) must be at least 4 tokens, got {ctx}", "ctx-size");
        if (tokens.Length < 2 * ctx)
            throw new InvalidRequestException($"the text has {tokens.Length} tokens; perplexity with a context of {ctx} needs at least {2 * ctx} (use a smaller -c or a longer text)", "file");
        int chunks = tokens.Length / ctx;
        if (options.MaxChunks is { } m && m > 0) chunks = Math.Min(chunks, m);
        if (saveBase != null) LogProbFile.WriteHeader(saveBase, ctx, model.Config.VocabSize, chunks, tokens);
        return Evaluate(model, tokens, ctx, chunks, options, saveBase, null, null, onChunk);
    }

    /// <summary>Evaluates the tokens stored in a base file and compares each scored position with it
    /// (llama-perplexity's <c>--kl-divergence</c>).</summary>
    public static PerplexityResult CompareWithBase(Model model, Stream baseFile, string basePath, PerplexityOptions options,
                                                   Action<int, int, double>? onChunk = null)
    {
        var (ctx, vocab, chunks, tokens) = LogProbFile.ReadHeader(baseFile, basePath);
        if (vocab != model.Config.VocabSize)
            throw new InvalidRequestException($"{basePath} was made with a vocabulary of {vocab} tokens, this model has {model.Config.VocabSize}", "kl-divergence-base");
        if (options.MaxChunks is { } m && m > 0) chunks = Math.Min(chunks, m);
        foreach (int t in tokens)
            if ((uint)t >= (uint)vocab) throw new InvalidDataException($"{basePath}: token id {t} is outside the vocabulary");
        return Evaluate(model, tokens, ctx, chunks, options, null, baseFile, new KlDivergenceStats(), onChunk);
    }

    private static PerplexityResult Evaluate(Model model, int[] tokens, int ctx, int chunks, PerplexityOptions o, Stream? save,
                                             Stream? compare, KlDivergenceStats? kl, Action<int, int, double>? onChunk)
    {
        int V = model.Config.VocabSize, first = ctx / 2, scored = ctx - 1 - first;
        int ubatch = Math.Max(1, o.BatchSize ?? ctx);
        if (ubatch > ctx && ubatch % ctx != 0)
            throw new InvalidRequestException($"the batch size ({ubatch}) must be below the context ({ctx}) or a multiple of it", "batch-size");
        // several chunks per pass when the batch holds them, as long as their logits fit the buffer's budget
        int perPass = Math.Max(1, (int)Math.Min(ubatch / ctx, MaxLogitBytes / (4L * V * scored)));
        int passTokens = Math.Min(ubatch, ctx);
        int bos = model.Vocabulary.BosId;
        bool addBos = model.Vocabulary.AddBos && bos >= 0;
        var row = compare != null || save != null ? new ushort[LogProbFile.RowLength(V)] : null;
        var rowBytes = row == null ? null : new byte[row.Length * 2];
        var allLogits = new float[(long)perPass * scored * V];   // a chunk's scored rows gathered over its passes

        int blocksPerChunk = BlockTable.BlocksFor(ctx, BlockSize);
        using var runner = new ModelRunner(model, o.Threads, perPass * passTokens, BlockSize, perPass * blocksPerChunk, o.KvType, o.Precision,
                                      kvValueType: o.KvValueType);
        var batch = new ForwardBatch(perPass * passTokens, perPass);
        double nll = 0, nll2 = 0;
        long count = 0;
        var running = new double[chunks];
        for (int c0 = 0; c0 < chunks; c0 += perPass)
        {
            int n = Math.Min(perPass, chunks - c0);
            var tables = new BlockTable[n];
            for (int s = 0; s < n; s++)
            {
                tables[s] = new BlockTable();
                if (!runner.Blocks.TryGrow(tables[s], ctx)) throw new InvalidOperationException("perplexity KV cache too small");
            }
            try
            {
                int gathered = 0;   // scored rows copied into allLogits, chunk-major
                for (int p0 = 0; p0 < ctx; p0 += passTokens)
                {
                    int len = Math.Min(passTokens, ctx - p0);
                    batch.Clear();
                    for (int s = 0; s < n; s++)
                    {
                        int si = batch.AddSequence(tables[s]);
                        int start = (c0 + s) * ctx;
                        for (int k = 0; k < len; k++)
                        {
                            int pos = p0 + k;
                            int token = pos == 0 && addBos ? bos : tokens[start + pos];
                            batch.AddToken(si, token, pos, wantLogits: pos >= first && pos < ctx - 1);
                        }
                    }
                    // rows come in batch order, chunk by chunk: with several chunks per pass each chunk is one pass
                    // (its `scored` rows follow the previous chunk's); a chunk over several passes appends its rows
                    runner.Forward(batch, allLogits.AsSpan((int)((long)gathered * V)));
                    gathered += batch.LogitCount;
                }
                for (int s = 0; s < n; s++)
                {
                    int start = (c0 + s) * ctx + first;
                    for (int i = 0; i < scored; i++)
                    {
                        var l = allLogits.AsSpan((int)(((long)s * scored + i) * V), V);
                        int target = tokens[start + i + 1];
                        double v;
                        if (compare != null)
                        {
                            compare.ReadExactly(rowBytes!);
                            Buffer.BlockCopy(rowBytes!, 0, row!, 0, rowBytes!.Length);
                            kl!.Add(l, row, target);
                            v = LogSoftmaxNll(l, target);
                        }
                        else if (save != null)
                        {
                            v = LogProbFile.Encode(l, target, row);
                            Buffer.BlockCopy(row!, 0, rowBytes!, 0, rowBytes!.Length);
                            save.Write(rowBytes);
                        }
                        else v = LogSoftmaxNll(l, target);
                        nll += v;
                        nll2 += v * v;
                    }
                    count += scored;
                    running[c0 + s] = Math.Exp(nll / count);
                    onChunk?.Invoke(c0 + s + 1, chunks, running[c0 + s]);
                }
            }
            finally
            {
                foreach (var t in tables) runner.Blocks.Free(t);
            }
        }
        double mean = nll / count, var2 = nll2 / count - mean * mean;
        double ppl = Math.Exp(mean), err = var2 > 0 ? Math.Sqrt(var2 / (count - 1)) * ppl : 0;
        return new PerplexityResult(ppl, err, ctx, tokens.Length, chunks, count, running, kl);
    }

    /// <summary>−log softmax(logits)[target]: float maximum, double sum of exponentials (as llama-perplexity).</summary>
    private static double LogSoftmaxNll(ReadOnlySpan<float> logits, int target)
    {
        float max = float.NegativeInfinity;
        foreach (float l in logits) max = MathF.Max(max, l);
        double sum = 0;
        foreach (float l in logits) sum += MathF.Exp(l - max);
        return -(logits[target] - max - Math.Log(sum));
    }
}
