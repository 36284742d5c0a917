using SharpInfer.Runtime;
using SharpInfer.Tensors;

namespace SharpInfer.Models;

/// <summary>
/// A mixture-of-experts FFN: the router picks k experts per token and weighs them (<see cref="ExpertGating"/>: Qwen3-MoE's
/// softmax over all experts, top-k, renormalized; or gpt-oss's top-k logits, router bias included, then a softmax over
/// those k), and each selected expert's gated FFN runs (SiLU, or gpt-oss's clamped SwiGLU with a bias after each
/// projection). Tokens are grouped by expert, so each
/// selected expert's weights are streamed once per step for all the tokens routed to it (and an expert no token
/// chose is not read at all: decode reads only k experts' weights). Each token's output sums its experts in the
/// order of selection (highest probability first), as llama.cpp's graph adds them; every value depends only on the
/// token's own activations, so results are batch-invariant.
/// </summary>
internal sealed unsafe class MoeFeedForward : IDisposable
{
    private readonly ModelConfig _c;
    private readonly MatMul _matmul;
    private readonly NativeBuffer<float> _gate, _up;          // shared with the dense path: tokens × expert FFN
    private readonly NativeBuffer<float> _router, _gathered, _expertOut, _perSlot;
    private readonly int[] _selected, _slotOfToken, _tokensOf, _count;
    private readonly float[] _weights;

    /// <summary>Sees the router's and each expert's inputs (sharpinfer imatrix); null costs nothing.</summary>
    public IActivationObserver? Observer { get; set; }

    public MoeFeedForward(ModelConfig c, MatMul matmul, int maxTokens, NativeBuffer<float> gate, NativeBuffer<float> up)
    {
        _c = c;
        _matmul = matmul;
        _gate = gate;
        _up = up;
        int T = maxTokens, E = c.EmbeddingLength, N = c.ExpertCount, K = c.ExpertUsedCount;
        _router = new NativeBuffer<float>((long)T * N);
        _gathered = new NativeBuffer<float>((long)T * E);
        _expertOut = new NativeBuffer<float>((long)T * E);
        _perSlot = new NativeBuffer<float>((long)T * K * E);
        _selected = new int[T * K];
        _weights = new float[T * K];
        _slotOfToken = new int[N * T];   // per expert: the (token · K + slot) of each token routed to it
        _tokensOf = new int[N * T];
        _count = new int[N];
    }

    /// <summary>y[t] = Σ_j w[t,j] · expert_{sel[t,j]}(xn[t]) for the first <paramref name="T"/> tokens.</summary>
    public void Run(LayerWeights L, float* xn, int T, float* y, FfnActivation activation = FfnActivation.Silu)
    {
        int E = _c.EmbeddingLength, F = _c.FeedForwardLength, N = _c.ExpertCount, K = _c.ExpertUsedCount;
        Observer?.MatMulInput(L.Router!, xn, T);
        _matmul.Run(L.Router!, xn, T, _router.Pointer, N);
        Array.Clear(_count);
        for (int t = 0; t < T; t++)
        {
            float* logits = _router.Pointer + (long)t * N;
            if (L.RouterBias != null) AddBias(logits, L.RouterBias, 1, N);
            if (_c.ExpertGating == ExpertGating.SoftmaxWeight)
                RouteSoftmaxWeight(logits, N, K, _selected.AsSpan(t * K, K), _weights.AsSpan(t * K, K));
            else
                Route(logits, N, K, _selected.AsSpan(t * K, K), _weights.AsSpan(t * K, K));
            for (int j = 0; j < K; j++)
            {
                int e = _selected[t * K + j];
                _tokensOf[e * T + _count[e]] = t;
                _slotOfToken[e * T + _count[e]] = t * K + j;
                _count[e]++;
            }
        }
        for (int e = 0; e < N; e++)
        {
            int n = _count[e];
            if (n == 0) continue;
            var ex = L.Experts![e];
            for (int i = 0; i < n; i++)
                Buffer.MemoryCopy(xn + (long)_tokensOf[e * T + i] * E, _gathered.Pointer + (long)i * E, 4L * E, 4L * E);
            if (Observer != null)
            {
                Observer.ExpertInput(ex.Gate, e, N, _gathered.Pointer, n);
                Observer.ExpertInput(ex.Up, e, N, _gathered.Pointer, n);
            }
            _matmul.SetInput(_gathered.Pointer, n, E);
            _matmul.Run(ex.Gate, _gate.Pointer, F, ex.Up, _up.Pointer, F);
            if (ex.GateBias != null) AddBias(_gate.Pointer, ex.GateBias, n, F);
            if (ex.UpBias != null) AddBias(_up.Pointer, ex.UpBias, n, F);
            Transformer.Activate(activation, _gate.Pointer, _up.Pointer, n * F, _matmul.Level);
            Observer?.ExpertInput(ex.Down, e, N, _gate.Pointer, n);
            _matmul.Run(ex.Down, _gate.Pointer, n, _expertOut.Pointer, E);
            if (ex.DownBias != null) AddBias(_expertOut.Pointer, ex.DownBias, n, E);
            for (int i = 0; i < n; i++)
            {
                int slot = _slotOfToken[e * T + i];
                float w = _weights[slot];
                float* src = _expertOut.Pointer + (long)i * E, dst = _perSlot.Pointer + (long)slot * E;
                for (int d = 0; d < E; d++) dst[d] = src[d] * w;
            }
        }
        for (int t = 0; t < T; t++)
        {
            float* yt = y + (long)t * E, s0 = _perSlot.Pointer + (long)t * K * E;
            new Span<float>(s0, E).CopyTo(new Span<float>(yt, E));
            for (int j = 1; j < K; j++) VecOps.Add(yt, s0 + (long)j * E, E);
        }
    }

