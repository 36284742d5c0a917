using SharpInfer.KvCache;
using SharpInfer.Tests.Tensors.Kernels;

namespace SharpInfer.Tests.Tensors;

/// <summary>
/// One sequence of random keys and values in a one-layer, one-KV-head F32 paged cache, in shuffled blocks (two spare
/// blocks, so the table is not the identity), and the naive attention over it in double that kernel tests compare
/// the paged kernel against. F32 stores exactly, so the reference sees the very values the kernel reads.
/// </summary>
internal sealed unsafe class RandomKvSequence : IDisposable
{
    private readonly float[,] _keys, _values;

    public PagedKvCache Cache { get; }
    public BlockTable Table { get; } = new();
    public int Length { get; }
    public int HeadDim { get; }

    /// <summary>Draws, in this order: the block order, then per position each dimension's key and value (a seed's data
    /// depends on that order). <paramref name="keyScale"/> multiplies a position's keys (to move the running max).</summary>
    public RandomKvSequence(Random rng, int blockSize, int headDim, int length, Func<int, float>? keyScale = null)
    {
        int nBlocks = (length + blockSize - 1) / blockSize;
        Length = length;
        HeadDim = headDim;
        Cache = new PagedKvCache(1, 1, headDim, blockSize, nBlocks + 2, KvDataType.F32);
        foreach (var b in Enumerable.Range(0, nBlocks + 2).OrderBy(_ => rng.Next()).Take(nBlocks)) Table.Add(b);
        _keys = new float[length, headDim];
        _values = new float[length, headDim];
        for (int p = 0; p < length; p++)
        {
            float scale = keyScale?.Invoke(p) ?? 1f;
            float* kb = (float*)(Cache.KeyBlock(0, Table[p / blockSize], 0) + (p % blockSize) * Cache.KeyFormat.RowBytes(headDim));
            float* vb = (float*)(Cache.ValueBlock(0, Table[p / blockSize], 0) + (p % blockSize) * Cache.ValueFormat.RowBytes(headDim));
            for (int d = 0; d < headDim; d++)
            {
                kb[d] = _keys[p, d] = (float)KernelHarness.Gaussian(rng) * scale;
                vb[d] = _values[p, d] = (float)KernelHarness.Gaussian(rng);
            }
        }
    }

    /// <summary>Softmax attention of each of the <paramref name="group"/> query heads in <paramref name="q"/> over
    /// positions <paramref name="first"/> to the end, in double. With <paramref name="sinks"/>, a head's sink joins the
    /// softmax's max and denominator as a score without a value (gpt-oss).</summary>
    public double[] NaiveAttention(float[] q, int group, float scale, int first, float[]? sinks = null)
    {
        int D = HeadDim;
        var want = new double[group * D];
        for (int h = 0; h < group; h++)
        {
            var s = new double[Length];
            for (int p = first; p < Length; p++)
            {
                double dot = 0;
                for (int d = 0; d < D; d++) dot += (double)q[h * D + d] * _keys[p, d];
                s[p] = dot * scale;
            }
            double max = s.Skip(first).Max(), sum = 0;
            if (sinks != null)
            {
                max = Math.Max(max, sinks[h]);
                sum = Math.Exp(sinks[h] - max);
            }
            for (int p = first; p < Length; p++) { s[p] = Math.Exp(s[p] - max); sum += s[p]; }
            for (int p = first; p < Length; p++)
                for (int d = 0; d < D; d++) want[h * D + d] += s[p] / sum * _values[p, d];
        }
        return want;
    }

    public void Dispose() => Cache.Dispose();
}
