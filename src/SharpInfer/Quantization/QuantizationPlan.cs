using SharpInfer.Gguf;
using SharpInfer.Tensors;

namespace SharpInfer.Quantization;

/// <summary>What <c>quantize</c> is asked to do: llama-quantize's type and the options that change the result.</summary>
/// <param name="Threads">Worker threads; the output does not depend on it.</param>
/// <param name="Imatrix">Importance weights (llama-quantize's --imatrix), or null for plain rounding.</param>
/// <param name="Hessians">GPTQ: the calibration Hessian of each matrix input by tensor name; the tensors found here
/// in a type GPTQ covers are rounded with error feedback (<see cref="QuantMethod.Gptq"/>), or the inputs AWQ scales
/// (<see cref="QuantMethod.Awq"/>).</param>
internal sealed record QuantizeOptions(QuantFileType Type, int Threads = 1, bool Pure = false, bool LeaveOutputTensor = false,
                                     GgmlType? OutputTensorType = null, GgmlType? TokenEmbeddingType = null, bool AllowRequantize = false,
                                     QuantImatrix? Imatrix = null, IReadOnlyDictionary<string, Gptq.HessianEntry>? Hessians = null,
                                     QuantMethod Method = QuantMethod.Rtn);

/// <summary>One tensor of the output: where it comes from, what it becomes and, with an importance matrix, the
/// per-column weights of each expert's rows (columns × experts) its quantizer gets.</summary>
/// <param name="ColumnScale">AWQ: each column (element of a 1-D norm) is multiplied by this before rounding.</param>
internal sealed record PlannedTensor(GgufTensorInfo Source, GgufTensorSpec Output, float[]? Weights = null, Gptq.HessianEntry? Hessian = null,
    float[]? ColumnScale = null)
{
    public bool Converts => Source.Type != Output.Type;
}

/// <summary>
/// Everything about a quantized file that is decided before any weight is touched: its metadata (the input's, with
/// general.quantization_version and general.file_type set as llama-quantize sets them), its tensors in
/// llama-quantize's order and the type of each (llama.cpp's mix rules). Building the plan also rejects, up front,
/// everything that would fail halfway: a type this program cannot produce, an already quantized input without
/// --allow-requantize, a mix that needs an importance matrix.
/// </summary>
internal sealed class QuantizationPlan
{
    /// <summary>ggml's GGML_QNT_VERSION, written as general.quantization_version.</summary>
    public const uint QuantizationVersion = 2;

    private static readonly string[] DroppedKeys =
        ["general.quantization_version", "general.file_type", "split.no", "split.count", "split.tensors.count"];

    public required LlamaFileType FileType { get; init; }
    public required IReadOnlyList<GgufKeyValue> Metadata { get; init; }
    public required IReadOnlyList<PlannedTensor> Tensors { get; init; }
    public required int Alignment { get; init; }
    /// <summary>llama.cpp's warnings for tensors whose shape forced another type.</summary>
    public required IReadOnlyList<string> Fallbacks { get; init; }
    /// <summary>AWQ: the α chosen for each scaled norm input.</summary>
    public IReadOnlyList<string> AwqAlphas { get; init; } = [];

    public static QuantizationPlan Create(GgufFile input, QuantizeOptions options)
    {
        if (input.GetInteger("split.count") is > 1)
            throw new QuantizationException($"{input.Path} is one shard of a split model; merge the shards first (split models are not supported)");
        var model = ReadModelInfo(input);
        var ftype = options.Type.IsCopy
            ? (input.GetInteger("general.file_type") is long ft ? (LlamaFileType)ft : QuantFileType.Guess(Ordered(input).Select(t => t.Type)))
            : options.Type.FileType;
        var defaultType = QuantFileType.DefaultType(options.Type.FileType)
            ?? throw new QuantizationException($"quantization type {options.Type.Name} is not supported yet");

        var ordered = Ordered(input);
        var ruleOptions = new TypeRuleOptions(options.Pure, !options.LeaveOutputTensor, options.OutputTensorType,
                                              options.TokenEmbeddingType, HasImatrix: options.Imatrix != null, OnlyCopy: options.Type.IsCopy);
        var rules = new TensorTypeRules(model, ftype, defaultType, ruleOptions, ordered.Select(t => t.Name));
        var tensors = new List<PlannedTensor>(ordered.Count);
        foreach (var t in ordered)
        {
            var target = rules.TargetType(t.Name, t.Dims, t.Type);
            var weights = t.Type == target ? null : options.Imatrix?.WeightsFor(t);
            Check(input, t, target, ftype, options, weights);
            var dims = t.Dims.Length == 0 ? [1L] : t.Dims[..TensorTypeRules.NDims(t.Dims)];
            Gptq.HessianEntry? hessian = null;
            if (t.Type != target && dims.Length == 2 && Gptq.BlockCodes.IsSupported(target)
                && options.Method == QuantMethod.Gptq && options.Hessians != null && options.Hessians.TryGetValue(t.Name, out var he) && he.N == t.Dims[0])
                hessian = he;
            tensors.Add(new PlannedTensor(t, new GgufTensorSpec(t.Name, dims, target), weights, hessian));
        }

        var awqAlphas = new List<string>();
        if (options.Method == QuantMethod.Awq && options.Hessians != null)
            ApplyAwq(input, tensors, options, awqAlphas);

        var metadata = new List<GgufKeyValue>();
        foreach (var key in input.MetadataKeys)
            if (!DroppedKeys.Contains(key))
                metadata.Add(new GgufKeyValue(key, input.MetadataTypes[key], input.Metadata[key]));
        metadata.Add(new GgufKeyValue("general.quantization_version", GgufValueType.UInt32, QuantizationVersion));
        metadata.Add(new GgufKeyValue("general.file_type", GgufValueType.UInt32, (uint)ftype));
        if (options.Imatrix != null)
            foreach (var kv in options.Imatrix.Metadata())
            {
                // gguf_set_val_* replaces a key by removing it and appending the new value.
                metadata.RemoveAll(m => m.Key == kv.Key);
                metadata.Add(kv);
            }

        return new QuantizationPlan
        {
            FileType = ftype,
            Metadata = metadata,
            Tensors = tensors,
            Alignment = input.Alignment,
            Fallbacks = rules.Fallbacks,
            AwqAlphas = awqAlphas,
        };
    }

