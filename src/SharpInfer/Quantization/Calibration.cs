using SharpInfer.Models;
using SharpInfer.Quantization.Gptq;
using SharpInfer.Tensors;

namespace SharpInfer.Quantization;

/// <summary><c>quantize --method</c>: how the weights are rounded. Rtn: the format's plain quantizer (llama-quantize
/// without an imatrix). Imatrix: importance-weighted scale search with the importance matrix computed from the
/// calibration text. Gptq: GPTQ error feedback for every blk.* matrix whose input the calibration saw, in the formats
/// <see cref="BlockCodes"/> covers; everything else importance-weighted as with Imatrix. Awq: per-channel scales
/// folded into attn_norm/ffn_norm (<see cref="Awq.AwqScales"/>), then importance-weighted rounding.</summary>
internal enum QuantMethod
{
    Rtn,
    Imatrix,
    Gptq,
    Awq,
}

/// <summary>What the calibration pass produced: the importance matrix (llama-imatrix's, computed in-process) and, for
/// GPTQ, the Hessian of every collected matrix input.</summary>
internal sealed record CalibrationResult(QuantImatrix Imatrix, IReadOnlyDictionary<string, HessianEntry>? Hessians);

/// <summary>One forward pass of the model over the calibration text (llama-imatrix's chunking) with the observers a
/// method needs.</summary>
internal static class Calibration
{
    public static CalibrationResult Run(Model model, string text, string textPath, ImatrixOptions o, QuantMethod method, Action<int, int>? onChunk = null)
    {
        var imatrix = new ImatrixCollector();
        HessianCollector? hessians = method switch
        {
            QuantMethod.Gptq => new HessianCollector(o.Threads),
            // AWQ needs the inputs of the matrices after a norm only.
            QuantMethod.Awq => new HessianCollector(o.Threads, name => name.EndsWith(".attn_q.weight", StringComparison.Ordinal)
                || name.EndsWith(".attn_k.weight", StringComparison.Ordinal) || name.EndsWith(".attn_v.weight", StringComparison.Ordinal)
                || name.EndsWith(".ffn_gate.weight", StringComparison.Ordinal) || name.EndsWith(".ffn_up.weight", StringComparison.Ordinal)),
            _ => null,
        };
        IActivationObserver observer = hessians == null ? imatrix : new BothObservers(imatrix, hessians);
        ImatrixComputation.Calibrate(model, text, o, observer, onChunk);
        var m = imatrix.ToImportanceMatrix([textPath], o.Context);
        var q = new QuantImatrix(m.SelectWeights([], []), textPath, m.Datasets, m.ChunkCount);
        return new CalibrationResult(q, hessians?.ByTensor);
    }

    private sealed unsafe class BothObservers(IActivationObserver a, IActivationObserver b) : IActivationObserver
    {
        public void MatMulInput(WeightMatrix weight, float* input, int rows)
        {
            a.MatMulInput(weight, input, rows);
            b.MatMulInput(weight, input, rows);
        }

        public void ExpertInput(WeightMatrix weight, int expert, int expertCount, float* input, int rows)
        {
            a.ExpertInput(weight, expert, expertCount, input, rows);
            b.ExpertInput(weight, expert, expertCount, input, rows);
        }
    }
}
