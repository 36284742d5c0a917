using SharpInfer.Gguf;

namespace SharpInfer.Tensors;

/// <summary>
/// A 2-D weight tensor used as y = W·x: <see cref="Rows"/> outputs, each a dot product of one stored row
/// (<see cref="Cols"/> inputs, in <see cref="Type"/>'s blocks) with the input vector. The bytes live in the
/// memory-mapped model file; nothing is copied.
/// </summary>
internal sealed unsafe class WeightMatrix
{
    public string Name { get; }
    public GgmlType Type { get; }
    public int Rows { get; }
    public int Cols { get; }
    public byte* Data { get; }
    public long RowBytes { get; }
    public long ByteSize => RowBytes * Rows;

    /// <summary>A copy of the rows packed at load into the layout the batched kernels read (groups of
    /// <see cref="PackRows"/> rows interleaved), or null; see <see cref="WeightPacking"/>.</summary>
    public byte* Packed { get; private set; }
    /// <summary>Rows per group of <see cref="Packed"/> (0 when not packed).</summary>
    public int PackRows { get; private set; }

    internal void SetPacked(byte* packed, int packRows)
    {
        PackRows = packRows;
        Thread.MemoryBarrier();   // a kernel that sees the pointer sees its group size
        Packed = packed;
    }

    public WeightMatrix(string name, GgmlType type, int rows, int cols, byte* data)
    {
        Name = name;
        Type = type;
        Rows = rows;
        Cols = cols;
        Data = data;
        RowBytes = GgmlTypeInfo.RowSize(type, cols);
    }

    public static WeightMatrix FromGguf(GgufFile g, GgufTensorInfo t)
    {
        if (t.Dims.Length != 2 && !(t.Dims.Length > 2 && t.Dims.Skip(2).All(d => d == 1)))
            throw new UnsupportedModelException($"{g.Path}: tensor '{t.Name}' should be a matrix but has shape {t.ShapeString}");
        if (t.Dims[0] > int.MaxValue || t.Dims[1] > int.MaxValue)
            throw new UnsupportedModelException($"{g.Path}: tensor '{t.Name}' shape {t.ShapeString} is too large");
        return new WeightMatrix(t.Name, t.Type, (int)t.Dims[1], (int)t.Dims[0], g.TensorData(t));
    }

    public byte* Row(int r) => Data + r * RowBytes;
    public ReadOnlySpan<byte> RowSpan(int r) => new(Row(r), checked((int)RowBytes));

    /// <summary>Dequantizes one row to floats (exactly, like ggml's to_float).</summary>
    public void DequantizeRow(int r, Span<float> dst)
    {
        // a packed copy that can give the row back is read instead of the mapped pages (released at load)
        if (Packed != null && RowBytes <= MaxStackRowBytes)
        {
            byte* row = stackalloc byte[(int)RowBytes];
            if (WeightPacking.TryCopyRow(this, r, row))
            {
                Dequantize.Row(Type, new ReadOnlySpan<byte>(row, (int)RowBytes), dst[..Cols]);
                return;
            }
        }
        Dequantize.Row(Type, RowSpan(r), dst[..Cols]);
    }

    private const int MaxStackRowBytes = 32 * 1024;
}
