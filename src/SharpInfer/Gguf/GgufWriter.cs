using System.Text;
using SharpInfer.Tensors;

namespace SharpInfer.Gguf;

/// <summary>Writes GGUF v3 files: metadata in insertion order, then tensors aligned to general.alignment
/// (32 unless set). Used by tests to build small or deliberately broken files, and by tools that write models.</summary>
internal sealed class GgufWriter
{
    private readonly List<(string Key, GgufValueType Type, object Value)> _meta = [];
    private readonly List<(string Name, long[] Dims, GgmlType Type, byte[] Data)> _tensors = [];
    public uint Version { get; set; } = 3;

    public GgufWriter Add(string key, string value) => AddRaw(key, GgufValueType.String, value);
    public GgufWriter Add(string key, uint value) => AddRaw(key, GgufValueType.UInt32, value);
    public GgufWriter Add(string key, int value) => AddRaw(key, GgufValueType.Int32, value);
    public GgufWriter Add(string key, float value) => AddRaw(key, GgufValueType.Float32, value);
    public GgufWriter Add(string key, bool value) => AddRaw(key, GgufValueType.Bool, value);
    public GgufWriter Add(string key, ulong value) => AddRaw(key, GgufValueType.UInt64, value);
    public GgufWriter Add(string key, GgufArray value) => AddRaw(key, GgufValueType.Array, value);

    public GgufWriter AddRaw(string key, GgufValueType type, object value)
    {
        _meta.Add((key, type, value));
        return this;
    }

    public GgufWriter AddTensor(string name, long[] dims, GgmlType type, byte[] data)
    {
        _tensors.Add((name, dims, type, data));
        return this;
    }

    public GgufWriter AddTensor(string name, long[] dims, float[] values)
    {
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return AddTensor(name, dims, GgmlType.F32, bytes);
    }

    public byte[] ToBytes()
    {
        using var ms = new MemoryStream();
        Write(ms);
        return ms.ToArray();
    }

    public void Write(string path)
    {
        using var fs = File.Create(path);
        Write(fs);
    }

    public void Write(Stream stream)
    {
        int alignment = GgufFile.DefaultAlignment;
        foreach (var (k, _, v) in _meta)
            if (k == "general.alignment" && v is uint a) alignment = (int)a;

        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufFile.Magic);
        w.Write(Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_meta.Count);
        foreach (var (k, t, v) in _meta)
        {
            WriteString(w, k);
            w.Write((uint)t);
            WriteValue(w, t, v);
        }
        long offset = 0;
        foreach (var (name, dims, type, data) in _tensors)
        {
            WriteString(w, name);
            w.Write((uint)dims.Length);
            foreach (var d in dims) w.Write((ulong)d);
            w.Write((uint)type);
            w.Write((ulong)offset);
            offset += data.Length;
            offset += Pad(offset, alignment);
        }
        w.Flush();
        w.Write(new byte[Pad(stream.Position, alignment)]);
        foreach (var (_, _, _, data) in _tensors)
        {
            w.Write(data);
            w.Write(new byte[Pad(data.Length, alignment)]);
        }
    }

    private static long Pad(long x, int a) => (a - x % a) % a;

    private static void WriteString(BinaryWriter w, string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)b.Length);
        w.Write(b);
    }

    private static void WriteValue(BinaryWriter w, GgufValueType t, object v)
    {
        switch (t)
        {
            case GgufValueType.UInt8: w.Write((byte)v); break;
            case GgufValueType.Int8: w.Write((sbyte)v); break;
            case GgufValueType.UInt16: w.Write((ushort)v); break;
            case GgufValueType.Int16: w.Write((short)v); break;
            case GgufValueType.UInt32: w.Write((uint)v); break;
            case GgufValueType.Int32: w.Write((int)v); break;
            case GgufValueType.Float32: w.Write((float)v); break;
            case GgufValueType.Bool: w.Write((bool)v ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(w, (string)v); break;
            case GgufValueType.UInt64: w.Write((ulong)v); break;
            case GgufValueType.Int64: w.Write((long)v); break;
            case GgufValueType.Float64: w.Write((double)v); break;
            case GgufValueType.Array:
                var a = (GgufArray)v;
                w.Write((uint)a.ElementType);
                w.Write((ulong)a.Count);
                foreach (var item in a.Items) WriteValue(w, a.ElementType, item!);
                break;
            default: throw new ArgumentOutOfRangeException(nameof(t));
        }
    }
}
