using SharpInfer.Tensors;

namespace SharpInfer.Gguf;

/// <summary>One tensor's description from the GGUF header. <see cref="Dims"/> is in ggml order: Dims[0] is the
/// innermost (contiguous) dimension, so a weight matrix has Dims = [inputs, outputs].</summary>
internal sealed record GgufTensorInfo(string Name, long[] Dims, GgmlType Type, long Offset, long ByteSize)
{
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Dims) n *= d;
            return n;
        }
    }

    /// <summary>Number of rows when seen as a matrix of Dims[0]-long rows.</summary>
    public long Rows => Dims.Length == 0 || Dims[0] == 0 ? 0 : ElementCount / Dims[0];

    public string ShapeString => "[" + string.Join(", ", Dims) + "]";
}
