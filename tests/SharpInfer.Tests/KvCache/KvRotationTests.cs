using SharpInfer.KvCache;
using SharpInfer.Models;
using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tests.Tensors;
using SharpInfer.Tests.Tensors.Kernels;

namespace SharpInfer.Tests.KvCache;

/// <summary>
/// The Hadamard rotation of quantized KV rows (llama.cpp's attn_rot_k / attn_rot_v): the transform is the orthonormal
/// Sylvester matrix ggml builds, its own inverse; it is applied exactly where llama.cpp applies it; attention over
/// rotated keys and values with a rotated query, rotated back, is attention over the originals; it lowers the
/// quantization error of rows with outlier channels; and attention over a rotated quantized cache equals
/// dequantize-unrotate-then-attend.
/// </summary>
public unsafe class KvRotationTests
{
    /// <summary>ggml_gen_hadamard's matrix: H₁ = [1/√n], H₂ₛ = [[H, H], [H, −H]].</summary>
    private static double[,] Hadamard(int n)
    {
        var h = new double[n, n];
        h[0, 0] = 1 / Math.Sqrt(n);
        for (int s = 1; s < n; s *= 2)
            for (int i = 0; i < s; i++)
                for (int j = 0; j < s; j++)
                {
                    h[i + s, j] = h[i, j];
                    h[i, j + s] = h[i, j];
                    h[i + s, j + s] = -h[i, j];
                }
        return h;
    }

