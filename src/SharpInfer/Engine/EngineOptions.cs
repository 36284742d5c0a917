using SharpInfer.KvCache;
using SharpInfer.Runtime;
using SharpInfer.Scheduling;
using SharpInfer.Tensors;

namespace SharpInfer.Engine;

/// <summary>Options of the serving engine, named after vLLM's flags (and llama.cpp's for threads/context).</summary>
public sealed record EngineOptions
{
    /// <summary>Compute threads (-t).</summary>
    public int Threads { get; init; } = ComputePool.DefaultThreads;
    /// <summary>Longest sequence (prompt + output) a request may reach (--max-model-len / -c); capped by the model.</summary>
    public int MaxModelLen { get; init; } = 4096;
    /// <summary>Most sequences running at once (--max-num-seqs).</summary>
    public int MaxNumSeqs { get; init; } = 16;
    /// <summary>Token budget of one engine step: all running decodes first, then prompt chunks (--max-num-batched-tokens).</summary>
    public int MaxNumBatchedTokens { get; init; } = 512;
    /// <summary>Requests allowed to wait for admission; more are refused (HTTP 429) (--max-queued-requests).</summary>
    public int MaxQueuedRequests { get; init; } = 256;
    /// <summary>KV cache size in bytes (--kv-cache-memory); null = <see cref="KvCacheFraction"/> of available memory.</summary>
    public long? KvCacheMemoryBytes { get; init; }
    /// <summary>Share of available memory for the KV cache when no size is given, capped at what
    /// MaxNumSeqs × MaxModelLen tokens need.</summary>
    public double KvCacheFraction { get; init; } = 0.25;
    public int BlockSize { get; init; } = 16;
    /// <summary>How keys are cached (--cache-type-k/-ctk; --cache-type sets both).</summary>
    public KvDataType KvType { get; init; } = KvDataType.F16;
    /// <summary>How values are cached (--cache-type-v/-ctv); null: as keys.</summary>
    public KvDataType? KvValueType { get; init; }
    public KvDataType ValueType => KvValueType ?? KvType;
    public SchedulingMode Mode { get; init; } = SchedulingMode.Continuous;
    public MatMulPrecision Precision { get; init; } = MatMulPrecision.Fast;
    public IsaLevel? Isa { get; init; }
    /// <summary>Keep every position of sliding-window layers in the KV cache (llama.cpp's --swa-full). Off by default:
    /// those layers give back the blocks their window has passed (<see cref="KvCache.KvCacheGroups"/>), so long
    /// contexts of Gemma 3 or gpt-oss hold much less KV.</summary>
    public bool SwaFull { get; init; }
    /// <summary>Automatic prefix caching (vLLM's APC; off with --no-prefix-caching).</summary>
    public bool EnablePrefixCaching { get; init; } = true;
    /// <summary>Directory of the prefix cache's disk tier (--prefix-cache-dir); null = memory only.</summary>
    public string? PrefixCacheDir { get; init; }
    /// <summary>Most bytes the disk tier keeps (--prefix-cache-disk-size); the oldest files go first.</summary>
    public long PrefixCacheDiskBytes { get; init; } = 8L << 30;
    /// <summary>Speculative decoding (vLLM's --speculative-config); null = off.</summary>
    internal Speculation.SpeculativeConfig? Speculative { get; init; }
    /// <summary>Pooling of embedding requests that name none (--pooling); null = the model's <c>pooling_type</c>, else mean.</summary>
    public Pooling.PoolingType? Pooling { get; init; }
    /// <summary>The model's name in request traces (<c>gen_ai.request.model</c>, see <see cref="EngineTelemetry"/>); null =
    /// the model file's name without its extension.</summary>
    public string? ModelName { get; init; }
    /// <summary>Where the engine reports degraded operation (e.g. the disk tier turning itself off); null = stderr.</summary>
    public Action<string>? Warn { get; init; }

    public EngineOptions Validate()
    {
        static void Check(bool ok, string field, string msg)
        {
            if (!ok) throw new InvalidRequestException($"{field} {msg}", field);
        }
        Check(Threads is >= 1 and <= 256, "threads", $"must be between 1 and 256, got {Threads}");
        Check(MaxModelLen >= 8, "max_model_len", $"must be at least 8, got {MaxModelLen}");
        Check(MaxNumSeqs >= 1, "max_num_seqs", $"must be at least 1, got {MaxNumSeqs}");
        Check(MaxNumBatchedTokens >= MaxNumSeqs, "max_num_batched_tokens", $"must be at least max_num_seqs ({MaxNumSeqs}), got {MaxNumBatchedTokens}");
        Check(MaxQueuedRequests >= 0, "max_queued_requests", $"must not be negative, got {MaxQueuedRequests}");
        Check(BlockSize is 8 or 16 or 32, "block_size", $"must be 8, 16 or 32, got {BlockSize}");
        Check(KvCacheMemoryBytes is null or > 0, "kv_cache_memory", "must be positive");
        Check(KvCacheFraction is > 0 and <= 0.9, "kv_cache_fraction", $"must be in (0, 0.9], got {KvCacheFraction}");
        Check(PrefixCacheDiskBytes > 0, "prefix_cache_disk_size", "must be positive");
        Speculative?.Validate();
        return this;
    }
}
