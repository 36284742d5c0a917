using SharpInfer.Tensors;

namespace SharpInfer.Models;

/// <summary>
/// Sees the input rows of the weight matrix products of a forward pass (what <c>sharpinfer imatrix</c> collects, as
/// llama-imatrix's eval callback sees ggml's MUL_MAT / MUL_MAT_ID inputs). Called before each product, on the forward
/// thread, with rows × <c>weight.Cols</c> floats; the rows are only valid during the call. A transformer without an
/// observer pays one null check per product.
/// </summary>
internal unsafe interface IActivationObserver
{
    /// <summary>A dense product: <paramref name="rows"/> input rows for <paramref name="weight"/>.</summary>
    void MatMulInput(WeightMatrix weight, float* input, int rows);

    /// <summary>The rows routed to expert <paramref name="expert"/> of <paramref name="expertCount"/>;
    /// <paramref name="weight"/> is that expert's slice of the 3-D tensor.</summary>
    void ExpertInput(WeightMatrix weight, int expert, int expertCount, float* input, int rows);
}
