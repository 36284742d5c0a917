#!/usr/bin/env bash
# One-thread microbenchmark of the attention kernels on a qwen3-0.6b-shaped KV cache (28 layers, 8 KV heads of 128,
# GQA group 2, blocks of 16 placed in order): every layer and KV head attends once per repetition, and the best of
# REPS repetitions is printed as ns per (query token × cached position × KV head) and GFMA/s (multiply-adds of
# q·k and p·v, 2·group·head_dim per position). Wall clock, one thread: other load on the machine disturbs it, so
# compare builds alternately (SHARPINFER_DLL=path runs another build's SharpInfer.dll).
#   bench/attention-micro.sh TYPE DEPTH [TILE]     TYPE F16|F32|Q8_0|Q4_0; TILE 0 (default): one decode token per
#                                                   (layer, head) through PagedAttention.Attend; TILE 1..16: a prefill
#                                                   tile of that many tokens ending at DEPTH (TileAttention512, AVX-512)
# LAYERS (default 28) fewer layers, e.g. 1 to run from the caches instead of DRAM; REPS (default 8).
# The harness is written to a temporary folder outside the repository, like bench/kernel-micro.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/micro-harness.sh"
micro_project attention-micro
cat > "$dir/Program.cs" <<'CS'
using System;
using System.Diagnostics;
using System.Runtime.InteropServices;
using SharpInfer.KvCache;
using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tensors.Attention;

unsafe
{
    var type = Enum.Parse<KvDataType>(args[0]);
    int depth = int.Parse(args[1]), tile = args.Length > 2 ? int.Parse(args[2]) : 0;
    int layers = int.Parse(Environment.GetEnvironmentVariable("LAYERS") ?? "28"), reps = int.Parse(Environment.GetEnvironmentVariable("REPS") ?? "8");
    const int heads = 8, D = 128, G = 2, bs = 16;
    int nb = (depth + bs - 1) / bs, tokens = Math.Max(1, tile);
    var cache = new PagedKvCache(layers, heads, D, bs, nb + 1, type);
    var rng = new Random(1);
    var row = new float[D];
    for (int l = 0; l < layers; l++)
        for (int b = 0; b < nb; b++)
            for (int h = 0; h < heads; h++)
                for (int j = 0; j < bs; j++)
                {
                    for (int d = 0; d < D; d++) row[d] = (float)(rng.NextDouble() * 2 - 1);
                    fixed (float* r = row) cache.KeyFormat.WriteRow(r, cache.KeyBlock(l, b, h) + j * cache.KeyFormat.RowBytes(D), D, IsaLevel.Scalar);
                    for (int d = 0; d < D; d++) row[d] = (float)(rng.NextDouble() * 2 - 1);
                    fixed (float* r = row) cache.ValueFormat.WriteRow(r, cache.ValueBlock(l, b, h) + j * cache.ValueFormat.RowBytes(D), D, IsaLevel.Scalar);
                }
    var table = new BlockTable();
    for (int b = 0; b < nb; b++) table.Add(b);
    int qFloats = tokens * heads * G * D;
    float* q = (float*)NativeMemory.AlignedAlloc((nuint)(4 * qFloats), 64), o = (float*)NativeMemory.AlignedAlloc((nuint)(4 * qFloats), 64);
    for (int i = 0; i < qFloats; i++) q[i] = (float)(rng.NextDouble() * 2 - 1) * 0.1f;
    long sf = PagedAttention.ScratchFloats(G, D, bs) + TileAttention512.ScratchFloats(G, D, bs);
    float* scratch = (float*)NativeMemory.AlignedAlloc((nuint)(4 * sf), 64);
    float scale = 1f / MathF.Sqrt(D);
    double best = double.MaxValue;
    for (int rep = 0; rep < reps; rep++)
    {
        long t0 = Stopwatch.GetTimestamp();
        for (int l = 0; l < layers; l++)
            for (int h = 0; h < heads; h++)
                if (tile > 0) TileAttention512.Attend(cache, l, h, table, depth - tile, tile, q + h * G * D, o + h * G * D, heads * G * D, G, D, scale, scratch);
                else PagedAttention.Attend(cache, l, h, table, depth, q, o, G, D, scale, scratch);
        best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
    }
    double work = (double)layers * heads * depth * tokens;
    Console.WriteLine($"{type} depth {depth} {(tile > 0 ? $"tile of {tile}" : "decode")}, {layers} layers: best {best:F2} ms, "
        + $"{best * 1e6 / work:F2} ns per token·position·KV head, {work * G * D * 2 / best / 1e6:F1} GFMA/s  (o[0] = {o[0]:R})");
}
CS
micro_run "$@"
