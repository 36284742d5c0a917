using System.Diagnostics;
using System.Text;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Sampling;
using SharpInfer.Tokenization;

namespace SharpInfer.Engine;

/// <summary>
/// One conversation with a model on this thread: a KV cache sized for the context, the tokens it holds, and a
/// generation loop. A new prompt reuses the cached KV of its longest common prefix with the tokens already in the
/// cache and processes only the rest (multi-turn chat re-renders the whole conversation each turn). For many
/// concurrent requests use the serving engine instead.
/// </summary>
public sealed class InferenceSession : IDisposable
{
    private readonly Model _model;
    private readonly ComputePool _pool;
    private readonly Transformer _transformer;
    private readonly PagedKvCache _cache;
    private readonly BlockAllocator _blocks;
    private readonly BlockTable _table = new();
    private readonly ForwardBatch _batch;
    private readonly List<int> _tokens = [];
    private readonly float[] _logits;
    private readonly float[] _rawLogits;
    private readonly SamplerScratch _scratch;

    public SessionOptions Options { get; }
    public Model Model => _model;
    public int ContextLength { get; }
    /// <summary>Tokens whose keys and values are in the cache, in order.</summary>
    public IReadOnlyList<int> CachedTokens => _tokens;
    public GenerationTimings LastTimings { get; private set; } = new();

    public InferenceSession(Model model, SessionOptions? options = null)
    {
        Options = (options ?? new SessionOptions()).Validate();
        _model = model;
        var c = model.Config;
        ContextLength = Math.Min(Options.ContextLength, c.TrainedContextLength);
        _pool = new ComputePool(Options.Threads);
        _transformer = new Transformer(c, model.Weights, _pool, Math.Min(Options.BatchSize, ContextLength), Options.KvBlockSize, Options.Precision, Options.Isa);
        int blocks = BlockTable.BlocksFor(ContextLength, Options.KvBlockSize);
        _cache = new PagedKvCache(c.LayerCount, c.KvHeadCount, c.HeadDim, Options.KvBlockSize, blocks, Options.KvType);
        _blocks = new BlockAllocator(blocks);
        _batch = new ForwardBatch(Math.Min(Options.BatchSize, ContextLength), 1);
        _logits = new float[c.VocabSize];
        _rawLogits = new float[c.VocabSize];
        _scratch = new SamplerScratch(c.VocabSize);
    }

    /// <summary>Bytes of KV cache allocated for the context.</summary>
    public long KvCacheBytes => _cache.TotalBytes;

    /// <summary>Forgets the cached conversation.</summary>
    public void Reset() => Truncate(0);

    private void Truncate(int length)
    {
        _tokens.RemoveRange(length, _tokens.Count - length);
        int keep = BlockTable.BlocksFor(length, _cache.BlockSize);
        while (_table.Count > keep) _blocks.Release(_table.RemoveLast());
    }

    /// <summary>Runs the model over <paramref name="tokens"/> appended to the cache; the last token's logits land in
    /// the session's logits buffer.</summary>
    private void Feed(ReadOnlySpan<int> tokens)
    {
        for (int start = 0; start < tokens.Length; start += _transformer.MaxBatchTokens)
        {
            int n = Math.Min(_transformer.MaxBatchTokens, tokens.Length - start);
            int pos0 = _tokens.Count;
            while (_table.Count * _cache.BlockSize < pos0 + n)
            {
                if (!_blocks.TryAllocate(out int b)) throw new ContextLengthExceededException(pos0 + n, ContextLength);
                _table.Add(b);
            }
            _batch.Clear();
            int seq = _batch.AddSequence(_table);
            for (int i = 0; i < n; i++) _batch.AddToken(seq, tokens[start + i], pos0 + i, wantLogits: start + i == tokens.Length - 1);
            _transformer.Forward(_batch, _cache, _logits);
            for (int i = 0; i < n; i++) _tokens.Add(tokens[start + i]);
        }
    }

    /// <summary>Processes a prompt (reusing the cached prefix) and leaves the next-token logits ready. Returns how
    /// many prompt tokens came from the cache.</summary>
    public int Prefill(IReadOnlyList<int> prompt)
    {
        if (prompt.Count == 0) throw new InvalidRequestException("the prompt is empty", "prompt");
        if (prompt.Count >= ContextLength) throw new ContextLengthExceededException(prompt.Count, ContextLength);
        int common = 0;
        while (common < prompt.Count && common < _tokens.Count && prompt[common] == _tokens[common]) common++;
        if (common == prompt.Count) common--;   // the last prompt token must run again to produce logits
        Truncate(common);
        var rest = new int[prompt.Count - common];
        for (int i = 0; i < rest.Length; i++) rest[i] = prompt[common + i];
        Feed(rest);
        return common;
    }

