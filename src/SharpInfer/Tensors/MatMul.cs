using SharpInfer.Runtime;

namespace SharpInfer.Tensors;

/// <summary>
/// y = W·x for a batch of tokens: <c>y[t * yStride + r] = dot(W row r, x[t * W.Cols ..])</c>.
/// Work is split across the compute pool by rows; each output element is computed by one thread with the same
/// sequence of operations whatever the number of tokens, so results are batch-invariant.
/// </summary>
public sealed unsafe class MatMul : IParallelWork, IDisposable
{
    /// <summary>Rows dequantized together, so each token's activations are read once per group.</summary>
    private const int RowGroup = 8;

    private readonly ComputePool _pool;
    private readonly NativeBuffer<float>[] _scratch;   // per thread: RowGroup dequantized rows

    // the current job (set before each run)
    private WeightMatrix _w = null!;
    private float* _x, _y;
    private int _tokens, _yStride, _tasks;

    public MatMul(ComputePool pool, int maxCols)
    {
        _pool = pool;
        _scratch = new NativeBuffer<float>[pool.Threads];
        for (int i = 0; i < _scratch.Length; i++) _scratch[i] = new NativeBuffer<float>((long)RowGroup * maxCols);
    }

    public void Run(WeightMatrix w, float* x, int tokens, float* y, int yStride)
    {
        _w = w; _x = x; _y = y; _tokens = tokens; _yStride = yStride;
        int groups = (w.Rows + RowGroup - 1) / RowGroup;
        _tasks = WorkSplit.TaskCount(groups, _pool.Threads, minChunk: 4);
        _pool.Run(this, _tasks);
    }

    public void Execute(int task, int thread)
    {
        int groups = (_w.Rows + RowGroup - 1) / RowGroup;
        var (g0, g1) = WorkSplit.Range(groups, _tasks, task);
        int cols = _w.Cols;
        float* scratch = _scratch[thread].Pointer;
        for (int g = g0; g < g1; g++)
        {
            int r0 = g * RowGroup, r1 = Math.Min(_w.Rows, r0 + RowGroup);
            for (int r = r0; r < r1; r++)
            {
                if (_w.Type == GgmlType.F32) continue;
                _w.DequantizeRow(r, new Span<float>(scratch + (long)(r - r0) * cols, cols));
            }
            for (int t = 0; t < _tokens; t++)
            {
                float* xt = _x + (long)t * cols;
                float* yt = _y + (long)t * _yStride;
                for (int r = r0; r < r1; r++)
                {
                    float* row = _w.Type == GgmlType.F32 ? (float*)_w.Row(r) : scratch + (long)(r - r0) * cols;
                    yt[r] = VecOps.Dot(row, xt, cols);
                }
            }
        }
    }

    public void Dispose()
    {
        foreach (var s in _scratch) s.Dispose();
    }
}
