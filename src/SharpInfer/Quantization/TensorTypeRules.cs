using SharpInfer.Tensors;
using F = SharpInfer.Quantization.LlamaFileType;
using G = SharpInfer.Tensors.GgmlType;

namespace SharpInfer.Quantization;

/// <summary>What the type rules need to know about the model (llama.cpp reads the same from its hparams).</summary>
/// <param name="NGqa">n_head / n_head_kv of the first layer (0 when there are no KV heads).</param>
/// <param name="Is70B">llama.cpp's LLM_TYPE_70B: a llama with 80 layers and grouped-query attention.</param>
internal sealed record QuantModelInfo(string Architecture, int LayerCount, int NGqa, int ExpertCount, bool Is70B)
{
    public bool IsFalcon => Architecture == "falcon";
}

/// <summary>The options of llama-quantize that change which tensor gets which type.</summary>
internal sealed record TypeRuleOptions(bool Pure = false, bool QuantizeOutputTensor = true, GgmlType? OutputTensorType = null,
                                     GgmlType? TokenEmbeddingType = null, bool HasImatrix = false, bool OnlyCopy = false);

/// <summary>The broad tensor families the rules tell apart (llama-quant.cpp's tensor_category).</summary>
internal enum TensorCategory { TokenEmbd, AttentionQ, AttentionV, AttentionK, AttentionQkv, AttentionKvB, AttentionOutput, FfnUp, FfnGate, FfnDown, Output, Other }

/// <summary>
/// Which type each tensor of a model gets in a quantization mix: llama.cpp's rules (llama-quant.cpp,
/// llama_tensor_get_type and what it calls), reproduced decision for decision so that a mix names the same types as
/// llama-quantize's. Stateful like llama.cpp's: the attn_v / ffn_down "use more bits" choices count tensors in the
/// order they are asked about, so ask in the order the file will be written.
/// </summary>
internal sealed class TensorTypeRules
{
    private readonly QuantModelInfo _model;
    private readonly TypeRuleOptions _options;
    private readonly F _ftype;
    private readonly GgmlType _defaultType;
    private readonly int _nAttentionWv;
    private readonly bool _hasTiedEmbeddings;
    private int _iAttentionWv, _iFfnDown, _iFfnGate, _iFfnUp;

    /// <param name="tensorNames">Every tensor of the model (to count the attn_v tensors and see whether the
    /// output matrix is tied to the embeddings).</param>
    public TensorTypeRules(QuantModelInfo model, F ftype, GgmlType defaultType, TypeRuleOptions options, IEnumerable<string> tensorNames)
    {
        _model = model;
        _ftype = ftype;
        _defaultType = defaultType;
        _options = options;
        _hasTiedEmbeddings = true;
        foreach (var name in tensorNames)
        {
            var cat = Category(name);
            if (IsAttnV(cat)) _nAttentionWv++;
            if (cat == TensorCategory.Output) _hasTiedEmbeddings = false;
        }
    }

    /// <summary>Tensors whose shape forced a fallback type, with a line saying why (llama.cpp's warnings).</summary>
    public List<string> Fallbacks { get; } = [];

    public static bool IsQuantized(GgmlType t) => GgmlTypeInfo.BlockSize(t) > 1;

    public static TensorCategory Category(string name)
    {
        if (name == "output.weight") return TensorCategory.Output;
        if (IsTokenEmbd(name)) return TensorCategory.TokenEmbd;
        if (name.Contains("attn_qkv.weight", StringComparison.Ordinal)) return TensorCategory.AttentionQkv;
        if (name.Contains("attn_kv_b.weight", StringComparison.Ordinal)) return TensorCategory.AttentionKvB;
        if (name.Contains("attn_v.weight", StringComparison.Ordinal)) return TensorCategory.AttentionV;
        if (name.Contains("attn_k.weight", StringComparison.Ordinal)) return TensorCategory.AttentionK;
        if (name.Contains("attn_q.weight", StringComparison.Ordinal)) return TensorCategory.AttentionQ;
        if (name.Contains("attn_output.weight", StringComparison.Ordinal)) return TensorCategory.AttentionOutput;
        if (name.Contains("ffn_up", StringComparison.Ordinal)) return TensorCategory.FfnUp;
        if (name.Contains("ffn_gate", StringComparison.Ordinal)) return TensorCategory.FfnGate;
        if (name.Contains("ffn_down", StringComparison.Ordinal)) return TensorCategory.FfnDown;
        return TensorCategory.Other;
    }

    public static bool IsTokenEmbd(string name) => name is "token_embd.weight" or "per_layer_token_embd.weight";

