using System.Runtime.InteropServices;
using SharpInfer.Runtime;
using SharpInfer.Tensors;
using SharpInfer.Tensors.Kernels;

namespace SharpInfer.Tests.Tensors.Kernels;

/// <summary>
/// Checks a matmul kernel on every instruction path this CPU has: against the scalar reference dot products (same
/// weights, same quantized activations; tolerance from float summation order), and for batch invariance: a token's
/// outputs are bit-identical whether computed alone or with other tokens, and whatever the row range.
/// </summary>
internal static unsafe class KernelHarness
{
    public static IEnumerable<IsaLevel> Levels() =>
        Enum.GetValues<IsaLevel>().Where(l => l <= Isa.Best);

    public static void Check(GgmlType wType, MatMulKernel kernel, int rows, int cols, int tokens, int seed)
    {
        var rng = new Random(seed);
        long rowBytes = GgmlTypeInfo.RowSize(wType, cols);
        byte[] weights = new byte[rowBytes * rows];
        var rowFloats = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < cols; i++) rowFloats[i] = (float)(Gaussian(rng) * (1 + (i % 7) * 0.1));
            Quantize.Row(wType, rowFloats, weights.AsSpan((int)(r * rowBytes), (int)rowBytes));
        }
        var x = new float[tokens * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(Gaussian(rng) * (i % 13 == 0 ? 4 : 1));
        Check(wType, kernel, weights, rows, cols, x, tokens);
    }

    /// <summary>As above on given weight bytes (rows × row size) and activations (tokens × cols).</summary>
    public static void Check(GgmlType wType, MatMulKernel kernel, byte[] weights, int rows, int cols, float[] x, int tokens)
    {
        using var input = new QuantizedInput(kernel.Format, x, tokens, cols);
        fixed (byte* wp = weights)
        {
            var w = new WeightMatrix("w", wType, rows, cols, wp);
            // reference and error bounds
            var reference = new float[tokens * rows];
            var bound = new double[tokens * rows];
            var wDeq = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                Dequantize.Row(wType, w.RowSpan(r), wDeq);
                for (int t = 0; t < tokens; t++)
                {
                    reference[t * rows + r] = kernel.Format == ActivationFormat.F32
                        ? ReferenceDot.F32Activations(wType, w.RowSpan(r), x.AsSpan(t * cols, cols))
                        : ReferenceDot.QuantizedActivations(wType, w.RowSpan(r), input.GgmlBlocks(t));
                    double mag = 0;
                    for (int i = 0; i < cols; i++) mag += Math.Abs(wDeq[i] * (double)x[t * cols + i]);
                    bound[t * rows + r] = 2e-6 * mag * Math.Sqrt(cols / 32.0) + 1e-6;
                }
            }
            var scratch = new float[Math.Max(1, kernel.ScratchFloats(cols))];
            foreach (var level in Levels())
            {
                var all = Compute(kernel, w, input.View, rows, level, scratch, 0, rows);
                for (int i = 0; i < all.Length; i++)
                    Assert.True(Math.Abs(all[i] - reference[i]) <= bound[i],
                        $"{wType} {level}: output {i} = {all[i]} vs reference {reference[i]} (bound {bound[i]:G3})");
                // batch invariance: each token alone
                for (int t = 0; t < tokens; t++)
                {
                    var alone = Compute(kernel, w, input.Token(t), rows, level, scratch, 0, rows);
                    for (int r = 0; r < rows; r++)
                        Assert.True(BitConverter.SingleToInt32Bits(alone[r]) == BitConverter.SingleToInt32Bits(all[t * rows + r]),
                            $"{wType} {level}: token {t} row {r} differs alone ({alone[r]}) and batched ({all[t * rows + r]})");
                }
                // row-range invariance: split the rows at an odd point
                int split = Math.Min(rows, 1 + rows / 3);
                var a = Compute(kernel, w, input.View, rows, level, scratch, 0, split);
                var b = Compute(kernel, w, input.View, rows, level, scratch, split, rows);
                for (int t = 0; t < tokens; t++)
                    for (int r = 0; r < rows; r++)
                    {
                        float v = r < split ? a[t * rows + r] : b[t * rows + r];
                        Assert.True(BitConverter.SingleToInt32Bits(v) == BitConverter.SingleToInt32Bits(all[t * rows + r]),
                            $"{wType} {level}: row {r} token {t} depends on the row range");
                    }
            }
        }
    }

    private static float[] Compute(MatMulKernel k, WeightMatrix w, ActivationView x, int rows, IsaLevel level, float[] scratch, int r0, int r1)
    {
        var y = new float[x.Tokens * rows];
        fixed (float* yp = y)
        fixed (float* sp = scratch)
            k.Compute(w, x, yp, rows, r0, r1, level, sp);
        return y;
    }

    public static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>Activations in the kernel's format (quantized the engine's way), plus ggml's block layout of the same
    /// values for the reference dot products.</summary>
    public sealed class QuantizedInput : IDisposable
    {
        private readonly GCHandle[] _pins;
        private readonly float[] _x;
        private readonly sbyte[] _q;
        private readonly float[] _d, _s;
        private readonly short[] _bsums;
        private readonly int[] _sums;
        private readonly ActivationFormat _format;
        private readonly int _cols;
        public ActivationView View;

        public QuantizedInput(ActivationFormat format, float[] x, int tokens, int cols)
        {
            _format = format;
            _cols = cols;
            _x = x;
            _q = new sbyte[tokens * cols];
            _d = new float[tokens * cols / 32 + 1];
            _s = new float[tokens * cols / 32 + 1];
            _bsums = new short[tokens * cols / 16 + 1];
            _sums = new int[tokens * cols / 32 + 1];
            _pins = [GCHandle.Alloc(_x, GCHandleType.Pinned), GCHandle.Alloc(_q, GCHandleType.Pinned), GCHandle.Alloc(_d, GCHandleType.Pinned),
                     GCHandle.Alloc(_s, GCHandleType.Pinned), GCHandle.Alloc(_bsums, GCHandleType.Pinned),
                     GCHandle.Alloc(_sums, GCHandleType.Pinned)];
            View = new ActivationView
            {
                F32 = (float*)_pins[0].AddrOfPinnedObject(),
                Tokens = tokens,
                Cols = cols,
                Q = (sbyte*)_pins[1].AddrOfPinnedObject(),
                D = (float*)_pins[2].AddrOfPinnedObject(),
                S = (float*)_pins[3].AddrOfPinnedObject(),
                BSums = (short*)_pins[4].AddrOfPinnedObject(),
                Sums = (int*)_pins[5].AddrOfPinnedObject(),
            };
            if (format == ActivationFormat.F32) return;
            int bs = ActivationQuantizer.BlockSize(format);
            for (int t = 0; t < tokens; t++)
                ActivationQuantizer.Row(format, View.F32 + t * cols, cols, View.Q + t * cols, View.D + t * (cols / bs),
                    View.S + t * (cols / 32), View.BSums + t * (cols / 16), Isa.Best, View.Sums + t * (cols / 32));
        }

        /// <summary>A view of token t alone.</summary>
        public ActivationView Token(int t)
        {
            int bs = _format == ActivationFormat.F32 ? 32 : ActivationQuantizer.BlockSize(_format);
            return new ActivationView
            {
                F32 = View.F32 + t * _cols,
                Tokens = 1,
                Cols = _cols,
                Q = View.Q + t * _cols,
                D = View.D + t * (_cols / bs),
                S = View.S + t * (_cols / 32),
                BSums = View.BSums + t * (_cols / 16),
                Sums = View.Sums + t * (_cols / 32),
            };
        }

        /// <summary>Token t in ggml's block layout (block_q8_0 / block_q8_1 / block_q8_K).</summary>
        public byte[] GgmlBlocks(int t)
        {
            var v = Token(t);
            var ms = new MemoryStream();
            var bw = new BinaryWriter(ms);
            switch (_format)
            {
                case ActivationFormat.Q8_0:
                case ActivationFormat.Q8_1:
                    for (int b = 0; b < _cols / 32; b++)
                    {
                        bw.Write(Fp16.FromFloat(v.D[b]));
                        if (_format == ActivationFormat.Q8_1) bw.Write(Fp16.FromFloat(v.S[b]));
                        for (int j = 0; j < 32; j++) bw.Write(v.Q[b * 32 + j]);
                    }
                    break;
                case ActivationFormat.Q8_K:
                    for (int b = 0; b < _cols / 256; b++)
                    {
                        bw.Write(v.D[b]);
                        for (int j = 0; j < 256; j++) bw.Write(v.Q[b * 256 + j]);
                        for (int j = 0; j < 16; j++) bw.Write(v.BSums[b * 16 + j]);
                    }
                    break;
                default:
                    throw new InvalidOperationException("float activations have no ggml block form");
            }
            bw.Flush();
            return ms.ToArray();
        }

        public void Dispose()
        {
            foreach (var p in _pins) p.Free();
        }
    }
}
