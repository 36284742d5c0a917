using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using SharpInfer.Engine.Pooling;
using SharpInfer.Engine.Speculation;
using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Sampling;
using SharpInfer.Scheduling;
using SharpInfer.Tokenization;

namespace SharpInfer.Engine;

/// <summary>
/// The serving engine: many requests share the model through continuous batching over a paged KV cache. One
/// background thread owns the model, the cache and the scheduler and runs steps: schedule (decodes first, then
/// prompt chunks within the token budget), one forward pass over every scheduled token, sampling, streaming
/// detokenization and stop checks, then each request's new output goes to its channel. Callers talk to it only
/// through <see cref="AddRequest"/> (thread-safe) and cancellation; an aborted request frees its blocks at the next step.
/// </summary>
internal sealed partial class LlmEngine : IDisposable
{
    private sealed class Request : Sequence
    {
        public required string RequestId;
        public required SamplingParams Sampling;
        public required Sampler Sampler;
        public required StreamingDetokenizer Detokenizer;
        public required StopStringMatcher Stops;
        public required Channel<RequestOutput> Channel;
        public long Arrival, FirstScheduled, FirstToken, LastToken;
        /// <summary>When the first output with text was sent (a token can end inside a UTF-8 character: no text yet).</summary>
        public long FirstText;
        public CancellationTokenRegistration Cancellation;
        public bool PromptCounted;
        /// <summary>This step's entry in the proposal batch (for the distributions its proposals were drawn from), or -1.</summary>
        public int ProposalEntry = -1;
        /// <summary>Verifications in a row that accepted nothing, and the steps left without proposals (see
        /// <see cref="AdaptiveDraftLimit.PauseAfter"/>).</summary>
        public int SpecFailures, SpecPause;
        /// <summary>1 once the request's admission seat has been given back (at abort or finish, whichever is first).</summary>
        public int SeatReleased;
        /// <summary>A pooling request's gatherer (null for generation: then the sampler, detokenizer and stops are set).</summary>
        public Pooler? Pooler;
        /// <summary>The request's span, when someone listens to <see cref="EngineTelemetry"/>'s source; ended at finish.</summary>
        public Activity? Trace;
        public string? ResponseId;
        /// <summary>gen_ai.operation.name of its span and metrics.</summary>
        public string Operation = "";
        /// <summary>Send <see cref="RequestOutput.Progress"/> outputs while the prompt is computed.</summary>
        public bool ReportsProgress;
        /// <summary>Tokens a context shift keeps at the start; -1 = no context shift.</summary>
        public int ShiftKeep = -1;
        public Request(long id, ReadOnlySpan<int> prompt, int maxLength, int priority) : base(id, prompt, maxLength, priority, id) { }
    }

    private readonly Model _model;
    private readonly ModelRunner _runner;
    private readonly BlockManager _blocks;
    private readonly Scheduler _scheduler;
    private readonly ForwardBatch _batch;
    private readonly float[] _logits;
    private readonly float[] _raw;
    private readonly SamplerScratch _scratch;
    private readonly ClassifierHead? _classifier;
    /// <summary>Hidden states of a step's pooled tokens (allocated at the first pooling request).</summary>
    private float[]? _hidden;
    private enum Command { Add, Abort, AbortAll }
    private readonly ConcurrentQueue<(Command Command, Request? Request)> _incoming = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Thread _loop;
    private readonly StringBuilder _emit = new();
    private readonly Dictionary<long, Request> _live = [];
    private readonly TokenLogProb[] _top = new TokenLogProb[SamplingParams.MaxLogprobs];
    private readonly SpeculativeConfig? _spec;
    private readonly IProposer? _proposer;
    private readonly ProposalBatch? _proposals;
    private long _specDrafts, _specDraftTokens, _specAccepted;
    private long _nextId;
    private int _inSystem;             // accepted and not finished (admission control)
    private int _pendingAdds;          // added but not yet seen by the loop
    private volatile bool _accepting = true;
    private volatile bool _stopLoop;
    // Test hook: while reset, the loop still takes commands (adds, aborts) but runs no step, so a test can hold
    // requests in flight and act on them at a known point instead of racing the loop.
    private readonly ManualResetEventSlim _stepsAllowed = new(true);
    /// <summary>Steps left before the loop holds itself (<see cref="AllowSteps"/>); −1: no limit.</summary>
    private int _stepsLeft = -1;
    private Exception? _fatal;
    private EngineStats _stats = new();
    private double _wasteIntegral, _busySeconds, _concurrencyIntegral;
    private int _maxConcurrency, _kvBlocksPeak;
    private long _promptTokens, _generationTokens, _steps, _finished;

    public Model Model => _model;
    public EngineOptions Options { get; }
    public EngineMetrics Metrics { get; }
    public int MaxModelLen { get; }
    /// <summary>The model's name in traces: <see cref="EngineOptions.ModelName"/>, else the model file's name.</summary>
    public string ModelName { get; }
    public long KvCacheBytes => _blocks.Cache.TotalBytes;
    /// <summary>Whether automatic prefix caching is on (<see cref="EngineOptions.EnablePrefixCaching"/>).</summary>
    public bool PrefixCaching => _blocks.PrefixCaching;
    /// <summary>The disk tier of the prefix cache, when one is configured.</summary>
    public DiskBlockStore? DiskStore => _blocks.Store as DiskBlockStore;
    public long KvCapacityTokens => _blocks.CapacityTokens;
    public EngineStats Stats => _stats;
    /// <summary>Requests accepted and not yet finished (the count admission control limits); read live.</summary>
    public int ActiveRequests => Volatile.Read(ref _inSystem);
    /// <summary>The pooling of pooling requests that name none: <see cref="EngineOptions.Pooling"/>, else the model's
    /// <c>pooling_type</c>, else mean (a generative model's embeddings).</summary>
    public PoolingType DefaultPooling { get; }
    /// <summary>Whether the model has a classification head, so that <see cref="PoolingType.Rank"/> is possible.</summary>
    public bool HasClassifier => _classifier != null;
    /// <summary>Length of a pooled vector (before any <see cref="PoolingParams.Dimensions"/> truncation).</summary>
    public int EmbeddingLength => _model.Config.EmbeddingLength;

