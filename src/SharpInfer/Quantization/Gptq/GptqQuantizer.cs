using System.Collections.Concurrent;
using SharpInfer.Tensors;

namespace SharpInfer.Quantization.Gptq;

/// <summary>
/// GPTQ (Frantar et al. 2022) into ggml block formats. Columns are rounded left to right; the rounding error of column j,
/// divided by U[j,j], is pushed onto the columns after it along row j of U (the upper Cholesky factor of H⁻¹), which
/// minimises the growth of ‖X·Wᵀ − X·Ŵᵀ‖² given what has been rounded so far. Updates are applied within 128-column
/// blocks at once and to the rest of the row once per block (the paper's lazy batch updates). When a row reaches the
/// first column of a ggml block (a 256-element super-block for the K types), that block's scales are chosen by the
/// format's own quantizer from the current, error-updated weights (importance-weighted by diag(H) where the format
/// supports it); the block's columns are then rounded to the nearest point of that fixed grid and written as its codes,
/// so the result is an ordinary ggml row. Each row depends only on itself and U, so any thread count gives the same bytes.
/// </summary>
internal static class GptqQuantizer
{
    /// <summary>Columns per lazy batch; a multiple of every block size (32 and 256 both divide 256; 128 divides 256 and
    /// is a multiple of 32), so a super-block always starts where the whole row is up to date.</summary>
    private const int LazyBlock = 128;

    /// <summary>Rows that share each pass over U (cache reuse); the bytes do not depend on it.</summary>
    private const int RowTile = 16;

    /// <summary>Quantizes <paramref name="rows"/> rows of <paramref name="n"/> weights (row-major, not modified) into
    /// <paramref name="dst"/> (rows × RowSize(type, n) bytes). <paramref name="u"/>: upper Cholesky factor of the damped
    /// H⁻¹ (n×n); <paramref name="importance"/>: per-column weights for the scale search (diag(H)), or null for the
    /// format's unweighted quantizer. Columns in <paramref name="deadColumns"/> (never activated) are set to zero first.</summary>
    public static void Quantize(GgmlType type, ReadOnlySpan<float> weights, int rows, int n, float[] u, float[]? importance,
        bool[]? deadColumns, Span<byte> dst, int threads)
    {
        if (!BlockCodes.IsSupported(type)) throw new ArgumentException($"GPTQ cannot round into {GgmlTypeInfo.Name(type)}", nameof(type));
        int blockElems = GgmlTypeInfo.BlockSize(type);
        if (n % blockElems != 0) throw new ArgumentException($"row length {n} is not a multiple of {blockElems}", nameof(n));
        if (weights.Length != (long)rows * n) throw new ArgumentException($"{weights.Length} weights for {rows}×{n}", nameof(weights));
        int rowBytes = (int)GgmlTypeInfo.RowSize(type, n);
        if (dst.Length != (long)rows * rowBytes) throw new ArgumentException($"{dst.Length} bytes for {rows} rows of {rowBytes}", nameof(dst));
        var w = weights.ToArray();
        if (deadColumns != null)
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < n; j++)
                    if (deadColumns[j]) w[(long)r * n + j] = 0f;
        var output = new byte[dst.Length];
        int tiles = (rows + RowTile - 1) / RowTile;
        Parallel.ForEach(Partitioner.Create(0, tiles, 1), new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) },
            () => new Scratch(n, blockElems, type),
            (range, _, s) =>
            {
                for (int t = range.Item1; t < range.Item2; t++)
                {
                    int r0 = t * RowTile, count = Math.Min(RowTile, rows - r0);
                    Tile(type, w.AsSpan(r0 * n, count * n), count, n, u, importance, output.AsSpan(r0 * rowBytes, count * rowBytes), rowBytes, blockElems, s);
                }
                return s;
            }, _ => { });
        output.CopyTo(dst);
    }

    private sealed class Scratch(int n, int blockElems, GgmlType type)
    {
        public readonly float[] Errors = new float[RowTile * LazyBlock];
        public readonly float[] Offset = new float[RowTile * blockElems];
        public readonly float[] Step = new float[RowTile * blockElems];
        public readonly byte[] BlockCopy = new byte[GgmlTypeInfo.TypeSize(type)];
        public readonly int MaxCode = BlockCodes.MaxCode(type);
        public readonly int N = n;
    }

    private static void Tile(GgmlType type, Span<float> w, int count, int n, float[] u, float[]? importance,
        Span<byte> output, int rowBytes, int blockElems, Scratch s)
    {
        int blockBytes = GgmlTypeInfo.TypeSize(type);
        for (int b0 = 0; b0 < n; b0 += LazyBlock)
        {
            int b1 = Math.Min(b0 + LazyBlock, n);
            for (int r = 0; r < count; r++)
            {
                var row = w.Slice(r * n, n);
                var outRow = output.Slice(r * rowBytes, rowBytes);
                var offset = s.Offset.AsSpan(r * blockElems, blockElems);
                var step = s.Step.AsSpan(r * blockElems, blockElems);
                for (int j = b0; j < b1; j++)
                {
                    int inBlock = j % blockElems;
                    var block = outRow.Slice(j / blockElems * blockBytes, blockBytes);
                    if (inBlock == 0)
                    {
                        // The block's scales, from the weights as they are now (earlier errors already pushed in).
                        var x = row.Slice(j, blockElems);
                        if (importance != null) WeightedQuantize.Row(type, x, importance.AsSpan(j, blockElems), block);
                        else SharpInfer.Tensors.Quantize.Row(type, x, block);
                        BlockCodes.Grid(type, block, s.BlockCopy, offset, step);
                    }
                    float wj = row[j], st = step[inBlock], off = offset[inBlock];
                    int code = 0;
                    if (st != 0f) code = Math.Clamp((int)MathF.Round((wj - off) / st, MidpointRounding.ToEven), 0, s.MaxCode);
                    BlockCodes.Set(type, block, inBlock, code);
                    float err = (wj - (off + code * st)) / u[(long)j * n + j];
                    s.Errors[r * LazyBlock + (j - b0)] = err;
                    if (err != 0f && j + 1 < b1)
                        InverseHessian.Axpy(row.Slice(j + 1, b1 - j - 1), -err, u.AsSpan((int)((long)j * n + j + 1), b1 - j - 1));
                }
            }
            if (b1 >= n) continue;
            // The lazy update: the rest of each row gets this batch's errors, column after column in a fixed order.
            for (int i = b0; i < b1; i++)
            {
                var ui = u.AsSpan((int)((long)i * n + b1), n - b1);
                for (int r = 0; r < count; r++)
                {
                    float err = s.Errors[r * LazyBlock + (i - b0)];
                    if (err != 0f) InverseHessian.Axpy(w.Slice(r * n + b1, n - b1), -err, ui);
                }
            }
        }
    }
}
