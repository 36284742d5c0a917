#!/usr/bin/env bash
# Thread-CPU-time microbenchmark of one matmul kernel on DRAM-resident weights (24 random 2048×5632 matrices,
# ~156 MB for Q4_K), M tokens, one thread: prints GB/s of weight bytes (decode) and GFLOP/s (prefill, large M)
# per second of thread CPU time, so other
# load on the machine disturbs it less than wall-clock numbers (it still shares the memory bus).
#   bench/kernel-micro.sh TYPE [M] [pack 0|1] [IsaLevel]        e.g. bench/kernel-micro.sh Q4_K 1 1
# MICRO_ROWS / MICRO_COLS (default 2048 × 5632) set another matrix shape, e.g. a model's ffn_gate (5632 × 2048);
# MICRO_NMAT (default 24) fewer matrices, e.g. 2 to run from the last-level cache instead of DRAM.
# The harness runs with tiered compilation off, like the sharpinfer CLI (no PGO: the JIT allocates registers
# differently without it, see docs/dotnet.md "JIT tiering"), so it measures the code users get.
# The harness is written to a temporary folder outside the repository (it is not part of the solution) and
# references this checkout's Release build of SharpInfer.dll; it takes the assembly name of a friend assembly
# (SharpInfer.Server) to reach the internal kernel types. For an A/B, run it with the DLL of another commit
# copied over out/SharpInfer.dll (SHARPINFER_DLL=path).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/micro-harness.sh"
micro_project kernel-micro
cat > "$dir/Program.cs" <<'CS'
using System;
// Thread-CPU-time microbenchmark of the matrix-vector kernels (decode, M tokens) on DRAM-resident weights.
// usage: micro TYPE [M] [pack 0|1] [level] ; prints GB/s of weight bytes per thread CPU second
using System.Runtime.InteropServices;
using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tensors.Kernels;

unsafe
{
    var type = Enum.Parse<GgmlType>(args[0]);
    int M = args.Length > 1 ? int.Parse(args[1]) : 1;
    bool pack = args.Length > 2 && args[2] == "1";
    var level = args.Length > 3 ? Enum.Parse<IsaLevel>(args[3]) : Isa.Level;
    int rows = int.TryParse(Environment.GetEnvironmentVariable("MICRO_ROWS"), out var er) ? er : 2048;
    int cols = int.TryParse(Environment.GetEnvironmentVariable("MICRO_COLS"), out var ec) ? ec : 5632;
    int nmat = int.TryParse(Environment.GetEnvironmentVariable("MICRO_NMAT"), out var en) ? en : 24;
    long rowBytes = GgmlTypeInfo.RowSize(type, cols);
    var rng = new Random(1);
    var mats = new WeightMatrix[nmat];
    int bb = (int)(GgmlTypeInfo.RowSize(type, 256));
    for (int i = 0; i < nmat; i++)
    {
        byte* p = (byte*)NativeMemory.AlignedAlloc((nuint)(rowBytes * rows), 4096);
        var span = new Span<byte>(p, (int)(rowBytes * rows));
        rng.NextBytes(span);
        // finite, small scales at the format's half offsets
        for (long b = 0; b < rowBytes * rows / bb; b++)
        {
            byte* blk = p + b * bb;
            if (type == GgmlType.Q4_K || type == GgmlType.Q5_K) { *(ushort*)blk = Fp16.FromFloat(0.01f); *(ushort*)(blk + 2) = Fp16.FromFloat(0.02f); }
            else if (type == GgmlType.Q6_K) *(ushort*)(blk + bb - 2) = Fp16.FromFloat(0.01f);
        }
        if (type == GgmlType.F16) // finite halves in [-1, 1)
            for (long e = 0; e < rowBytes * rows / 2; e++) ((ushort*)p)[e] = Fp16.FromFloat((float)(rng.NextDouble() * 2 - 1));
        if (type == GgmlType.Q4_0 || type == GgmlType.Q8_0)
        {
            int b32 = type == GgmlType.Q4_0 ? 18 : 34;
            for (long b = 0; b < rowBytes * rows / b32; b++) *(ushort*)(p + b * b32) = Fp16.FromFloat(0.01f);
        }
        mats[i] = new WeightMatrix("m" + i, type, rows, cols, p);
    }
    var packing = new WeightPacking();
    if (pack) packing.Pack(mats, level);
    Console.WriteLine($"{type} M={M} level={level} packed={(mats[0].Packed != null)} packedBytes={packing.Bytes}");
    var kernel = KernelRegistry.For(type, MatMulPrecision.Fast);
    var x = new float[M * cols];
    for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
    var q = new sbyte[M * cols]; var d = new float[M * cols / 32 + 1]; var s = new float[M * cols / 32 + 1];
    var bs = new short[M * cols / 16 + 1]; var sums = new int[M * cols / 32 + 1];
    var y = new float[M * rows];
    var scratch = new float[Math.Max(1, kernel.ScratchFloats(cols))];
    fixed (float* xp = x) fixed (sbyte* qp = q) fixed (float* dp = d) fixed (float* sp = s) fixed (short* bp = bs) fixed (int* up = sums)
    fixed (float* yp = y) fixed (float* scp = scratch)
    {
        int bsz = kernel.Format == ActivationFormat.Q8_K ? 256 : 32;
        for (int t = 0; t < M && kernel.Format != ActivationFormat.F32; t++)
            ActivationQuantizer.Row(kernel.Format, xp + t * cols, cols, qp + t * cols, dp + t * (cols / bsz), sp + t * (cols / 32), bp + t * (cols / 16), level, up + t * (cols / 32));
        var view = new ActivationView { F32 = xp, Tokens = M, Cols = cols, Q = qp, D = dp, S = sp, BSums = bp, Sums = up };
        double best = 0;
        for (int rep = 0; rep < 7; rep++)
        {
            long t0 = CpuNs();
            for (int pass = 0; pass < 3; pass++)
                foreach (var w in mats) kernel.Compute(w, view, yp, rows, 0, rows, level, scp);
            long t1 = CpuNs();
            double gbs = 3.0 * nmat * rowBytes * rows / (t1 - t0);
            best = Math.Max(best, gbs);
            double gflops = 2.0 * rows * cols * M * 3 * nmat / (t1 - t0);
            Console.WriteLine($"  rep {rep}: {gbs:F2} GB/s (thread CPU), {(t1 - t0) / 1e6 / (3 * nmat):F3} ms per matrix, {gflops:F1} GFLOP/s");
        }
        Console.WriteLine($"best {best:F2} GB/s  y[5]={y[5]}");
    }
}

static long CpuNs()
{
    Timespec ts;
    clock_gettime(3 /* CLOCK_THREAD_CPUTIME_ID */, out ts);
    return ts.sec * 1_000_000_000L + ts.nsec;
}

[DllImport("libc")] static extern int clock_gettime(int clk, out Timespec ts);
[StructLayout(LayoutKind.Sequential)] struct Timespec { public long sec; public long nsec; }
CS
micro_run "$@"