    public LlmEngine(Model model, EngineOptions? options = null)
    {
        Options = (options ?? new EngineOptions()).Validate();
        _model = model;
        var c = model.Config;
        DefaultPooling = Options.Pooling ?? PoolingTypes.FromGguf(model.File, c.Architecture) ?? PoolingType.Mean;
        _classifier = ClassifierHead.FromModel(model);
        MaxModelLen = Math.Min(Options.MaxModelLen, c.TrainedContextLength);
        ModelName = Options.ModelName ?? Path.GetFileNameWithoutExtension(model.Path);
        var groups = ModelRunner.KvGroups(c, Options.SwaFull);
        long perBlock = ModelRunner.KvBytesPerBlockToken(c, Options.KvType, Options.ValueType, groups) * Options.BlockSize;
        // without a size: what max-num-seqs sequences of max-model-len tokens hold (windowed groups: their window and
        // a prompt chunk), capped by a share of the available memory
        long wanted = groups.BlocksFor(MaxModelLen, Options.BlockSize) * Options.MaxNumSeqs
                      + (long)groups.WindowGroupCount * BlockTable.BlocksFor(Options.MaxNumBatchedTokens, Options.BlockSize);
        long bytes = Options.KvCacheMemoryBytes
                     ?? Math.Min((long)(MemoryInfo.AvailableBytes() * Options.KvCacheFraction), perBlock * wanted);
        int blockCount = ModelRunner.BlocksForBytes(c, Options.KvType, Options.BlockSize, bytes, Options.ValueType, groups);
        DiskBlockStore? store = Options.EnablePrefixCaching && Options.PrefixCacheDir != null
            ? new DiskBlockStore(Options.PrefixCacheDir, Options.PrefixCacheDiskBytes,
                                 DiskBlockStore.Fingerprint(model, Options.KvType, Options.BlockSize, Options.ValueType, groups), Options.Warn)
            : null;
        _runner = new ModelRunner(model, Options.Threads, Options.MaxNumBatchedTokens, Options.BlockSize, blockCount, Options.KvType,
                                  Options.Precision, Options.Isa, Options.EnablePrefixCaching, store, kvValueType: Options.ValueType,
                                  kvGroups: groups);
        _blocks = _runner.Blocks;
        _scheduler = new Scheduler(_blocks, Options.MaxNumSeqs, Options.MaxNumBatchedTokens, Options.Mode);
        _batch = new ForwardBatch(Options.MaxNumBatchedTokens, Options.MaxNumSeqs);
        _spec = Options.Speculative;
        if (_spec != null)
        {
            try
            {
                _proposer = _spec.Method == "draft_model" ? LoadDraft(_spec) : new NgramProposer(_spec.PromptLookupMin, _spec.PromptLookupMax);
            }
            catch
            {
                _runner.Dispose();
                throw;
            }
            // no more sequences speculate at once than DisableByBatchSize (see Propose)
            _proposals = new ProposalBatch(Math.Min(Options.MaxNumSeqs, _spec.DisableByBatchSize), _spec.NumSpeculativeTokens);
        }
        // one logits row per sampling sequence, and one more per proposed token it verifies
        _logits = new float[(long)Options.MaxNumSeqs * (1 + (_spec?.NumSpeculativeTokens ?? 0)) * c.VocabSize];
        _raw = new float[c.VocabSize];
        _scratch = new SamplerScratch(c.VocabSize);
        Metrics = new EngineMetrics(() => _stats);
        PublishStats();
        _loop = new Thread(Loop) { IsBackground = true, Name = "sharpinfer-engine" };
        _loop.Start();
    }

