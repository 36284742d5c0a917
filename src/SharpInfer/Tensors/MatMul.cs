using SharpInfer.Runtime;
using SharpInfer.Tensors.Kernels;

namespace SharpInfer.Tensors;

/// <summary>How matrix products treat activations.</summary>
public enum MatMulPrecision
{
    /// <summary>Activations stay float; quantized weights are dequantized exactly block by block (matches
    /// llama.cpp run on weights converted to F32).</summary>
    Exact,
    /// <summary>Like llama.cpp's CPU backend: activations are quantized to 8 bits (Q8_0 / Q8_K) for quantized
    /// weights and multiplied with int8 dot products; float weights keep float activations.</summary>
    Fast,
}

/// <summary>
/// y = W·x for a batch of tokens: <c>y[t·yStride + r] = dot(W row r, x token t)</c>. Set the input once with
/// <see cref="SetInput"/>, then run any number of matrices on it: quantized forms of the input are computed on first
/// use and shared (Q, K and V projections quantize their common input once). Rows are split across the compute
/// pool; each output is computed by one thread with a fixed sequence of operations (see <see cref="MatMulKernel"/>),
/// so results are batch-invariant.
/// </summary>
public sealed unsafe class MatMul : IParallelWork, IDisposable
{
    private readonly ComputePool _pool;
    private readonly NativeBuffer<float>[] _scratch;
    private readonly NativeBuffer<sbyte> _q;
    private readonly NativeBuffer<float> _d, _s;
    private readonly NativeBuffer<short> _bsums;
    private readonly int _maxTokens, _maxCols;

    public IsaLevel Level { get; }
    public MatMulPrecision Precision { get; }

    private ActivationView _input;
    private ActivationFormat? _quantizedAs;

    // current job
    private enum Job { Quantize, Multiply }
    private Job _job;
    private WeightMatrix _w = null!;
    private MatMulKernel _kernel = null!;
    private float* _y;
    private int _yStride, _tasks, _rowAlign;
    private ActivationFormat _quantFormat;

    public MatMul(ComputePool pool, int maxTokens, int maxCols, MatMulPrecision precision = MatMulPrecision.Fast, IsaLevel? level = null)
    {
        _pool = pool;
        _maxTokens = maxTokens;
        _maxCols = maxCols;
        Precision = precision;
        Level = level ?? Isa.Level;
        _scratch = new NativeBuffer<float>[pool.Threads];
        for (int i = 0; i < _scratch.Length; i++) _scratch[i] = new NativeBuffer<float>(KernelRegistry.MaxScratchFloats(maxCols));
        if (precision == MatMulPrecision.Fast)
        {
            _q = new NativeBuffer<sbyte>((long)maxTokens * maxCols);
            _d = new NativeBuffer<float>((long)maxTokens * (maxCols / 32 + 1));
            _s = new NativeBuffer<float>((long)maxTokens * (maxCols / 32 + 1));
            _bsums = new NativeBuffer<short>((long)maxTokens * (maxCols / 16 + 1));
        }
        else
        {
            _q = new NativeBuffer<sbyte>(1);
            _d = _s = new NativeBuffer<float>(1);
            _bsums = new NativeBuffer<short>(1);
        }
    }

    /// <summary>The kernel this instance uses for a weight type.</summary>
    public MatMulKernel KernelFor(GgmlType type) => KernelRegistry.For(type, Precision);

    /// <summary>Sets the input activations (tokens × cols floats) for the following <see cref="Run(WeightMatrix, float*, int)"/> calls.</summary>
    public void SetInput(float* x, int tokens, int cols)
    {
        if (tokens > _maxTokens || cols > _maxCols)
            throw new ArgumentException($"input {tokens}×{cols} exceeds the matmul buffers {_maxTokens}×{_maxCols}");
        _input = new ActivationView { F32 = x, Tokens = tokens, Cols = cols };
        _quantizedAs = null;
    }

    /// <summary>Shorthand for <see cref="SetInput"/> followed by <see cref="Run(WeightMatrix, float*, int)"/>.</summary>
    public void Run(WeightMatrix w, float* x, int tokens, float* y, int yStride)
    {
        SetInput(x, tokens, w.Cols);
        Run(w, y, yStride);
    }

    public void Run(WeightMatrix w, float* y, int yStride)
    {
        if (w.Cols != _input.Cols) throw new ArgumentException($"{w.Name} has {w.Cols} inputs but the input rows have {_input.Cols}");
        var kernel = KernelFor(w.Type);
        if (kernel.Format != ActivationFormat.F32 && _quantizedAs != kernel.Format) Quantize(kernel.Format);
        _job = Job.Multiply;
        _w = w;
        _kernel = kernel;
        _y = y;
        _yStride = yStride;
        _rowAlign = 4;
        int units = (w.Rows + _rowAlign - 1) / _rowAlign;
        // more tasks than threads so uneven progress balances; each task a contiguous, tile-aligned row range
        _tasks = WorkSplit.TaskCount(units, _pool.Threads, minChunk: Math.Max(1, 64 / Math.Max(1, _input.Tokens)), tasksPerThread: 8);
        _pool.Run(this, _tasks);
    }

    private void Quantize(ActivationFormat f)
    {
        int bs = ActivationQuantizer.BlockSize(f);
        if (_input.Cols % bs != 0) throw new ArgumentException($"{_input.Cols} inputs are not a multiple of the {f} block size {bs}");
        _input.Q = _q.Pointer;
        _input.D = _d.Pointer;
        _input.S = _s.Pointer;
        _input.BSums = _bsums.Pointer;
        _job = Job.Quantize;
        _quantFormat = f;
        _tasks = Math.Min(_input.Tokens, _pool.Threads);
        if (_tasks == 1 || _input.Tokens < 4) { for (int t = 0; t < _tasks; t++) Execute(t, 0); }
        else _pool.Run(this, _tasks);
        _quantizedAs = f;
    }

    public void Execute(int task, int thread)
    {
        if (_job == Job.Quantize)
        {
            var (t0, t1) = WorkSplit.Range(_input.Tokens, _tasks, task);
            int cols = _input.Cols, bs = ActivationQuantizer.BlockSize(_quantFormat);
            for (int t = t0; t < t1; t++)
                ActivationQuantizer.Row(_quantFormat, _input.F32 + (long)t * cols, cols, _input.Q + (long)t * cols,
                    _input.D + (long)t * (cols / bs), _input.S + (long)t * (cols / 32), _input.BSums + (long)t * (cols / 16), Level);
            return;
        }
        int units = (_w.Rows + _rowAlign - 1) / _rowAlign;
        var (u0, u1) = WorkSplit.Range(units, _tasks, task);
        int r0 = u0 * _rowAlign, r1 = Math.Min(_w.Rows, u1 * _rowAlign);
        if (r0 < r1) _kernel.Compute(_w, _input, _y, _yStride, r0, r1, Level, _scratch[thread].Pointer);
    }

    public void Dispose()
    {
        foreach (var s in _scratch) s.Dispose();
        _q.Dispose(); _d.Dispose(); _s.Dispose(); _bsums.Dispose();
    }
}