    /// <summary>Softmax over the router logits (float, sum in double as ggml's soft_max), the top-k by probability
    /// (ties: the lower expert id first), and their probabilities divided by their sum.</summary>
    internal static void Route(float* logits, int n, int k, Span<int> selected, Span<float> weights)
    {
        float max = float.NegativeInfinity;
        for (int i = 0; i < n; i++) max = MathF.Max(max, logits[i]);
        double sum = 0;
        Span<float> p = stackalloc float[n];
        for (int i = 0; i < n; i++) { p[i] = MathF.Exp(logits[i] - max); sum += p[i]; }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < n; i++) p[i] *= inv;
        for (int j = 0; j < k; j++)
        {
            int best = -1;
            for (int i = 0; i < n; i++)
            {
                if (best >= 0 && !(p[i] > p[best])) continue;
                bool taken = false;
                for (int q = 0; q < j; q++) taken |= selected[q] == i;
                if (!taken) best = i;
            }
            selected[j] = best;
            weights[j] = p[best];
        }
        float total = 0;
        for (int j = 0; j < k; j++) total += weights[j];
        for (int j = 0; j < k; j++) weights[j] /= total;
    }

    /// <summary>gpt-oss's gating (llama.cpp's SOFTMAX_WEIGHT): the k largest logits (ties: the lower expert id first),
    /// in that order, then a softmax over those k only (float exp, sum in double, as ggml's soft_max).</summary>
    internal static void RouteSoftmaxWeight(float* logits, int n, int k, Span<int> selected, Span<float> weights)
    {
        for (int j = 0; j < k; j++)
        {
            int best = -1;
            for (int i = 0; i < n; i++)
            {
                if (best >= 0 && !(logits[i] > logits[best])) continue;
                bool taken = false;
                for (int q = 0; q < j; q++) taken |= selected[q] == i;
                if (!taken) best = i;
            }
            selected[j] = best;
        }
        float max = float.NegativeInfinity;
        for (int j = 0; j < k; j++) max = MathF.Max(max, logits[selected[j]]);
        double sum = 0;
        for (int j = 0; j < k; j++) { weights[j] = MathF.Exp(logits[selected[j]] - max); sum += weights[j]; }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < k; j++) weights[j] *= inv;
    }

    /// <summary>Adds <paramref name="bias"/> (pinned) to each of <paramref name="rows"/> rows of <paramref name="cols"/>.</summary>
    private static void AddBias(float* x, float[] bias, int rows, int cols)
    {
        fixed (float* b = bias)
            for (int r = 0; r < rows; r++) VecOps.Add(x + (long)r * cols, b, cols);
    }

    public void Dispose()
    {
        _router.Dispose();
        _gathered.Dispose();
        _expertOut.Dispose();
        _perSlot.Dispose();
    }
}