    /// <summary>
    /// Queues a request and returns its output stream. Validation happens here, synchronously: invalid sampling
    /// parameters or an empty prompt throw <see cref="InvalidRequestException"/>, a prompt that leaves no room in
    /// the context throws <see cref="ContextLengthExceededException"/>, a full waiting queue throws
    /// <see cref="EngineOverloadedException"/>. Cancelling <paramref name="cancellation"/>, or abandoning the
    /// enumeration, aborts the request and frees its KV blocks.
    /// </summary>
    public IAsyncEnumerable<RequestOutput> AddRequest(EngineRequest request, CancellationToken cancellation = default)
    {
        if (!_accepting) throw new EngineStoppedException();
        if (_fatal != null) throw new SharpInferException("the engine failed: " + _fatal.Message, _fatal);
        var p = request.Sampling.Validate(_model.Config.VocabSize);
        var prompt = request.PromptTokens;
        if (prompt.Length == 0) throw new InvalidRequestException("the prompt is empty", "prompt");
        foreach (var t in prompt)
            if ((uint)t >= (uint)_model.Config.VocabSize)
                throw new InvalidRequestException($"token id {t} is outside the vocabulary (0..{_model.Config.VocabSize - 1})", "prompt");
        int limit = (int)Math.Min(MaxModelLen, _blocks.CapacityTokens);
        var pooler = request.Pooling != null ? NewPooler(request.Pooling, prompt.Length) : null;
        // a pooling request needs no room after its prompt: nothing is generated
        if (pooler != null ? prompt.Length > limit : prompt.Length >= limit) throw new ContextLengthExceededException(prompt.Length, limit);
        bool shifts = request.ContextShiftKeep != null && pooler == null;
        // a shifting request may generate past the context: its sequence is bounded by the context, its output by max tokens
        int maxLength = pooler != null ? prompt.Length : shifts ? limit : (int)Math.Min((long)prompt.Length + p.MaxTokens, limit);
        var decode = pooler == null ? DetokenizerOptions(request.PreservedTokens) : null;
        // Admission control: MaxNumSeqs requests can run and MaxQueuedRequests more can wait; beyond that the
        // request is refused at once (the HTTP layer answers 429) instead of queueing without bound.
        if (Interlocked.Increment(ref _inSystem) > Options.MaxNumSeqs + Options.MaxQueuedRequests)
        {
            int q = Interlocked.Decrement(ref _inSystem) - Options.MaxNumSeqs;
            throw new EngineOverloadedException(Math.Max(0, q));
        }
        long id = Interlocked.Increment(ref _nextId);
        var r = new Request(id, prompt, maxLength, request.Priority)
        {
            HashRoot = BlockHash.Root(request.CacheSalt),
            SkipsPrefixCache = pooler != null,
            RequestId = request.RequestId ?? $"req-{id}",
            Sampling = p,
            // a pooling request samples nothing: it never reaches SampleAndEmit
            Sampler = pooler == null ? new Sampler(p, _model.Config.VocabSize, prompt) : null!,
            Detokenizer = decode != null ? new StreamingDetokenizer(_model.Tokenizer, decode) : null!,
            Stops = pooler == null ? new StopStringMatcher(p.Stop) : null!,
            Pooler = pooler,
            Channel = Channel.CreateUnbounded<RequestOutput>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true }),
            Arrival = Stopwatch.GetTimestamp(),
            Draft = _spec != null && pooler == null ? new int[_spec.NumSpeculativeTokens] : null,
            DraftLimit = _spec?.NumSpeculativeTokens ?? 0,
            ResponseId = request.ResponseId,
            ReportsProgress = request.ReportPromptProgress && pooler == null,
            // llama-server keeps at least 4 tokens of room after the kept ones
            ShiftKeep = shifts ? Math.Clamp(request.ContextShiftKeep!.Value, 0, Math.Max(0, limit - 4)) : -1,
        };
        // after validation and admission: a refused request has no span (the caller's own span records the refusal)
        r.Operation = request.Operation ?? DefaultOperation(pooler);
        r.Trace = EngineTelemetry.StartRequest(r.Operation, ModelName, p, pooler != null);
        Interlocked.Increment(ref _pendingAdds);
        _incoming.Enqueue((Command.Add, r));
        // watch the token from now on, whether or not the caller ever reads the stream
        r.Cancellation = cancellation.Register(static state => { var (e, q) = ((LlmEngine, Request))state!; e.Abort(q); }, (this, r));
        _signal.Release();
        return Read(r);
    }

    private static string DefaultOperation(Pooler? pooler) =>
        pooler == null ? EngineTelemetry.TextCompletion : pooler.Type == PoolingType.Rank ? EngineTelemetry.Rerank : EngineTelemetry.Embeddings;

    /// <summary>How a request's tokens become text: each token's piece as it is, with the request's preserved control
    /// tokens rendered (decided here, once per request, so the per-token path only looks the id up in a few).</summary>
    private DecodeOptions DetokenizerOptions(int[]? preserved)
    {
        if (preserved is not { Length: > 0 }) return DecodeOptions.Pieces;
        foreach (int t in preserved)
            if ((uint)t >= (uint)_model.Config.VocabSize)
                throw new InvalidRequestException($"preserved token id {t} is outside the vocabulary (0..{_model.Config.VocabSize - 1})", "preserved_tokens");
        return DecodeOptions.Pieces with { PreservedTokens = [.. preserved] };
    }

    /// <summary>Checks a pooling request's parameters against the model and makes its gatherer.</summary>
    private Pooler NewPooler(PoolingParams p, int promptLength)
    {
        var type = p.Type ?? DefaultPooling;
        if (type == PoolingType.Rank && _classifier == null)
            throw new InvalidRequestException("rank pooling needs a reranker: the model has no classification head (cls / cls.output tensors)", "pooling");
        if (!EmbeddingNorm.IsValid(p.Normalize))
            throw new InvalidRequestException($"normalize must be -1 (none), 0 (max absolute), 2 (Euclidean) or another positive p-norm, got {p.Normalize}", "normalize");
        if (p.Dimensions is int d && (type == PoolingType.Rank || d < 1 || d > EmbeddingLength))
            throw new InvalidRequestException(type == PoolingType.Rank ? "dimensions does not apply to rank pooling"
                : $"dimensions must be between 1 and {EmbeddingLength} (the model's embedding length), got {d}", "dimensions");
        return new Pooler(type, p, _classifier, EmbeddingLength, promptLength);
    }

    /// <summary>Runs a pooling request to its end (see <see cref="AddRequest"/> for the errors it throws) and returns
    /// its result with the number of prompt tokens; throws <see cref="SharpInferException"/> when the engine aborted it.</summary>
    public async Task<PoolingOutput> PoolAsync(EngineRequest request, CancellationToken cancellation = default)
    {
        if (request.Pooling == null) throw new ArgumentException("not a pooling request", nameof(request));
        await foreach (var o in AddRequest(request, cancellation).ConfigureAwait(false))
        {
            if (!o.IsFinal) continue;
            cancellation.ThrowIfCancellationRequested();
            return o.Pooling ?? throw new SharpInferException("the pooling request was aborted" + (o.Error != null ? ": " + o.Error : ""));
        }
        throw new SharpInferException("the pooling request ended without a result");
    }

    /// <summary>The draft model of speculative decoding, on this engine's threads, its KV cache sized for the
    /// sequences that may speculate at once.</summary>
    private DraftModelProposer LoadDraft(SpeculativeConfig spec)
    {
        var draft = Model.Load(spec.Model!);
        try
        {
            int seqs = Math.Min(Options.MaxNumSeqs, spec.DisableByBatchSize) + 1;
            return new DraftModelProposer(draft, _model, _runner.Pool, Options.MaxNumSeqs, spec.NumSpeculativeTokens,
                                          (long)seqs * (MaxModelLen + spec.NumSpeculativeTokens), Options.KvType, Options.BlockSize);
        }
        catch
        {
            draft.Dispose();
            throw;
        }
    }

    /// <summary>Blocking form of <see cref="AddRequest"/> for synchronous callers (benchmarks, tools): the request's
    /// outputs in order; leaving the enumeration early aborts the request.</summary>
    public IEnumerable<RequestOutput> Generate(EngineRequest request, CancellationToken cancellation = default)
    {
        var outputs = AddRequest(request, cancellation).GetAsyncEnumerator(CancellationToken.None);
        try
        {
            while (outputs.MoveNextAsync().AsTask().GetAwaiter().GetResult()) yield return outputs.Current;
        }
        finally
        {
            outputs.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private async IAsyncEnumerable<RequestOutput> Read(Request r)
    {
        bool finished = false;
        try
        {
            await foreach (var output in r.Channel.Reader.ReadAllAsync(CancellationToken.None))
            {
                finished = output.IsFinal;
                yield return output;
                if (finished) yield break;
            }
        }
        finally
        {
            if (!finished) Abort(r);
        }
    }

    private void Abort(Request r)
    {
        // The seat is free as soon as the caller lets go (a client that disconnected must not keep a later request
        // out with a 429); the blocks follow when the loop drains the abort, before it admits anything queued after it.
        ReleaseSeat(r);
        _incoming.Enqueue((Command.Abort, r));
        _signal.Release();
    }

    // ---- the engine loop -------------------------------------------------------------------------------------

    private void Loop()
    {
        try
        {
            while (!_stopLoop)
            {
                Drain();
                if (!_scheduler.HasWork || !_stepsAllowed.IsSet)
                {
                    PublishStats();
                    _signal.Wait(100);
                    continue;
                }
                Step();
                if (Volatile.Read(ref _stepsLeft) > 0 && Interlocked.Decrement(ref _stepsLeft) == 0) _stepsAllowed.Reset();
            }
        }
        catch (Exception e)
        {
            _fatal = e;
            _accepting = false;
            foreach (var r in _live.Values.ToArray()) Finish(r, FinishReason.Abort, error: e);
        }
        finally
        {
            PublishStats();
        }
    }

    private void Drain()
    {
        while (_incoming.TryDequeue(out var item))
        {
            var r = item.Request;
            switch (item.Command)
            {
                case Command.Add:
                    Interlocked.Decrement(ref _pendingAdds);
                    if (r!.Status == SequenceStatus.Finished) continue;  // aborted before the loop saw it
                    _live[r.Id] = r;
                    _scheduler.Add(r);
                    break;
                case Command.Abort:
                    if (r!.Status == SequenceStatus.Finished) continue;
                    if (!_live.ContainsKey(r.Id))
                    {
                        // not seen yet: its Add is still queued behind this abort
                        r.Status = SequenceStatus.Finished;
                        ReleaseSeat(r);
                        if (r.Trace != null) EndTrace(r, FinishReason.Abort, NotStarted(r), Stopwatch.GetTimestamp(), null);
                        r.Channel.Writer.TryComplete();
                        r.Cancellation.Dispose();
                        continue;
                    }
                    Finish(r, FinishReason.Abort);
                    break;
                case Command.AbortAll:
                    foreach (var live in _live.Values.ToArray()) Finish(live, FinishReason.Abort);
                    break;
            }
        }
    }

    private void Step()
    {
        long t0 = Stopwatch.GetTimestamp();
        Propose();
        var chunks = _scheduler.Schedule();
        _kvBlocksPeak = Math.Max(_kvBlocksPeak, _blocks.UsedBlocks);
        foreach (var s in _scheduler.PreemptedThisStep)
        {
            Metrics.Preemptions.Add(1);
            _proposer?.Forget(s);
        }
        if (chunks.Count == 0)
        {
            // Only possible if the head of the queue cannot fit even alone; admission prevents that, but never spin.
            if (_scheduler.RunningCount == 0 && _scheduler.Waiting.Count > 0)
                Finish((Request)_scheduler.Waiting[0], FinishReason.Abort, error: new SharpInferException("the request does not fit in the KV cache"));
            return;
        }
        _batch.Clear();
        foreach (var c in chunks)
        {
            var r = (Request)c.Sequence;
            if (r.FirstScheduled == 0)
            {
                r.FirstScheduled = t0;
                Metrics.QueueTime.Record(Seconds(r.Arrival, t0));
                // the start of the prompt's computation: what the prefix cache served is already done
                if (r.ReportsProgress) SendProgress(r, c.Start, t0);
            }
            int seq = _batch.AddSequence(r.Tables);
            var tokens = r.Tokens;
            int real = c.Count - c.Drafts;
            var pooler = r.Pooler;
            if (pooler != null && c.Start == 0) pooler.Reset();   // first chunk, or recomputing after a preemption
            for (int k = 0; k < real; k++)
                _batch.AddToken(seq, tokens[c.Start + k], c.Start + k, wantLogits: pooler == null && c.SamplesNext && k == real - 1,
                                wantHidden: pooler != null && pooler.Wants(c.Start + k));
            // proposed tokens follow the last one, each wanting the logits that verify the next
            for (int j = 0; j < c.Drafts; j++) _batch.AddToken(seq, r.Draft![j], c.Start + real + j, wantLogits: true);
        }
        _maxConcurrency = Math.Max(_maxConcurrency, chunks.Count);
        if (_batch.HiddenCount > 0) _hidden ??= new float[(long)Options.MaxNumBatchedTokens * EmbeddingLength];
        _runner.Forward(_batch, _logits, _batch.HiddenCount > 0 ? _hidden : default);
        _scheduler.Complete(chunks);
        _steps++;

        int row = 0, hiddenRow = 0;
        int V = _model.Config.VocabSize;
        long t1Progress = Stopwatch.GetTimestamp();
        // iterate over a copy of the plan: finishing a request changes the scheduler's lists, not this one
        for (int i = 0; i < chunks.Count; i++)
        {
            var c = chunks[i];
            var r = (Request)c.Sequence;
            if (!r.PromptCounted && r.ComputedTokens >= r.PromptLength)
            {
                r.PromptCounted = true;
                _promptTokens += r.PromptLength;
                Metrics.PromptTokens.Add(r.PromptLength);
            }
            // each prompt chunk computed, the last one included, before its first token is sampled
            if (r.ReportsProgress && r.FirstToken == 0) SendProgress(r, c.Start + c.Count - c.Drafts, t1Progress);
            if (r.Pooler != null)
            {
                // the chunk's hidden states are in token order, as the batch listed them
                int E = EmbeddingLength;
                for (int k = 0; k < c.Count; k++)
                    if (r.Pooler.Wants(c.Start + k)) r.Pooler.Accept(c.Start + k, _hidden.AsSpan(hiddenRow++ * E, E));
                if (c.SamplesNext) FinishPooling(r);
                continue;
            }
            if (!c.SamplesNext) continue;
            if (c.Drafts == 0)
            {
                SampleAndEmit(r, _logits.AsSpan(row * V, V), -1, out _);
                row++;
                continue;
            }
            // speculative: verify the proposals in order; the first rejection (or the row after the last proposal)
            // gives the target's own token, and the sequence keeps the keys and values of what was accepted
            int accepted = 0;
            for (int j = 0; j <= c.Drafts; j++)
            {
                int draft = j < c.Drafts ? r.Draft![j] : -1;
                var q = draft >= 0 && r.ProposalEntry >= 0 && _proposals!.IsDrawn(r.ProposalEntry) ? _proposals.DistributionOf(r.ProposalEntry, j) : default;
                bool finished = SampleAndEmit(r, _logits.AsSpan((row + j) * V, V), draft, out bool ok, q);
                if (finished || !ok) break;
                accepted++;
            }
            row += 1 + c.Drafts;
            r.DraftProposed += c.Drafts;
            r.DraftAccepted += accepted;
            _specDrafts++;
            _specDraftTokens += c.Drafts;
            _specAccepted += accepted;
            Metrics.SpecDrafts.Add(1);
            Metrics.SpecDraftTokens.Add(c.Drafts);
            Metrics.SpecAcceptedTokens.Add(accepted);
            if (r.Status == SequenceStatus.Finished) continue;
            _scheduler.CommitDrafts(r, accepted);
            r.DraftLimit = AdaptiveDraftLimit.Next(r.DraftLimit, c.Drafts, accepted, _spec!.NumSpeculativeTokens);
            r.SpecPause = AdaptiveDraftLimit.PauseAfter(ref r.SpecFailures, accepted);
        }
        // context shifts, after every sequence of the step was sampled and its proposals committed
        for (int i = 0; i < chunks.Count; i++)
        {
            var r = (Request)chunks[i].Sequence;
            if (r.ShiftKeep >= 0 && r.Status != SequenceStatus.Finished && r.Length >= r.MaxLength) ShiftContext(r);
        }
        long t1 = Stopwatch.GetTimestamp();
        double dt = Seconds(t0, t1);
        if (TraceRequests)
        {
            int dec = 0, pre = 0;
            foreach (var c in chunks) if (c.Count == 1) dec++; else pre += c.Count;
            Console.Error.WriteLine(FormattableString.Invariant($"STEP at={Seconds(_t0, t0) * 1000:F0} ms={dt * 1000:F0} decodes={dec} prefill={pre} waiting={_scheduler.WaitingCount}"));
        }
        _busySeconds += dt;
        _concurrencyIntegral += dt * chunks.Count;
        _wasteIntegral += dt * _blocks.Waste(_scheduler.StoredTokens());
        PublishStats();
    }

    /// <summary>Proposals for this step: every decoding sequence gets up to its adaptive limit (none while more
    /// sequences decode than <see cref="SpeculativeConfig.DisableByBatchSize"/>), never past its max tokens.</summary>
    private void Propose()
    {
        if (_proposer == null) return;
        var running = _scheduler.Running;
        int decoding = 0;
        for (int i = 0; i < running.Count; i++)
        {
            running[i].DraftCount = 0;
            ((Request)running[i]).ProposalEntry = -1;
            if (!running[i].IsPrefilling) decoding++;
        }
        if (decoding == 0 || decoding > _spec!.DisableByBatchSize) return;
        _proposals!.Clear();
        for (int i = 0; i < running.Count; i++)
        {
            var r = (Request)running[i];
            if (r.IsPrefilling) continue;
            if (r.SpecPause > 0)   // backing off after failed proposals
            {
                r.SpecPause--;
                continue;
            }
            // the target's own token must fit after the proposals
            int room = Math.Min(r.Sampling.MaxTokens - r.OutputLength, r.MaxLength - r.Length) - 1;
            int limit = TileFriendly(Math.Min(r.DraftLimit, room));
            if (limit <= 0) continue;
            r.ProposalEntry = _proposals.Count;
            _proposals.Add(r, limit, r.Sampling.IsGreedy || _spec.ArgmaxDraftsForTests ? null : r.Sampler);
        }
        if (_proposals.Count == 0) return;
        _proposer.Propose(_proposals);
        for (int i = 0; i < _proposals.Count; i++)
        {
            var s = _proposals.Sequence(i);
            int n = _proposals.Proposed(i);
            _proposals.Tokens(i)[..n].CopyTo(s.Draft);
            s.DraftCount = n;
        }
    }

    /// <summary>
    /// The matmul kernels multiply tokens in tiles of 4 (the rest in one tile of 1–3), so 1 + d tokens take one pass
    /// over the weights for d ≤ 3 and two for d = 4 to 7: a limit of 3 or more is rounded down to one less than a
    /// multiple of 4 (3, 7, 11, 15). Measured on the widened 1B target with the stories260K draft (loaded machine,
    /// before the rest tiles): limits of 4 to 6 proposals gave 62–68 tokens/s, 3 gave 74–77.
    /// </summary>
    private static int TileFriendly(int limit) => limit < 3 ? limit : (limit + 1) / 4 * 4 - 1;

    /// <summary>Samples the next token of <paramref name="r"/> from <paramref name="logits"/> (or verifies the proposed
    /// <paramref name="draft"/>, when ≥ 0: <paramref name="accepted"/> tells whether it stood; <paramref name="q"/> is the
    /// distribution it was drawn from, empty when it was proposed with certainty) and emits it. Returns true when the
    /// request finished.</summary>
    private bool SampleAndEmit(Request r, Span<float> logits, int draft, out bool accepted, ReadOnlySpan<float> q = default)
    {
        accepted = false;
        var p = r.Sampling;
        TokenLogProbs? lp = null;
        double lse = 0;
        int k = 0;
        if (p.Logprobs != null)
        {
            lse = LogProbs.LogSumExp(logits);
            k = LogProbs.Top(logits, lse, _top.AsSpan(0, p.Logprobs.Value));
            logits.CopyTo(_raw);
        }
        int token;
        if (draft < 0) token = r.Sampler.Sample(logits, _scratch);
        else if (_spec!.AcceptAllForTests) (token, accepted) = (draft, true);
        else if (q.Length > 0) token = r.Sampler.Verify(logits, _scratch, draft, q, out accepted, _spec.WrongResidualForTests);
        else token = r.Sampler.Verify(logits, _scratch, draft, out accepted);
        long now = Stopwatch.GetTimestamp();
        if (r.FirstToken == 0)
        {
            r.FirstToken = now;
            Metrics.TimeToFirstToken.Record(Seconds(r.Arrival, now));
        }
        else Metrics.InterTokenLatency.Record(Seconds(r.LastToken, now));
        r.LastToken = now;

        if (!p.IgnoreEos && _model.Vocabulary.IsEndOfGeneration(token))
        {
            _emit.Clear();
            r.Stops.Push(r.Detokenizer.Flush(), _emit);
            _emit.Append(r.Stops.Flush());
            Finish(r, FinishReason.Stop, text: _emit.ToString());
            return true;
        }
        if (p.Logprobs != null) lp = new TokenLogProbs(token, (float)(_raw[token] - lse), _top.AsSpan(0, k).ToArray());
        r.Append(token);
        r.Sampler.Accept(token);
        _generationTokens++;
        Metrics.GenerationTokens.Add(1);
        _emit.Clear();
        bool stopped = r.Stops.Push(r.Detokenizer.Push(token), _emit);
        FinishReason? finish = stopped ? FinishReason.Stop
            : r.OutputLength >= p.MaxTokens || (r.Length >= r.MaxLength && r.ShiftKeep < 0) ? FinishReason.Length : null;
        if (finish == FinishReason.Length)
        {
            r.Stops.Push(r.Detokenizer.Flush(), _emit);
            _emit.Append(r.Stops.Flush());
        }
        if (r.FirstText == 0 && _emit.Length > 0) r.FirstText = now;
        var output = new RequestOutput
        {
            RequestId = r.RequestId,
            TokenIds = [token],
            Text = _emit.ToString(),
            LogProbs = lp != null ? [lp] : null,
            PromptTokens = r.PromptLength,
            CachedPromptTokens = r.CachedPromptTokens,
            CompletionTokens = r.OutputLength,
        };
        if (finish != null) Finish(r, finish.Value, output);
        else r.Channel.Writer.TryWrite(output);
        return finish != null;
    }

    /// <summary>llama-server's context shift: the sequence filled the context, so it keeps its first
    /// <see cref="Request.ShiftKeep"/> tokens, drops half of the rest and is computed again (the prefix cache serves the
    /// kept blocks). llama.cpp instead moves the cached keys to their new positions; recomputing gives the keys and values
    /// the shifted sequence would have had from the start.</summary>
    private void ShiftContext(Request r)
    {
        int left = r.Length - r.ShiftKeep;
        int discard = Math.Clamp(left / 2, 0, Math.Max(0, left - 1));
        if (discard == 0) return;
        _proposer?.Forget(r);
        r.Discard(r.ShiftKeep, discard);
        _scheduler.Restart(r);
    }

    /// <summary>A <see cref="RequestOutput.Progress"/> output: <paramref name="processed"/> prompt tokens have keys and
    /// values (only for requests that asked, so the per-token path allocates nothing for the others).</summary>
    private void SendProgress(Request r, int processed, long now)
    {
        r.Channel.Writer.TryWrite(new RequestOutput
        {
            RequestId = r.RequestId,
            TokenIds = [],
            Text = "",
            PromptTokens = r.PromptLength,
            CachedPromptTokens = r.CachedPromptTokens,
            Progress = new PromptProgress(r.PromptLength, r.CachedPromptTokens, Math.Min(processed, r.PromptLength), Seconds(r.FirstScheduled, now) * 1000),
        });
    }

    /// <summary>A pooling request whose whole prompt has run: its result is its final output.</summary>
    private void FinishPooling(Request r)
    {
        var output = new RequestOutput
        {
            RequestId = r.RequestId,
            TokenIds = [],
            Text = "",
            PromptTokens = r.PromptLength,
            Pooling = r.Pooler!.Finish(),
        };
        Finish(r, FinishReason.Stop, output);
    }

    /// <summary>Ends a request: frees its blocks, sends the final output (with timings) and completes its stream.</summary>
    private void Finish(Request r, FinishReason reason, RequestOutput? last = null, string text = "", Exception? error = null)
    {
        if (r.Status == SequenceStatus.Finished) return;
        _scheduler.Remove(r);
        _proposer?.Forget(r);
        _live.Remove(r.Id);
        ReleaseSeat(r);
        long now = Stopwatch.GetTimestamp();
        double e2e = Seconds(r.Arrival, now);
        double ttft = r.FirstToken == 0 ? e2e : Seconds(r.Arrival, r.FirstToken);
        var timings = new RequestTimings
        {
            QueueTime = r.FirstScheduled == 0 ? e2e : Seconds(r.Arrival, r.FirstScheduled),
            TimeToFirstToken = ttft,
            EndToEnd = e2e,
            TimePerOutputToken = r.OutputLength > 1 ? (Seconds(r.Arrival, r.LastToken) - ttft) / (r.OutputLength - 1) : 0,
            PromptTokens = r.PromptLength,
            CompletionTokens = r.OutputLength,
            CachedPromptTokens = r.CachedPromptTokens,
            PrefillTime = r.FirstToken == 0 || r.FirstScheduled == 0 ? 0 : Seconds(r.FirstScheduled, r.FirstToken),
            DecodeTime = r.FirstToken == 0 ? 0 : Seconds(r.FirstToken, r.LastToken),
            Preemptions = r.Preemptions,
            DraftTokens = r.DraftProposed,
            DraftAccepted = r.DraftAccepted,
        };
        Metrics.EndToEndLatency.Record(e2e);
        if (TraceRequests) Console.Error.WriteLine(FormattableString.Invariant($"TRACE {r.RequestId} arr={Seconds(_t0, r.Arrival) * 1000:F0} queue={timings.QueueTime * 1000:F0} ttft={ttft * 1000:F0} text={(r.FirstText == 0 ? -1 : Seconds(r.Arrival, r.FirstText) * 1000):F0} e2e={e2e * 1000:F0} prompt={r.PromptLength} cached={r.CachedPromptTokens} out={r.OutputLength}"));
        if (r.Trace != null) EndTrace(r, reason, timings, now, error);
        if (Metrics.GenAiRequestDuration.Enabled) RecordGenAi(r, reason, timings, error);
        if (r.OutputLength > 1) Metrics.TimePerOutputToken.Record(timings.TimePerOutputToken);
        Metrics.RequestsFinished.Add(1, new KeyValuePair<string, object?>("finish_reason", reason.ToApiString()));
        _finished++;
        var final = (last ?? new RequestOutput
        {
            RequestId = r.RequestId,
            TokenIds = [],
            Text = text,
            PromptTokens = r.PromptLength,
            CompletionTokens = r.OutputLength,
            CachedPromptTokens = r.CachedPromptTokens,
        }) with
        { Finish = reason, Timings = timings, Error = error?.Message, ContextShifted = r.Discarded > 0 };
        r.Channel.Writer.TryWrite(final);
        r.Channel.Writer.TryComplete();
        r.Cancellation.Dispose();
    }

    private void EndTrace(Request r, FinishReason reason, RequestTimings timings, long now, Exception? error)
    {
        EngineTelemetry.EndRequest(r.Trace!, new EngineTelemetry.Outcome(
            r.ResponseId ?? r.RequestId, ModelName, reason, error, timings, r.Arrival, r.FirstScheduled, r.FirstToken, r.LastToken, now,
            Pooling: r.Pooler != null, Speculative: _spec != null && r.Pooler == null));
        r.Trace = null;
    }

    private void RecordGenAi(Request r, FinishReason reason, RequestTimings t, Exception? error)
    {
        var tags = new TagList
        {
            { "gen_ai.operation.name", r.Operation },
            { "gen_ai.provider.name", EngineTelemetry.ProviderName },
            { "gen_ai.request.model", ModelName },
        };
        if (error != null || reason == FinishReason.Abort) tags.Add("error.type", EngineTelemetry.ErrorType(error));
        Metrics.GenAiRequestDuration.Record(t.EndToEnd, tags);
        if (r.FirstToken != 0) Metrics.GenAiTimeToFirstToken.Record(t.TimeToFirstToken, tags);
        if (r.OutputLength > 1) Metrics.GenAiTimePerOutputToken.Record(t.TimePerOutputToken, tags);
    }

    /// <summary>The timings of a request aborted before the loop saw it.</summary>
    private static RequestTimings NotStarted(Request r) => new()
    {
        QueueTime = Seconds(r.Arrival, Stopwatch.GetTimestamp()),
        PromptTokens = r.PromptLength,
    };

    private void ReleaseSeat(Request r)
    {
        if (Interlocked.Exchange(ref r.SeatReleased, 1) == 0) Interlocked.Decrement(ref _inSystem);
    }

    private void PublishStats()
    {
        _stats = new EngineStats
        {
            Running = _scheduler.RunningCount,
            Waiting = _scheduler.WaitingCount + Volatile.Read(ref _pendingAdds),
            KvCacheUsage = _blocks.Usage,
            KvBlocksUsed = _blocks.UsedBlocks,
            KvBlocksTotal = _blocks.TotalBlocks,
            KvBlocksPeak = _kvBlocksPeak,
            Preemptions = _scheduler.Preemptions,
            PromptTokens = _promptTokens,
            GenerationTokens = _generationTokens,
            Steps = _steps,
            TimeAveragedKvWaste = _busySeconds > 0 ? _wasteIntegral / _busySeconds : 0,
            MaxConcurrency = _maxConcurrency,
            TimeAveragedConcurrency = _busySeconds > 0 ? _concurrencyIntegral / _busySeconds : 0,
            FinishedRequests = _finished,
            PrefixCacheQueries = _blocks.PrefixQueries,
            PrefixCacheHits = _blocks.PrefixHits,
            PrefixCacheDiskHits = _blocks.StoreHits,
            PrefixCacheEvictions = _blocks.Evictions,
            PrefixCacheBlocks = _blocks.CachedBlocks,
            SpecDrafts = _specDrafts,
            SpecDraftTokens = _specDraftTokens,
            SpecAcceptedTokens = _specAccepted,
        };
    }

    /// <summary>Diagnostics (SHARPINFER_TRACE_STEPS=1): one stderr line per step (its duration, decodes, prompt tokens,
    /// queue) and per finished request (arrival, queue time, first token computed, first text, end) in milliseconds
    /// since the engine started, to see where a request's time goes under load (docs/benchmarks.md, issue 11).</summary>
    private static readonly bool TraceRequests = Environment.GetEnvironmentVariable("SHARPINFER_TRACE_STEPS") == "1";
    private readonly long _t0 = Stopwatch.GetTimestamp();
    private static double Seconds(long from, long to) => (to - from) / (double)Stopwatch.Frequency;

    /// <summary>Graceful shutdown: stops accepting requests, lets running and queued ones finish for up to
    /// <paramref name="grace"/>, then aborts what is left and stops the loop.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        _accepting = false;
        var deadline = Stopwatch.GetTimestamp() + (long)(grace.TotalSeconds * Stopwatch.Frequency);
        // wait on the live count of accepted, unfinished requests (the published stats lag a step behind)
        while ((Volatile.Read(ref _inSystem) > 0 || !_incoming.IsEmpty) && Stopwatch.GetTimestamp() < deadline && _loop.IsAlive)
            await Task.Delay(20).ConfigureAwait(false);
        _incoming.Enqueue((Command.AbortAll, null));
        _signal.Release();
        while (!_incoming.IsEmpty && _loop.IsAlive) await Task.Delay(5).ConfigureAwait(false);
        _stopLoop = true;
        _signal.Release();
        _loop.Join();
    }

    /// <summary>Test hook: pauses the loop between steps (commands are still taken) until <see cref="ResumeSteps"/>.</summary>
    internal void HoldSteps() => _stepsAllowed.Reset();

    internal void ResumeSteps()
    {
        Volatile.Write(ref _stepsLeft, -1);
        _stepsAllowed.Set();
        _signal.Release();
    }

    /// <summary>Test hook: lets the loop run <paramref name="steps"/> more steps, then holds it as <see cref="HoldSteps"/>
    /// does — so a test can have a request produce a few tokens and know it is still running, however slow the
    /// machine or the test's own thread.</summary>
    internal void AllowSteps(int steps)
    {
        Volatile.Write(ref _stepsLeft, steps);
        _stepsAllowed.Set();
        _signal.Release();
    }

    public void Dispose()
    {
        if (_loop.IsAlive) StopAsync(TimeSpan.Zero).GetAwaiter().GetResult();
        Metrics.Dispose();
        _runner.Dispose();
        _proposer?.Dispose();
        _signal.Dispose();
        _stepsAllowed.Dispose();
    }
}
