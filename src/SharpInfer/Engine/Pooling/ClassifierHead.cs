using SharpInfer.Gguf;
using SharpInfer.Models;
using SharpInfer.Tensors;

namespace SharpInfer.Engine.Pooling;

/// <summary>
/// The classification head of a reranker (llama.cpp's <c>build_pooling</c>, <c>LLAMA_POOLING_TYPE_RANK</c>): the
/// output-normed hidden state of one token (the first; the last for Qwen3 rerankers), then optionally
/// <c>tanh(cls · x + cls_b)</c> (BERT-style pooler), then optionally <c>cls.output · x + cls.output_b</c>, then for
/// Qwen3 a softmax over the classes. The score a reranker reports is the first output. The head is a few thousand
/// values at most and runs once per request, so it is kept dequantized and computed with plain dot products.
/// </summary>
internal sealed class ClassifierHead
{
    private readonly Dense? _pooler, _output;

    /// <summary>Whether the head reads the last prompt token (Qwen3 rerankers) rather than the first.</summary>
    public bool UsesLastToken { get; }
    /// <summary>Whether the outputs go through a softmax (Qwen3 rerankers: yes/no classes).</summary>
    public bool Softmax { get; }
    /// <summary>Number of outputs (classes).</summary>
    public int Outputs { get; }

    public ClassifierHead(int inputSize, Dense? pooler, Dense? output, bool usesLastToken, bool softmax)
    {
        if (pooler == null && output == null) throw new ArgumentException("a classification head needs cls or cls.output");
        if (pooler != null && pooler.Cols != inputSize) throw new ArgumentException($"cls has {pooler.Cols} inputs, expected {inputSize}");
        int mid = pooler?.Rows ?? inputSize;
        if (output != null && output.Cols != mid) throw new ArgumentException($"cls.output has {output.Cols} inputs, expected {mid}");
        _pooler = pooler;
        _output = output;
        UsesLastToken = usesLastToken;
        Softmax = softmax;
        Outputs = output?.Rows ?? mid;
    }

    /// <summary>The head of <paramref name="model"/>, or null when the file has no <c>cls</c> / <c>cls.output</c> tensors.</summary>
    public static ClassifierHead? FromModel(Model model)
    {
        var g = model.File;
        int E = model.Config.EmbeddingLength;
        if (g.TryGetTensor("cls.norm.weight", out _))
            throw new UnsupportedModelException($"{g.Path}: the classification head has a norm (cls.norm, ModernBERT), which is not supported");
        var pooler = Dense.Load(g, "cls", E);
        var output = Dense.Load(g, "cls.output", pooler?.Rows ?? E);
        if (pooler == null && output == null) return null;
        // llama.cpp: qwen3 rerankers score the last token and apply a softmax over their classes
        bool qwen3 = model.Config.Architecture is "qwen3" or "qwen3vl";
        return new ClassifierHead(E, pooler, output, usesLastToken: qwen3, softmax: qwen3);
    }

    /// <summary>The head's outputs for one output-normed hidden state.</summary>
    public float[] Apply(ReadOnlySpan<float> hidden)
    {
        float[] x = hidden.ToArray();
        if (_pooler != null)
        {
            x = _pooler.Apply(x);
            for (int i = 0; i < x.Length; i++) x[i] = MathF.Tanh(x[i]);
        }
        if (_output != null) x = _output.Apply(x);
        if (Softmax)
        {
            float max = float.NegativeInfinity;
            foreach (var v in x) max = Math.Max(max, v);
            double sum = 0;
            for (int i = 0; i < x.Length; i++) sum += x[i] = MathF.Exp(x[i] - max);
            for (int i = 0; i < x.Length; i++) x[i] = (float)(x[i] / sum);
        }
        return x;
    }

    /// <summary>A small dense layer y = W·x (+ b), W stored row-major [Rows × Cols].</summary>
    public sealed class Dense(float[] weight, float[]? bias, int rows, int cols)
    {
        public int Rows { get; } = rows;
        public int Cols { get; } = cols;

        public float[] Apply(ReadOnlySpan<float> x)
        {
            var y = new float[Rows];
            for (int r = 0; r < Rows; r++)
            {
                double s = bias?[r] ?? 0;
                var row = weight.AsSpan(r * Cols, Cols);
                for (int c = 0; c < Cols; c++) s += (double)row[c] * x[c];
                y[r] = (float)s;
            }
            return y;
        }

        /// <summary><c>&lt;name&gt;.weight</c> (ggml shape [cols, rows]) and its optional <c>&lt;name&gt;.bias</c>, or null.</summary>
        internal static Dense? Load(GgufFile g, string name, int cols)
        {
            if (!g.TryGetTensor(name + ".weight", out var t)) return null;
            if (t.Dims.Length != 2 || t.Dims[0] != cols || t.Dims[1] is < 1 or > 1 << 16)
                throw new UnsupportedModelException($"{g.Path}: tensor '{name}.weight' has shape {t.ShapeString}, expected [{cols}, classes]");
            int rows = (int)t.Dims[1];
            var m = WeightMatrix.FromGguf(g, t);
            var w = new float[(long)rows * cols];
            for (int r = 0; r < rows; r++) m.DequantizeRow(r, w.AsSpan(r * cols, cols));
            var loader = new WeightLoader(g);
            return new Dense(w, loader.OptionalVector(name + ".bias", rows), rows, cols);
        }
    }
}