    private static bool IsAttnV(TensorCategory c) => c is TensorCategory.AttentionV or TensorCategory.AttentionQkv or TensorCategory.AttentionKvB;

    private static readonly string[] NeverQuantized =
    [
        "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
        "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
        "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_v0.weight",
        "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight",
        "time_mix_g1.weight", "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_",
        ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
    ];

    /// <summary>tensor_allows_quantization: matrices (2-D and up) named *weight, except norms, routers, positional
    /// embeddings and the other small tensors llama.cpp keeps as they are.</summary>
    public bool AllowsQuantization(string name, int nDims)
    {
        if (_options.OnlyCopy || nDims < 2) return false;
        if (!name.EndsWith("weight", StringComparison.Ordinal)) return false;
        if (!_options.QuantizeOutputTensor && name == "output.weight") return false;
        if (name is "position_embd.weight" or "token_types.weight") return false;
        foreach (var part in NeverQuantized)
            if (name.Contains(part, StringComparison.Ordinal)) return false;
        return true;
    }

    /// <summary>The type <paramref name="name"/> gets (llama_tensor_get_type); <paramref name="currentType"/> when it
    /// stays as it is. Call once per tensor, in file order.</summary>
    public GgmlType TargetType(string name, long[] dims, GgmlType currentType)
    {
        int nDims = NDims(dims);
        if (!AllowsQuantization(name, nDims)) return currentType;
        var category = Category(name);
        if (_options.TokenEmbeddingType is { } te && category == TensorCategory.TokenEmbd) return te;
        if (_options.OutputTensorType is { } ot && category == TensorCategory.Output) return ot;

        var newType = _defaultType;
        if (IsQuantized(_defaultType))
        {
            if (!_options.Pure) newType = MixType(newType, name, dims, category);
            newType = Fallback(name, dims[0], newType);
        }
        return newType;
    }

    /// <summary>ggml_n_dims: the number of dimensions up to the last one above 1 (at least 1).</summary>
    public static int NDims(long[] dims)
    {
        for (int i = dims.Length - 1; i >= 1; i--)
            if (dims[i] > 1) return i + 1;
        return 1;
    }

    /// <summary>tensor_type_fallback: a row length that the chosen type's blocks do not divide gets a compatible type.</summary>
    private GgmlType Fallback(string name, long ncols, GgmlType target)
    {
        int qk = GgmlTypeInfo.BlockSize(target);
        if (ncols % qk == 0) return target;
        var ret = target switch
        {
            G.IQ1_S or G.IQ1_M or G.IQ2_XXS or G.IQ2_XS or G.IQ2_S or G.IQ3_XXS or G.IQ3_S or G.IQ4_XS => G.IQ4_NL,
            G.Q2_K or G.Q3_K or G.TQ1_0 or G.TQ2_0 => G.Q4_0,
            G.Q4_K => G.Q5_0,
            G.Q5_K => G.Q5_1,
            G.Q6_K => G.Q8_0,
            _ => throw new QuantizationException($"tensor {name}: row length {ncols} is not divisible by {qk} (required for {GgmlTypeInfo.Name(target)}) and no fallback type is defined for {GgmlTypeInfo.Name(target)}"),
        };
        if (ncols % GgmlTypeInfo.BlockSize(ret) != 0) ret = G.F16;
        Fallbacks.Add($"{name}: row length {ncols} not divisible by {qk} (required for {GgmlTypeInfo.Name(target)}), falling back to {GgmlTypeInfo.Name(ret)}");
        return ret;
    }

    private static bool UseMoreBits(int iLayer, int nLayers) =>
        iLayer < nLayers / 8 || iLayer >= 7 * nLayers / 8 || (iLayer - nLayers / 8) % 3 == 2;

    /// <summary>For mixture-of-experts models the layer comes from the name ("blk.N."), not from the count.</summary>
    private (int Layer, int NLayer) LayerInfo(int counter, string name)
    {
        int nLayer = _model.LayerCount;
        if (Math.Max(1, _model.ExpertCount) <= 1) return (counter, nLayer);
        if (TensorOrder.LayerOf(name) is not int layer)
            throw new QuantizationException($"failed to determine the layer of tensor {name}");
        if (layer < 0 || layer >= nLayer)
            throw new QuantizationException($"bad layer {layer} for tensor {name}: must be in [0, {nLayer})");
        return (layer, nLayer);
    }