    /// <summary>
    /// Generates a continuation of <paramref name="prompt"/>. Yields one event per generated token (text may be empty
    /// while bytes or a possible stop string are pending); the last event carries the finish reason.
    /// </summary>
    public IEnumerable<GenerationEvent> Generate(IReadOnlyList<int> prompt, SamplingParams sampling, CancellationToken cancellation = default)
    {
        sampling.Validate(_model.Config.VocabSize);
        var timings = new GenerationTimings { PromptTokens = prompt.Count };
        LastTimings = timings;
        var sw = Stopwatch.StartNew();
        timings.CachedPromptTokens = Prefill(prompt);
        timings.PromptMs = sw.Elapsed.TotalMilliseconds;
        sw.Restart();

        var sampler = new Sampler(sampling, _model.Config.VocabSize, prompt is int[] arr ? arr : prompt.ToArray());
        var detok = new StreamingDetokenizer(_model.Tokenizer, DecodeOptions.Pieces);
        var stops = new StopStringMatcher(sampling.Stop);
        var vocab = _model.Vocabulary;
        var emit = new StringBuilder();
        int topN = sampling.Logprobs ?? 0;
        bool wantLogprobs = sampling.Logprobs != null;
        var top = new TokenLogProb[Math.Max(1, topN)];
        for (int n = 0; ; n++)
        {
            if (cancellation.IsCancellationRequested)
            {
                timings.GenerationMs = sw.Elapsed.TotalMilliseconds;
                yield return new GenerationEvent(-1, "", 0, null, FinishReason.Abort);
                yield break;
            }
            float chosenLogProb = 0;
            TokenLogProb[]? tops = null;
            double lse = 0;
            if (wantLogprobs)
            {
                lse = LogProbs.LogSumExp(_logits);
                if (topN > 0)
                {
                    int k = LogProbs.Top(_logits, lse, top.AsSpan(0, topN));
                    tops = top.AsSpan(0, k).ToArray();
                }
            }
            // sampling transforms the logits in place; log-probs are of the raw logits, so keep a copy when asked
            if (wantLogprobs) _logits.CopyTo(_rawLogits, 0);
            int token = sampler.Sample(_logits, _scratch);
            if (wantLogprobs) chosenLogProb = (float)(_rawLogits[token] - lse);
            timings.GeneratedTokens = n + 1;
            if (!sampling.IgnoreEos && vocab.IsEndOfGeneration(token))
            {
                emit.Clear();
                stops.Push(detok.Flush(), emit);
                emit.Append(stops.Flush());
                timings.GeneratedTokens = n;  // the end-of-generation token is not part of the output
                timings.GenerationMs = sw.Elapsed.TotalMilliseconds;
                yield return new GenerationEvent(-1, emit.ToString(), 0, null, FinishReason.Stop);
                yield break;
            }
            sampler.Accept(token);
            emit.Clear();
            bool stopped = stops.Push(detok.Push(token), emit);
            bool full = n + 1 >= sampling.MaxTokens || _tokens.Count + 1 >= ContextLength;
            if (stopped)
            {
                timings.GenerationMs = sw.Elapsed.TotalMilliseconds;
                yield return new GenerationEvent(token, emit.ToString(), chosenLogProb, tops, FinishReason.Stop);
                yield break;
            }
            if (full)
            {
                stops.Push(detok.Flush(), emit);
                emit.Append(stops.Flush());
                timings.GenerationMs = sw.Elapsed.TotalMilliseconds;
                yield return new GenerationEvent(token, emit.ToString(), chosenLogProb, tops, FinishReason.Length);
                yield break;
            }
            yield return new GenerationEvent(token, emit.ToString(), chosenLogProb, tops, null);
            _singleToken[0] = token;
            Feed(_singleToken);
            timings.DecodePasses++;
        }
    }

    private readonly int[] _singleToken = new int[1];

    public void Dispose()
    {
        _transformer.Dispose();
        _cache.Dispose();
        _pool.Dispose();
    }
}