    private static float[] Gaussian(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)KernelHarness.Gaussian(rng);
        return x;
    }

    private static void Rotate(float[] x, int n)
    {
        fixed (float* p = x) KvRotation.Rotate(p, x.Length, n);
    }

    [Theory]
    [InlineData(64)]
    [InlineData(128)]
    [InlineData(256)]
    public void RotateIsTheHadamardMatrixPiecewiseAndItsOwnInverse(int n)
    {
        var x = Gaussian(3 * n, seed: n);
        var y = (float[])x.Clone();
        Rotate(y, n);
        var h = Hadamard(n);
        for (int piece = 0; piece < 3; piece++)
            for (int i = 0; i < n; i++)
            {
                double want = 0;
                for (int j = 0; j < n; j++) want += h[i, j] * x[piece * n + j];
                Assert.True(Math.Abs(y[piece * n + i] - want) <= 1e-5 * (1 + Math.Abs(want)), $"piece {piece} element {i}: {y[piece * n + i]} vs {want}");
            }
        Rotate(y, n);
        for (int i = 0; i < x.Length; i++) Assert.True(Math.Abs(y[i] - x[i]) <= 1e-5f * (1 + Math.Abs(x[i])), $"H·H·x at {i}: {y[i]} vs {x[i]}");
    }

    /// <summary>ggml_compute_forward_fwht_f32's arithmetic, element by element: scale first, then butterflies of span
    /// 1, 2, 4, …; the vector path must give these bits exactly (batch invariance rests on it).</summary>
    [Theory]
    [InlineData(64)]
    [InlineData(128)]
    public void RotateGivesTheScalarButterflysBits(int n)
    {
        var x = Gaussian(4 * n, seed: 100 + n);
        for (int i = 0; i < x.Length; i += 7) x[i] *= 1000;   // outliers: rounding differences would show
        var want = (float[])x.Clone();
        float scale = 1f / MathF.Sqrt(n);
        for (int p = 0; p < want.Length; p += n)
        {
            for (int i = 0; i < n; i++) want[p + i] *= scale;
            for (int len = 1; len < n; len <<= 1)
                for (int b = 0; b < n; b += 2 * len)
                    for (int j = b; j < b + len; j++)
                    {
                        float u = want[p + j], v = want[p + j + len];
                        want[p + j] = u + v;
                        want[p + j + len] = u - v;
                    }
        }
        Rotate(x, n);
        for (int i = 0; i < x.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(x[i]) == BitConverter.SingleToInt32Bits(want[i]), $"element {i}: {x[i]} vs {want[i]}");
    }

    [Fact]
    public void RotateRejectsSizesThatAreNotPowersOfTwoDividingTheRow()
    {
        var x = new float[96];
        Assert.Throws<ArgumentException>(() => Rotate(x, 48));
        Assert.Throws<ArgumentException>(() => Rotate(x, 64));
        Rotate(x, 0);   // no rotation: nothing happens
        Assert.All(x, v => Assert.Equal(0f, v));
    }

    [Theory]
    // llama.cpp: keys rotate over the largest power of two (≥ 64) dividing head_dim, values over 64, both only for
    // quantized types and head_dim a multiple of 64
    [InlineData(KvDataType.Q8_0, 64, 64, 64)]
    [InlineData(KvDataType.Q8_0, 128, 128, 64)]
    [InlineData(KvDataType.Q4_0, 256, 256, 64)]
    [InlineData(KvDataType.Q4_0, 192, 64, 64)]
    [InlineData(KvDataType.Q8_0, 80, 0, 0)]
    [InlineData(KvDataType.Q8_0, 8, 0, 0)]
    [InlineData(KvDataType.F16, 128, 0, 0)]
    [InlineData(KvDataType.F32, 64, 0, 0)]
    public void RotatesWhereLlamaCppRotates(KvDataType type, int headDim, int keySize, int valueSize)
    {
        Assert.Equal(keySize, KvRotation.KeySize(KvFormat.Of(type), headDim));
        Assert.Equal(valueSize, KvRotation.ValueSize(KvFormat.Of(type), headDim));
    }

    [Theory]
    [InlineData(KvDataType.Q8_0)]
    [InlineData(KvDataType.Q4_0)]
    public void RotationLowersTheQuantizationErrorOfRowsWithOutlierChannels(KvDataType type)
    {
        // key rows as models make them: most channels small, a few (the same ones in every row) large
        const int D = 128, rows = 200;
        var format = KvFormat.Of(type);
        var rng = new Random(11);
        var bytes = new byte[format.RowBytes(D)];
        var back = new float[D];
        double plainError = 0, rotatedError = 0;
        for (int r = 0; r < rows; r++)
        {
            var x = new float[D];
            for (int d = 0; d < D; d++) x[d] = (float)KernelHarness.Gaussian(rng) * (d is 5 or 77 ? 25f : 1f);
            plainError += RoundTripError(format, x, 0, bytes, back);
            rotatedError += RoundTripError(format, x, KvRotation.KeySize(format, D), bytes, back);
        }
        Assert.True(rotatedError < 0.5 * plainError, $"{type}: squared error rotated {rotatedError:G4} vs plain {plainError:G4}");
    }

    /// <summary>Squared error of x after rotate, store, widen, rotate back (n = 0: no rotation).</summary>
    private static double RoundTripError(KvFormat format, float[] x, int n, byte[] bytes, float[] back)
    {
        var r = (float[])x.Clone();
        Rotate(r, n);
        fixed (float* rp = r) fixed (byte* bp = bytes) fixed (float* wp = back)
        {
            format.WriteRow(rp, bp, x.Length, IsaLevel.Scalar);
            float* w = format.Widen(bp, wp, 1, x.Length, IsaLevel.Scalar, finite: true);
            if (w != wp) Buffer.MemoryCopy(w, wp, 4L * x.Length, 4L * x.Length);
        }
        Rotate(back, n);
        double e = 0;
        for (int i = 0; i < x.Length; i++) e += (double)(back[i] - x[i]) * (back[i] - x[i]);
        return e;
    }

    [Theory]
    [InlineData(64, 16, 2)]
    [InlineData(128, 8, 4)]
    public void AttentionOverRotatedRowsRotatedBackIsAttentionOverTheOriginals(int D, int bs, int group)
    {
        // f32 caches, so only the rotation differs: A holds k and v, B holds H_k·k and H_v·v; B with H_k·q, its output
        // rotated by H_v, must be A's output up to float rounding (orthonormal H: (Hq)·(Hk) = q·k, Σp·Hv = H·Σp·v)
        const int length = 45;
        int kn = KvRotation.KeySize(KvFormat.Q8_0, D), vn = KvRotation.ValueSize(KvFormat.Q8_0, D);
        var (plain, table) = PagedAttentionTests.MakeCache(1, D, bs, length, KvDataType.F32, seed: D, out var keys, out var values);
        using var a = plain;
        using var b = new PagedKvCache(1, 1, D, bs, plain.BlockCount, KvDataType.F32);
        var row = new float[D];
        for (int p = 0; p < length; p++)
        {
            for (int d = 0; d < D; d++) row[d] = keys[0, p, d];
            Rotate(row, kn);
            fixed (float* r = row) Buffer.MemoryCopy(r, b.KeyBlock(0, table[p / bs], 0) + (p % bs) * 4L * D, 4L * D, 4L * D);
            for (int d = 0; d < D; d++) row[d] = values[0, p, d];
            Rotate(row, vn);
            fixed (float* r = row) Buffer.MemoryCopy(r, b.ValueBlock(0, table[p / bs], 0) + (p % bs) * 4L * D, 4L * D, 4L * D);
        }
        var q = Gaussian(group * D, seed: 7);
        var rq = (float[])q.Clone();
        Rotate(rq, kn);
        var scratch = new float[PagedAttention.ScratchFloats(group, D, bs)];
        float scale = 1f / MathF.Sqrt(D);
        foreach (int len in new[] { 1, bs, length })
        {
            var want = new float[group * D];
            var got = new float[group * D];
            fixed (float* qp = q) fixed (float* rqp = rq) fixed (float* wp = want) fixed (float* gp = got) fixed (float* sp = scratch)
            {
                PagedAttention.Attend(a, 0, 0, table, len, qp, wp, group, D, scale, sp, IsaLevel.Scalar);
                PagedAttention.Attend(b, 0, 0, table, len, rqp, gp, group, D, scale, sp, IsaLevel.Scalar);
            }
            Rotate(got, vn);
            for (int i = 0; i < got.Length; i++)
                Assert.True(Math.Abs(got[i] - want[i]) <= 1e-5f * (1 + Math.Abs(want[i])), $"length {len} output {i}: {got[i]} vs {want[i]}");
        }
    }

    [Theory]
    [InlineData(KvDataType.Q8_0, 64)]
    [InlineData(KvDataType.Q4_0, 64)]
    [InlineData(KvDataType.Q8_0, 128)]
    public void RunOverARotatedQuantizedCacheIsDequantizeUnrotateThenAttend(KvDataType type, int D)
    {
        // rows stored as the model stores them (rotate, then quantize); the reference widens them, rotates them back
        // and attends in double with the unrotated query: Run must rotate q in and the output out by itself
        const int bs = 16, group = 2, kvHeads = 2, length = 37;
        var format = KvFormat.Of(type);
        int kn = KvRotation.KeySize(format, D), vn = KvRotation.ValueSize(format, D);
        Assert.True(kn > 0 && vn > 0);
        var rng = new Random(D);
        int nBlocks = (length + bs - 1) / bs;
        using var cache = new PagedKvCache(1, kvHeads, D, bs, nBlocks, type);
        var table = new BlockTable();
        for (int b = nBlocks - 1; b >= 0; b--) table.Add(b);
        var keys = new float[kvHeads, length, D];
        var values = new float[kvHeads, length, D];
        var row = new float[D];
        var widened = new float[D];
        long rowBytes = format.RowBytes(D);
        for (int g = 0; g < kvHeads; g++)
            for (int p = 0; p < length; p++)
                foreach (bool isKey in new[] { true, false })
                {
                    for (int d = 0; d < D; d++) row[d] = (float)KernelHarness.Gaussian(rng) * (isKey && d == 3 ? 8f : 1f);
                    int n = isKey ? kn : vn;
                    Rotate(row, n);
                    byte* dst = (isKey ? cache.KeyBlock(0, table[p / bs], g) : cache.ValueBlock(0, table[p / bs], g)) + (p % bs) * rowBytes;
                    fixed (float* r = row) fixed (float* w = widened)
                    {
                        format.WriteRow(r, dst, D, IsaLevel.Scalar);
                        format.Widen(dst, w, 1, D, IsaLevel.Scalar, finite: true);
                    }
                    Rotate(widened, n);
                    for (int d = 0; d < D; d++) (isKey ? keys : values)[g, p, d] = widened[d];
                }
        int qd = kvHeads * group * D;
        var q = Gaussian(length * qd, seed: 5);
        var qBefore = (float[])q.Clone();
        var output = new float[length * qd];
        var batch = new ForwardBatch(length, 1);
        int s = batch.AddSequence(table);
        for (int p = 0; p < length; p++) batch.AddToken(s, 0, p, false);
        using var pool = new ComputePool(2);
        float scale = 1f / MathF.Sqrt(D);
        foreach (var level in KernelHarness.Levels())
        {
            using var att = new PagedAttention(pool, PagedAttentionTests.Config(kvHeads * group, kvHeads, D), bs, level);
            fixed (float* qp = q) fixed (float* op = output) att.Run(cache, batch, 0, 0, length, qp, op);
            Assert.Equal(qBefore, q);   // the caller's queries are not rotated in place
            for (int p = 0; p < length; p++)
                for (int h = 0; h < kvHeads * group; h++)
                {
                    int g = h / group;
                    var sc = new double[p + 1];
                    for (int j = 0; j <= p; j++)
                    {
                        double dot = 0;
                        for (int d = 0; d < D; d++) dot += (double)q[p * qd + h * D + d] * keys[g, j, d];
                        sc[j] = dot * scale;
                    }
                    double max = sc.Max(), sum = 0;
                    for (int j = 0; j <= p; j++) { sc[j] = Math.Exp(sc[j] - max); sum += sc[j]; }
                    for (int d = 0; d < D; d++)
                    {
                        double want = 0;
                        for (int j = 0; j <= p; j++) want += sc[j] / sum * values[g, j, d];
                        float got = output[p * qd + h * D + d];
                        Assert.True(Math.Abs(got - want) <= 1e-5 * (1 + Math.Abs(want)), $"{type} D {D} {level}: position {p} head {h} dim {d}: {got} vs {want}");
                    }
                }
        }
    }
}