    /// <summary>llama_tensor_get_type_impl: the mix's choice for one tensor.</summary>
    private GgmlType MixType(GgmlType newType, string name, long[] dims, TensorCategory category)
    {
        var ftype = _ftype;
        int nGqa = _model.NGqa, nExpert = _model.ExpertCount;
        bool falcon = _model.IsFalcon;
        bool iq2Family = ftype is F.IQ2_XXS or F.IQ2_XS or F.IQ1_S or F.IQ2_S or F.IQ2_M or F.IQ1_M;

        if (category == TensorCategory.Output || (_hasTiedEmbeddings && category == TensorCategory.TokenEmbd))
        {
            long nx = dims[0];
            int qk = GgmlTypeInfo.BlockSize(newType);
            if (_options.OutputTensorType is { } ot) newType = ot;
            else if (ftype == F.MXFP4_MOE) newType = G.Q8_0;
            else if (falcon || nx % qk != 0) newType = G.Q8_0;
            else if (ftype is F.IQ2_XXS or F.IQ2_XS or F.IQ3_XXS or F.IQ1_S or F.IQ2_S or F.IQ2_M or F.IQ1_M) newType = G.Q5_K;
            else if (newType != G.Q8_0) newType = G.Q6_K;
        }
        else if (ftype == F.MXFP4_MOE)
        {
            newType = dims.Length > 2 && dims[2] > 1 ? G.MXFP4 : G.Q8_0;
        }
        else if (category == TensorCategory.TokenEmbd)
        {
            if (_options.TokenEmbeddingType is { } te) newType = te;
            else if (ftype is F.IQ2_XXS or F.IQ2_XS or F.IQ1_S or F.IQ1_M) newType = G.Q2_K;
            else if (ftype is F.IQ2_S or F.IQ2_M) newType = G.IQ3_S;
            else if (ftype == F.IQ3_XXS) newType = G.IQ3_S;
            else if (ftype is F.TQ1_0 or F.TQ2_0 or F.Q2_0) newType = G.Q4_K;
        }
        else if (iq2Family)
        {
            if (IsAttnV(category))
            {
                if (nGqa >= 4 || nExpert >= 4) newType = G.Q4_K;
                else newType = ftype is F.IQ2_S or F.IQ2_M ? G.IQ3_S : G.Q2_K;
                ++_iAttentionWv;
            }
            else if (nExpert == 8 && category == TensorCategory.AttentionK) newType = G.Q4_K;
            else if (category == TensorCategory.FfnDown)
            {
                if (_iFfnDown < _model.LayerCount / 8) newType = ftype is F.IQ2_S or F.IQ2_M ? G.IQ3_S : G.Q2_K;
                ++_iFfnDown;
            }
            else if (category == TensorCategory.AttentionOutput)
            {
                if (nExpert == 8) newType = G.Q5_K;
                else if (ftype is F.IQ1_S or F.IQ1_M) newType = G.IQ2_XXS;
                else if (ftype is F.IQ2_S or F.IQ2_M) newType = G.IQ3_S;
            }
        }
        else if (IsAttnV(category))
        {
            if (ftype == F.Q2_K) newType = nGqa >= 4 ? G.Q4_K : G.Q3_K;
            else if (ftype == F.Q2_K_S && nGqa >= 4) newType = G.Q4_K;
            else if (ftype == F.IQ3_XXS) newType = nGqa >= 4 ? G.Q4_K : !_options.HasImatrix ? G.IQ3_S : G.IQ3_XXS;
            else if (ftype is F.IQ3_XS or F.IQ3_S && nGqa >= 4) newType = G.Q4_K;
            else if (ftype == F.IQ3_M) newType = G.Q4_K;
            else if (ftype == F.Q3_K_M) newType = _iAttentionWv < 2 ? G.Q5_K : G.Q4_K;
            else if (ftype == F.Q3_K_L) newType = G.Q5_K;
            else if (ftype is F.IQ4_NL or F.IQ4_XS && nGqa >= 4) newType = G.Q5_K;
            else if (ftype is F.Q4_K_M or F.Q5_K_M && UseMoreBits(_iAttentionWv, _nAttentionWv)) newType = G.Q6_K;
            else if (ftype == F.Q4_K_S && _iAttentionWv < 4) newType = G.Q5_K;
            // 70B: 8 heads share each attn_v, so it is 8x smaller than attn_q and more bits cost little
            if (_model.Is70B && newType is G.Q3_K or G.Q4_K) newType = G.Q5_K;
            if (nExpert == 8) newType = G.Q8_0;
            ++_iAttentionWv;
        }
        else if (category == TensorCategory.AttentionK)
        {
            if (nExpert == 8) newType = G.Q8_0;
            else if (ftype == F.IQ3_XS) newType = G.IQ3_XXS;
            else if (ftype == F.IQ3_XXS) newType = G.IQ2_S;
        }
        else if (category == TensorCategory.AttentionQ)
        {
            if (ftype == F.IQ3_XS) newType = G.IQ3_XXS;
            else if (ftype == F.IQ3_XXS) newType = G.IQ2_S;
        }
        else if (category == TensorCategory.FfnDown)
        {
            var (iLayer, nLayer) = LayerInfo(_iFfnDown, name);
            if (ftype == F.Q2_K) newType = G.Q3_K;
            else if (ftype == F.Q2_K_S) { if (iLayer < nLayer / 8) newType = G.Q4_K; }
            else if (ftype == F.IQ3_XXS && !_options.HasImatrix) newType = iLayer < nLayer / 8 ? G.Q4_K : G.Q3_K;
            else if (ftype == F.Q3_K_M)
                newType = iLayer < nLayer / 16 ? G.Q5_K : !falcon || UseMoreBits(iLayer, nLayer) ? G.Q4_K : G.Q3_K;
            else if (ftype == F.IQ3_M && (iLayer < nLayer / 8 || (nExpert == 8 && UseMoreBits(iLayer, nLayer)))) newType = G.Q4_K;
            else if (ftype == F.Q3_K_L) newType = falcon ? G.Q4_K : G.Q5_K;
            else if (ftype == F.Q4_K_M)
            {
                if (falcon) newType = iLayer < nLayer / 16 ? G.Q6_K : UseMoreBits(iLayer, nLayer) ? G.Q5_K : G.Q4_K;
                else if (UseMoreBits(iLayer, nLayer)) newType = G.Q6_K;
            }
            else if (iLayer < nLayer / 8 && ftype is F.IQ4_NL or F.IQ4_XS && !_options.HasImatrix) newType = G.Q5_K;
            else if (ftype == F.Q5_K_M && UseMoreBits(iLayer, nLayer)) newType = G.Q6_K;
            else if (ftype == F.Q4_K_S && !falcon && iLayer < nLayer / 8) newType = G.Q5_K;
            else if (ftype is F.Q4_0 or F.Q5_0 && _options.HasImatrix && iLayer < nLayer / 8)
                newType = ftype == F.Q4_0 ? G.Q4_1 : G.Q5_1;
            ++_iFfnDown;
        }
        else if (category == TensorCategory.AttentionOutput)
        {
            if (!falcon)
            {
                if (nExpert == 8)
                {
                    if (ftype is F.Q2_K or F.IQ3_XS or F.IQ3_XXS or F.Q3_K_S or F.Q3_K_M or F.IQ4_NL or F.Q4_K_S or F.Q4_K_M
                        or F.IQ3_S or F.IQ3_M or F.IQ4_XS) newType = G.Q5_K;
                }
                else if (ftype == F.Q2_K) newType = G.Q3_K;
                else if (ftype == F.IQ3_XXS) newType = G.IQ3_S;
                else if (ftype == F.Q3_K_M) newType = G.Q4_K;
                else if (ftype == F.Q3_K_L) newType = G.Q5_K;
                else if (ftype == F.IQ3_M) newType = G.Q4_K;
            }
            else if (ftype == F.Q3_K_L) newType = G.Q4_K;
        }
        else if (category == TensorCategory.AttentionQkv)
        {
            if (ftype is F.Q3_K_M or F.Q3_K_L or F.IQ3_M) newType = G.Q4_K;
            else if (ftype == F.Q4_K_M) newType = G.Q5_K;
            else if (ftype == F.Q5_K_M) newType = G.Q6_K;
        }
        else if (category == TensorCategory.FfnGate)
        {
            var (iLayer, nLayer) = LayerInfo(_iFfnGate, name);
            if (ftype == F.IQ3_XS && iLayer >= nLayer / 8 && iLayer < 7 * nLayer / 8) newType = G.IQ3_XXS;
            ++_iFfnGate;
        }
        else if (category == TensorCategory.FfnUp)
        {
            var (iLayer, nLayer) = LayerInfo(_iFfnUp, name);
            if (ftype == F.IQ3_XS && iLayer >= nLayer / 8 && iLayer < 7 * nLayer / 8) newType = G.IQ3_XXS;
            ++_iFfnUp;
        }
        return newType;
    }

    /// <summary>tensor_requires_imatrix: the very low-bit types whose results are garbage without one.</summary>
    public static bool RequiresImatrix(string name, GgmlType target, F ftype)
    {
        if (IsTokenEmbd(name) || name == "output.weight") return false;
        return target switch
        {
            G.IQ3_XXS or G.IQ2_XXS or G.IQ2_XS or G.IQ2_S or G.IQ1_M or G.IQ1_S => true,
            G.Q2_K => ftype == F.Q2_K_S,
            _ => false,
        };
    }
}
