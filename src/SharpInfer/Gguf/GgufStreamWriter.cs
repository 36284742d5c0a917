using System.Text;
using SharpInfer.Tensors;

namespace SharpInfer.Gguf;

/// <summary>One metadata entry to write: key, GGUF value type and value (for arrays a <see cref="GgufArray"/>).</summary>
internal readonly record struct GgufKeyValue(string Key, GgufValueType Type, object Value);

/// <summary>One tensor to write: name, dimensions exactly as they go into the file (ggml order, Dims[0] innermost)
/// and type. Its data size follows from those.</summary>
internal readonly record struct GgufTensorSpec(string Name, long[] Dims, GgmlType Type)
{
    public long ByteSize
    {
        get
        {
            long elements = 1;
            foreach (var d in Dims) elements *= d;
            long rowLength = Dims.Length > 0 ? Dims[0] : 1;
            if (rowLength % GgmlTypeInfo.BlockSize(Type) != 0)
                throw new ArgumentException($"tensor {FileText.Quote(Name)}: row length {rowLength} is not a multiple of the {GgmlTypeInfo.Name(Type)} block size {GgmlTypeInfo.BlockSize(Type)}");
            return elements / GgmlTypeInfo.BlockSize(Type) * GgmlTypeInfo.TypeSize(Type);
        }
    }
}

/// <summary>
/// Writes a GGUF v3 file front to back without holding tensor data: the header, metadata and tensor infos go out
/// first (every tensor's size is known from its shape and type, so every offset is too), then each tensor's bytes
/// in order, in as many pieces as the caller likes, each tensor padded with zeros to the alignment.
/// The layout is ggml's gguf writer's byte for byte: metadata and tensors in the given order, the data section
/// starting at the first aligned offset after the tensor infos, tensor offsets relative to it.
/// </summary>
internal sealed class GgufStreamWriter
{
    private readonly Stream _stream;
    private readonly IReadOnlyList<GgufKeyValue> _meta;
    private readonly IReadOnlyList<GgufTensorSpec> _tensors;
    private readonly long[] _sizes;
    private readonly int _alignment;
    private int _current = -1;      // tensor being written; -1 before the header
    private long _writtenOfCurrent;
    private bool _headerDone;

    /// <param name="alignment">Data alignment; ggml uses general.alignment when present, else 32.</param>
    public GgufStreamWriter(Stream stream, IReadOnlyList<GgufKeyValue> metadata, IReadOnlyList<GgufTensorSpec> tensors,
                            int alignment = GgufFile.DefaultAlignment, uint version = 3)
    {
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0) throw new ArgumentException($"alignment {alignment} is not a power of two");
        _stream = stream;
        _meta = metadata;
        _tensors = tensors;
        _alignment = alignment;
        Version = version;
        _sizes = tensors.Select(t => t.ByteSize).ToArray();
    }

    public uint Version { get; }

    /// <summary>The alignment <see cref="GgufFile"/> will use for this metadata: general.alignment, else 32.</summary>
    public static int AlignmentOf(IEnumerable<GgufKeyValue> metadata)
    {
        foreach (var kv in metadata)
            if (kv.Key == "general.alignment" && kv.Value is uint a) return (int)a;
        return GgufFile.DefaultAlignment;
    }

    /// <summary>Total file size this writer will produce.</summary>
    public long FileSize => HeaderSize() + DataSize();

    /// <summary>Writes header, metadata, tensor infos and the padding before the data section.</summary>
    public void WriteHeader()
    {
        if (_headerDone) throw new InvalidOperationException("the header is already written");
        long unpadded = UnpaddedHeaderSize();
        using (var w = new BinaryWriter(_stream, Encoding.UTF8, leaveOpen: true))
            WriteHeaderTo(w);
        WriteZeros(Pad(unpadded, _alignment));
        _headerDone = true;
        _current = 0;
        _writtenOfCurrent = 0;
        SkipEmptyTensors();
    }

    /// <summary>Appends bytes of the current tensor; a tensor's pieces must add up to exactly its size, after
    /// which its padding is written and the next tensor begins.</summary>
    public void WriteTensorData(ReadOnlySpan<byte> data)
    {
        if (!_headerDone) throw new InvalidOperationException("write the header first");
        while (data.Length > 0)
        {
            if (_current >= _tensors.Count) throw new InvalidOperationException("more tensor data than the tensors declared");
            long left = _sizes[_current] - _writtenOfCurrent;
            int n = (int)Math.Min(left, data.Length);
            _stream.Write(data[..n]);
            _writtenOfCurrent += n;
            data = data[n..];
            if (_writtenOfCurrent == _sizes[_current])
            {
                WriteZeros(Pad(_sizes[_current], _alignment));
                _current++;
                _writtenOfCurrent = 0;
                SkipEmptyTensors();
            }
        }
    }

    /// <summary>Checks that every tensor got all its bytes and flushes.</summary>
    public void Complete()
    {
        if (!_headerDone) throw new InvalidOperationException("write the header first");
        if (_current < _tensors.Count)
            throw new InvalidOperationException($"tensor {FileText.Quote(_tensors[_current].Name)} got {_writtenOfCurrent} of its {_sizes[_current]} bytes");
        _stream.Flush();
    }

    private void SkipEmptyTensors()
    {
        while (_current < _tensors.Count && _sizes[_current] == 0) _current++;
    }

    private long HeaderSize()
    {
        long unpadded = UnpaddedHeaderSize();
        return unpadded + Pad(unpadded, _alignment);
    }

    private long UnpaddedHeaderSize()
    {
        using var counter = new CountingStream();
        using (var w = new BinaryWriter(counter, Encoding.UTF8, leaveOpen: true))
            WriteHeaderTo(w);
        return counter.Length;
    }

    private long DataSize()
    {
        long total = 0;
        foreach (var s in _sizes) total += s + Pad(s, _alignment);
        return total;
    }

    private void WriteHeaderTo(BinaryWriter w)
    {
        w.Write(GgufFile.Magic);
        w.Write(Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_meta.Count);
        foreach (var kv in _meta)
        {
            WriteString(w, kv.Key);
            w.Write((uint)kv.Type);
            WriteValue(w, kv.Type, kv.Value);
        }
        long offset = 0;
        for (int i = 0; i < _tensors.Count; i++)
        {
            var t = _tensors[i];
            WriteString(w, t.Name);
            w.Write((uint)t.Dims.Length);
            foreach (var d in t.Dims) w.Write((ulong)d);
            w.Write((uint)t.Type);
            w.Write((ulong)offset);
            offset += _sizes[i] + Pad(_sizes[i], _alignment);
        }
        w.Flush();
    }

    private void WriteZeros(long n)
    {
        Span<byte> zeros = stackalloc byte[64];
        zeros.Clear();
        while (n > 0)
        {
            int k = (int)Math.Min(n, zeros.Length);
            _stream.Write(zeros[..k]);
            n -= k;
        }
    }

    internal static long Pad(long x, int a) => (a - x % a) % a;

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

    /// <summary>A write-only stream that only counts (to size the header without building it in memory).</summary>
    private sealed class CountingStream : Stream
    {
        private long _position;
        public override bool CanRead => false;
        public override bool CanSeek => true;
        public override bool CanWrite => true;
        public override long Length => _position;
        public override long Position { get => _position; set => _position = value; }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => _position += count;
        public override void Write(ReadOnlySpan<byte> buffer) => _position += buffer.Length;
    }
}