    /// <summary>AWQ: searches each norm-fed input's scale and attaches it to the norm (1/s) and its matrices (s, with
    /// their importance weights divided by s²).</summary>
    private static void ApplyAwq(GgufFile input, List<PlannedTensor> tensors, QuantizeOptions options, List<string> alphas)
    {
        var index = tensors.Select((t, i) => (t.Source.Name, i)).ToDictionary(x => x.Name, x => x.i, StringComparer.Ordinal);
        foreach (var g in Awq.AwqScales.Groups(index.Keys))
        {
            var (s, alpha) = Awq.AwqScales.Search(input, g, name => tensors[index[name]].Output.Type, options.Hessians!, options.Threads);
            if (s == null || input.Tensors.Single(t => t.Name == g.Norm).Type != GgmlType.F32) continue;
            alphas.Add($"{g.Norm}: alpha {alpha:0.0}");
            var inverse = s.Select(v => 1f / v).ToArray();
            int ni = index[g.Norm];
            tensors[ni] = tensors[ni] with { ColumnScale = inverse };
            foreach (var m in g.Matrices)
            {
                int mi = index[m];
                var w = tensors[mi].Weights;
                float[]? scaledWeights = null;
                if (w != null)
                {
                    int n = s.Length;
                    scaledWeights = new float[w.Length];
                    for (int k = 0; k < w.Length; k++) scaledWeights[k] = w[k] / (s[k % n] * s[k % n]);
                }
                tensors[mi] = tensors[mi] with { ColumnScale = s, Weights = scaledWeights };
            }
        }
    }

    private static List<GgufTensorInfo> Ordered(GgufFile input) =>
        input.Tensors.OrderBy(t => t.Name, TensorOrder.Instance).ToList();

    private static void Check(GgufFile input, GgufTensorInfo t, GgmlType target, LlamaFileType ftype, QuantizeOptions options, float[]? weights)
    {
        if (t.Type == target) return;
        string name = FileText.Quote(t.Name);
        if (TensorTypeRules.RequiresImatrix(t.Name, target, ftype) && weights == null)
            throw new QuantizationException(options.Imatrix == null
                ? $"{options.Type.Name} needs an importance matrix for tensor {name} ({GgmlTypeInfo.Name(target)}); pass --imatrix FILE"
                : $"missing importance matrix for tensor {name} in a very low-bit quantization ({GgmlTypeInfo.Name(target)})");
        if (!Quantize.IsSupported(target))
            throw new QuantizationException($"tensor {name} would become {GgmlTypeInfo.Name(target)}, which this program cannot produce yet");
        if (TensorTypeRules.IsQuantized(t.Type) && !options.AllowRequantize)
            throw new QuantizationException($"{input.Path}: tensor {name} is already quantized ({GgmlTypeInfo.Name(t.Type)}); requantizing loses quality, pass --allow-requantize to do it anyway");
        if (!Dequantize.IsSupported(t.Type))
            throw new QuantizationException($"tensor {name} is {GgmlTypeInfo.Name(t.Type)}, which this program cannot read back to convert");
        if (t.Dims[0] > int.MaxValue)
            throw new QuantizationException($"tensor {name} has rows of {t.Dims[0]} elements, too long");
        if (t.Dims[0] % GgmlTypeInfo.BlockSize(target) != 0)
            throw new QuantizationException($"tensor {name}: row length {t.Dims[0]} is not a multiple of the {GgmlTypeInfo.Name(target)} block size {GgmlTypeInfo.BlockSize(target)}");
    }

    /// <summary>The hyperparameters the mix rules look at, read as llama.cpp reads them.</summary>
    public static QuantModelInfo ReadModelInfo(GgufFile g)
    {
        string arch = g.GetString("general.architecture")
            ?? throw new QuantizationException($"{g.Path} has no general.architecture: not a model file llama.cpp's rules apply to");
        long nLayer = g.GetInteger($"{arch}.block_count")
            ?? throw new QuantizationException($"{g.Path} has no {arch}.block_count");
        if (nLayer is <= 0 or > 100_000) throw new QuantizationException($"{g.Path}: {arch}.block_count is {nLayer}");
        long nHead = FirstInteger(g, $"{arch}.attention.head_count") ?? 0;
        long nHeadKv = FirstInteger(g, $"{arch}.attention.head_count_kv") ?? nHead;
        int nGqa = nHeadKv == 0 ? 0 : (int)(nHead / nHeadKv);
        int nExpert = (int)(g.GetInteger($"{arch}.expert_count") ?? 0);
        bool is70B = arch == "llama" && nLayer == 80 && nHead != nHeadKv;
        return new QuantModelInfo(arch, (int)nLayer, nGqa, nExpert, is70B);
    }

    /// <summary>An integer, or the first element of a per-layer array of them.</summary>
    private static long? FirstInteger(GgufFile g, string key)
    {
        if (!g.Metadata.TryGetValue(key, out var v)) return null;
        if (v is GgufArray a)
            return a.Count == 0 ? null : Convert.ToInt64(a.Items.GetValue(0), System.Globalization.CultureInfo.InvariantCulture);
        return g.GetInteger(key);
    }
}
