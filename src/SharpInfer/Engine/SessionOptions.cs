using SharpInfer.KvCache;
using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Engine;

/// <summary>Options of a single-sequence inference session (CLI run/chat/bench). Names follow llama.cpp's flags.</summary>
internal sealed record SessionOptions
{
    /// <summary>Compute threads (-t).</summary>
    public int Threads { get; init; } = ComputePool.DefaultThreads;
    /// <summary>Context size in tokens (-c); capped by the model's trained context. The KV cache is sized for it.</summary>
    public int ContextLength { get; init; } = 4096;
    /// <summary>Largest number of tokens in one forward pass (-b); longer prompts are processed in chunks.</summary>
    public int BatchSize { get; init; } = 512;
    /// <summary>KV cache element type (--cache-type).</summary>
    public KvDataType KvType { get; init; } = KvDataType.F16;
    /// <summary>Value cache element type (--cache-type-v); null: as keys.</summary>
    public KvDataType? KvValueType { get; init; }
    public int KvBlockSize { get; init; } = 16;
    public MatMulPrecision Precision { get; init; } = MatMulPrecision.Fast;
    /// <summary>Instruction path override (null: the best the CPU has, or SHARPINFER_ISA).</summary>
    public IsaLevel? Isa { get; init; }
    /// <summary>Reuse the KV of earlier prompts and replies through the engine's prefix cache (on by default).</summary>
    public bool PrefixCaching { get; init; } = true;
    /// <summary>Speculative decoding (--speculative-config / --draft-max); null = off.</summary>
    public Speculation.SpeculativeConfig? Speculative { get; init; }

    public SessionOptions Validate()
    {
        if (Threads < 1 || Threads > 256) throw new InvalidRequestException($"threads must be between 1 and 256, got {Threads}", "threads");
        if (ContextLength < 8) throw new InvalidRequestException($"context size must be at least 8, got {ContextLength}", "ctx_size");
        if (BatchSize < 1) throw new InvalidRequestException($"batch size must be at least 1, got {BatchSize}", "batch_size");
        if (KvBlockSize is not (8 or 16 or 32)) throw new InvalidRequestException($"block size must be 8, 16 or 32, got {KvBlockSize}", "block_size");
        Speculative?.Validate();
        return this;
    }
}
