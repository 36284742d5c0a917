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
internal sealed unsafe class MatMul : IParallelWork, IDisposable
{
    private readonly ComputePool _pool;
    private readonly NativeBuffer<float>[] _scratch;
    private readonly NativeBuffer<sbyte> _q;
    private readonly NativeBuffer<float> _d, _s;
    private readonly NativeBuffer<short> _bsums;
    private readonly NativeBuffer<int> _sums;
    private readonly int _maxTokens, _maxCols;

    public IsaLevel Level { get; }
    public MatMulPrecision Precision { get; }

    private ActivationView _input;
    private ActivationFormat? _quantizedAs;

    // current job
    private enum Job { Quantize, Multiply }
    private Job _job;
    private const int RowAlign = 16;  // tasks start at multiples of 16 rows (the kernels' row tiles and packed groups)
    private readonly WeightMatrix[] _jobW = new WeightMatrix[3];
    private readonly MatMulKernel[] _jobKernel = new MatMulKernel[3];
    private readonly nint[] _jobY = new nint[3];
    private readonly int[] _jobStride = new int[3];
    private readonly int[] _jobUnitStart = new int[4];
    private int _jobCount, _units, _tasks;
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
            _sums = new NativeBuffer<int>((long)maxTokens * (maxCols / 32 + 1));
        }
        else
        {
            _q = new NativeBuffer<sbyte>(1);
            _d = _s = new NativeBuffer<float>(1);
            _bsums = new NativeBuffer<short>(1);
            _sums = new NativeBuffer<int>(1);
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
        Prepare(0, w, y, yStride);
        Dispatch(1);
    }

    /// <summary>Several matrices on the current input in one parallel run (Q, K and V; gate and up): one barrier
    /// instead of one per matrix, and the threads balance over all their rows. Falls back to one run per matrix
    /// when their activation formats differ.</summary>
    public void Run(WeightMatrix a, float* ya, int sa, WeightMatrix b, float* yb, int sb, WeightMatrix? c = null, float* yc = null, int sc = 0)
    {
        var fa = KernelFor(a.Type).Format;
        if (KernelFor(b.Type).Format != fa || (c != null && KernelFor(c.Type).Format != fa))
        {
            Run(a, ya, sa);
            Run(b, yb, sb);
            if (c != null) Run(c, yc, sc);
            return;
        }
        Prepare(0, a, ya, sa);
        Prepare(1, b, yb, sb);
        if (c != null) Prepare(2, c, yc, sc);
        Dispatch(c != null ? 3 : 2);
    }

    private void Prepare(int job, WeightMatrix w, float* y, int yStride)
    {
        if (w.Cols != _input.Cols) throw new ArgumentException($"{w.Name} has {w.Cols} inputs but the input rows have {_input.Cols}");
        var kernel = KernelFor(w.Type);
        if (kernel.ScratchFloats(w.Cols) > _scratch[0].Length)
            throw new InvalidOperationException($"{kernel.GetType().Name} needs more per-thread scratch than the matmul allocated");
        if (kernel.Format != ActivationFormat.F32 && _quantizedAs != kernel.Format) Quantize(kernel.Format);
        _jobW[job] = w;
        _jobKernel[job] = kernel;
        _jobY[job] = (nint)y;
        _jobStride[job] = yStride;
    }

    private void Dispatch(int jobs)
    {
        _job = Job.Multiply;
        _jobCount = jobs;
        int units = 0;
        for (int j = 0; j < jobs; j++)
        {
            _jobUnitStart[j] = units;
            units += (_jobW[j].Rows + RowAlign - 1) / RowAlign;
        }
        _jobUnitStart[jobs] = units;
        _units = units;
        // more tasks than threads so uneven progress balances; each task a contiguous, tile-aligned row range
        _tasks = WorkSplit.TaskCount(units, _pool.Threads, minChunk: Math.Max(1, 16 / Math.Max(1, _input.Tokens)), tasksPerThread: 8);
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
        _input.Sums = _sums.Pointer;
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
                    _input.D + (long)t * (cols / bs), _input.S + (long)t * (cols / 32), _input.BSums + (long)t * (cols / 16), Level,
                    _input.Sums + (long)t * (cols / 32));
            return;
        }
        var (u0, u1) = WorkSplit.Range(_units, _tasks, task);
        for (int job = 0; job < _jobCount && u0 < u1; job++)
        {
            int js = _jobUnitStart[job], je = _jobUnitStart[job + 1];
            int a = Math.Max(u0, js), b = Math.Min(u1, je);
            if (a >= b) continue;
            var w = _jobW[job];
            int r0 = (a - js) * RowAlign, r1 = Math.Min(w.Rows, (b - js) * RowAlign);
            if (r0 < r1) _jobKernel[job].Compute(w, _input, (float*)_jobY[job], _jobStride[job], r0, r1, Level, _scratch[thread].Pointer);
        }
    }

    public void Dispose()
    {
        foreach (var s in _scratch) s.Dispose();
        _q.Dispose(); _d.Dispose(); _s.Dispose(); _bsums.Dispose(); _sums.Dispose();
    }
}
