namespace SharpInfer.Gguf;

/// <summary>Metadata value types, numbered as in the GGUF specification.</summary>
internal enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
    String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>A metadata array: its element type and the elements as a typed .NET array
/// (byte[], sbyte[], ushort[], short[], uint[], int[], float[], bool[], string[], ulong[], long[], double[],
/// or GgufArray[] for nested arrays).</summary>
internal sealed record GgufArray(GgufValueType ElementType, Array Items)
{
    public int Count => Items.Length;
}
