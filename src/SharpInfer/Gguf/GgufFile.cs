using System.IO.MemoryMappedFiles;
using System.Text;
using SharpInfer.Tensors;

namespace SharpInfer.Gguf;

/// <summary>
/// A GGUF file (versions 2 and 3), opened read-only and memory-mapped: the header and metadata are parsed
/// at open time, tensor data stays in the mapping and is handed out as pointers, never copied.
/// Every malformed input raises <see cref="GgufFormatException"/> naming the file and the problem.
/// </summary>
internal sealed unsafe class GgufFile : IDisposable
{
    public const uint Magic = 0x46554747; // "GGUF" little-endian
    public const int DefaultAlignment = 32;
    /// <summary>ggml's GGML_MAX_DIMS.</summary>
    public const int MaxDims = 4;
    /// <summary>ggml's GGML_MAX_NAME (names are stored with a terminating zero, so at most 63 bytes).</summary>
    public const int MaxTensorNameBytes = 63;

    private readonly MemoryMappedFile _mmf;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName;

    public string Path { get; }
    public uint Version { get; }
    public long FileSize { get; }
    public int Alignment { get; }
    /// <summary>File offset where the tensor data section begins; tensor offsets are relative to it.</summary>
    public long DataOffset { get; }
    public IReadOnlyDictionary<string, object> Metadata { get; }
    /// <summary>Metadata keys in file order.</summary>
    public IReadOnlyList<string> MetadataKeys { get; }
    public IReadOnlyDictionary<string, GgufValueType> MetadataTypes { get; }
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    private GgufFile(string path, MemoryMappedFile mmf, MemoryMappedViewAccessor view, byte* basePtr, long size)
    {
        Path = path;
        _mmf = mmf;
        _view = view;
        _base = basePtr;
        FileSize = size;
        var r = new Reader(path, basePtr, size);

        if (size < 24) r.Fail($"file is too small to be GGUF ({size} bytes)");
        uint magic = r.U32();
        if (magic != Magic)
            r.Fail($"not a GGUF file (magic 0x{magic:X8}, expected 0x{Magic:X8} \"GGUF\")");
        Version = r.U32();
        if (Version == 1) r.Fail("GGUF version 1 is not supported (only versions 2 and 3)");
        if (Version is not (2 or 3))
            r.Fail($"unsupported GGUF version {Version} (supported: 2, 3){(Version > 0xFFFF ? " — big-endian files are not supported" : "")}");
        long tensorCount = r.Count("tensor count", 8 + 4 + 4 + 8 + 8);
        long kvCount = r.Count("metadata count", 8 + 4 + 1);

        var meta = new Dictionary<string, object>(StringComparer.Ordinal);
        var types = new Dictionary<string, GgufValueType>(StringComparer.Ordinal);
        var keys = new List<string>();
        for (long i = 0; i < kvCount; i++)
        {
            string key = r.String("metadata key");
            var type = r.ValueType($"metadata {FileText.Quote(key)}");
            object value = r.Value(type, $"metadata {FileText.Quote(key)}", depth: 0);
            if (!meta.TryAdd(key, value)) r.Fail($"duplicate metadata key {FileText.Quote(key)}");
            types[key] = type;
            keys.Add(key);
        }
        Metadata = meta;
        MetadataTypes = types;
        MetadataKeys = keys;

        int alignment = DefaultAlignment;
        if (meta.TryGetValue("general.alignment", out var alignObj))
        {
            if (alignObj is not uint a || a == 0 || (a & (a - 1)) != 0 || a > 1 << 20)
                r.Fail($"general.alignment must be a power of two UINT32, got {DescribeValue(alignObj)}");
            alignment = (int)(uint)alignObj;
        }
        Alignment = alignment;

        var infos = new List<(string Name, long[] Dims, GgmlType Type, long Offset)>((int)Math.Min(tensorCount, 1 << 16));
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (long i = 0; i < tensorCount; i++)
        {
            string name = r.String($"tensor {i} name");
            if (Encoding.UTF8.GetByteCount(name) > MaxTensorNameBytes)
                r.Fail($"tensor name {FileText.Quote(name)} is longer than {MaxTensorNameBytes} bytes");
            if (!names.Add(name)) r.Fail($"duplicate tensor name {FileText.Quote(name)}");
            uint nDims = r.U32();
            if (nDims > MaxDims) r.Fail($"tensor {FileText.Quote(name)} has {nDims} dimensions (at most {MaxDims})");
            var dims = new long[nDims];
            for (int d = 0; d < nDims; d++)
            {
                ulong v = r.U64();
                if (v > long.MaxValue) r.Fail($"tensor {FileText.Quote(name)} dimension {d} is {v}, too large");
                dims[d] = (long)v;
            }
            uint rawType = r.U32();
            var type = (GgmlType)rawType;
            if (!GgmlTypeInfo.IsKnown(type))
                r.Fail($"tensor {FileText.Quote(name)} has unknown tensor type {rawType}");
            ulong off = r.U64();
            if (off > (ulong)size) r.Fail($"tensor {FileText.Quote(name)} data offset {off} is beyond the end of the file ({size} bytes)");
            if (off % (ulong)alignment != 0) r.Fail($"tensor {FileText.Quote(name)} data offset {off} is not a multiple of the alignment {alignment}");
            infos.Add((name, dims, type, (long)off));
        }

        long dataStart = AlignUp(r.Position, alignment);
        if (tensorCount > 0 && dataStart > size) r.Fail($"tensor data section starts at {dataStart}, beyond the end of the file ({size} bytes)");
        DataOffset = dataStart;

        var tensors = new List<GgufTensorInfo>(infos.Count);
        foreach (var (name, dims, type, off) in infos)
        {
            long bytes = TensorByteSize(r, name, dims, type);
            if (dataStart + off + bytes > size || dataStart + off + bytes < 0)
                r.Fail($"tensor {FileText.Quote(name)} data [{dataStart + off}, {dataStart + off + bytes}) lies past the end of the file ({size} bytes): the file is truncated");
            tensors.Add(new GgufTensorInfo(name, dims, type, off, bytes));
        }
        Tensors = tensors;
        _tensorsByName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    private static long TensorByteSize(Reader r, string name, long[] dims, GgmlType type)
    {
        int bs = GgmlTypeInfo.BlockSize(type);
        long elements = 1;
        foreach (var d in dims)
        {
            if (d != 0 && elements > long.MaxValue / d) r.Fail($"tensor {FileText.Quote(name)} shape [{string.Join(", ", dims)}] overflows");
            elements *= d;
        }
        long ne0 = dims.Length > 0 ? dims[0] : 1;
        if (ne0 % bs != 0)
            r.Fail($"tensor {FileText.Quote(name)} of type {GgmlTypeInfo.Name(type)} has a row length {ne0} that is not a multiple of its block size {bs}");
        long blocks = elements / bs;
        long ts = GgmlTypeInfo.TypeSize(type);
        if (blocks > long.MaxValue / ts) r.Fail($"tensor {FileText.Quote(name)} is too large");
        return blocks * ts;
    }

    private static long AlignUp(long x, long a) => (x + a - 1) / a * a;

    /// <summary>Opens and parses a GGUF file. Throws <see cref="GgufFormatException"/> for anything malformed
    /// (and for I/O problems such as a missing file).</summary>
    public static GgufFile Open(string path)
    {
        long size;
        try
        {
            var fi = new FileInfo(path);
            if (!fi.Exists) throw new GgufFormatException(path, "file not found");
            size = fi.Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new GgufFormatException(path, $"cannot open: {e.Message}", e);
        }
        if (size == 0) throw new GgufFormatException(path, "file is empty");

        MemoryMappedFile? mmf = null;
        MemoryMappedViewAccessor? view = null;
        byte* ptr = null;
        try
        {
            mmf = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            view = mmf.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref ptr);
            ptr += view.PointerOffset;
            return new GgufFile(path, mmf, view, ptr, size);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Release(mmf, view, ptr);
            throw new GgufFormatException(path, $"cannot map: {e.Message}", e);
        }
        catch
        {
            Release(mmf, view, ptr);
            throw;
        }
    }

    private static void Release(MemoryMappedFile? mmf, MemoryMappedViewAccessor? view, byte* ptr)
    {
        if (ptr != null) view?.SafeMemoryMappedViewHandle.ReleasePointer();
        view?.Dispose();
        mmf?.Dispose();
    }

    public bool TryGetTensor(string name, out GgufTensorInfo info) => _tensorsByName.TryGetValue(name, out info!);

    public GgufTensorInfo GetTensor(string name) =>
        _tensorsByName.TryGetValue(name, out var t) ? t : throw new UnsupportedModelException($"{Path}: tensor {FileText.Quote(name)} is missing");

    /// <summary>Pointer to a tensor's bytes inside the mapping (valid until the file is disposed).</summary>
    public byte* TensorData(GgufTensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        return _base + DataOffset + t.Offset;
    }

    /// <summary>A tensor's bytes as a span (tensors over 2 GiB must use <see cref="TensorData"/>).</summary>
    public ReadOnlySpan<byte> TensorBytes(GgufTensorInfo t)
    {
        if (t.ByteSize > int.MaxValue) throw new NotSupportedException($"tensor {FileText.Quote(t.Name)} is larger than 2 GiB; use TensorData");
        return new ReadOnlySpan<byte>(TensorData(t), (int)t.ByteSize);
    }

    // ---- typed metadata access ------------------------------------------------------------------

    public bool Has(string key) => Metadata.ContainsKey(key);

    public string? GetString(string key) => Metadata.TryGetValue(key, out var v) ? v as string ?? throw Bad(key, v, "a string") : null;

    public long? GetInteger(string key)
    {
        if (!Metadata.TryGetValue(key, out var v)) return null;
        return v switch
        {
            byte b => b,
            sbyte sb => sb,
            ushort us => us,
            short s => s,
            uint u => u,
            int i => i,
            ulong ul when ul <= long.MaxValue => (long)ul,
            long l => l,
            bool bo => bo ? 1 : 0,
            _ => throw Bad(key, v, "an integer"),
        };
    }

    public double? GetFloat(string key)
    {
        if (!Metadata.TryGetValue(key, out var v)) return null;
        return v switch
        {
            float f => f,
            double d => d,
            byte or sbyte or ushort or short or uint or int or ulong or long => Convert.ToDouble(v, System.Globalization.CultureInfo.InvariantCulture),
            _ => throw Bad(key, v, "a number"),
        };
    }

    public bool? GetBool(string key)
    {
        if (!Metadata.TryGetValue(key, out var v)) return null;
        return v switch { bool b => b, byte or sbyte or ushort or short or uint or int or ulong or long => Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture) != 0, _ => throw Bad(key, v, "a bool") };
    }

    public GgufArray? GetArray(string key) => Metadata.TryGetValue(key, out var v) ? v as GgufArray ?? throw Bad(key, v, "an array") : null;

    private GgufFormatException Bad(string key, object v, string expected) =>
        new(Path, $"metadata {FileText.Quote(key)} should be {expected} but is {DescribeValue(v)}");

    public static string DescribeValue(object v) => v switch
    {
        GgufArray a => $"array of {a.Count} {a.ElementType}",
        string s => $"string {FileText.Quote(s)}",
        _ => $"{v.GetType().Name} {v}",
    };

    public void Dispose()
    {
        if (_base == null) return;
        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _mmf.Dispose();
    }

    // ---- bounds-checked little-endian reader over the mapping ----------------------------------

    private sealed class Reader(string path, byte* basePtr, long size)
    {
        /// <summary>Arrays nest at most this deep (nothing real nests more than once).</summary>
        private const int MaxDepth = 8;
        public long Position;

        [System.Diagnostics.CodeAnalysis.DoesNotReturn]
        public void Fail(string problem) => throw new GgufFormatException(path, problem);

        private byte* Take(long n, string what = "value")
        {
            if (n < 0 || n > size - Position)
                Fail($"truncated: need {n} bytes for {what} at offset {Position}, but the file has {size} bytes");
            byte* p = basePtr + Position;
            Position += n;
            return p;
        }

        public byte U8() => *Take(1);
        public ushort U16() => System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(Take(2), 2));
        public uint U32() => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(Take(4), 4));
        public ulong U64() => System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(Take(8), 8));

        /// <summary>Reads a u64 count and rejects it when even the smallest encoding of that many items
        /// could not fit in the rest of the file (so absurd counts fail fast instead of allocating).</summary>
        public long Count(string what, long minItemBytes)
        {
            ulong n = U64();
            long remaining = size - Position;
            if (n > (ulong)(remaining / Math.Max(1, minItemBytes)))
                Fail($"truncated or corrupt: {what} {n} is impossible, the {remaining} remaining bytes could hold at most {remaining / Math.Max(1, minItemBytes)}");
            return (long)n;
        }

        public string String(string what)
        {
            ulong len = U64();
            if (len > (ulong)(size - Position))
                Fail($"{what}: string length {len} at offset {Position - 8} runs past the end of the file ({size} bytes): truncated or corrupt");
            if (len > int.MaxValue) Fail($"{what}: string length {len} is too large");
            byte* p = Take((long)len, what);
            try
            {
                return StrictUtf8.GetString(p, (int)len);
            }
            catch (DecoderFallbackException)
            {
                Fail($"{what}: string at offset {Position - (long)len} is not valid UTF-8");
                return null!;
            }
        }

        public GgufValueType ValueType(string what)
        {
            uint t = U32();
            if (t > (uint)GgufValueType.Float64) Fail($"{what}: unknown value type {t}");
            return (GgufValueType)t;
        }

        private static int MinSize(GgufValueType t) => t switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.String => 8,
            GgufValueType.Array => 12,
            _ => 8,
        };

        public object Value(GgufValueType type, string what, int depth)
        {
            switch (type)
            {
                case GgufValueType.UInt8: return U8();
                case GgufValueType.Int8: return (sbyte)U8();
                case GgufValueType.UInt16: return U16();
                case GgufValueType.Int16: return (short)U16();
                case GgufValueType.UInt32: return U32();
                case GgufValueType.Int32: return (int)U32();
                case GgufValueType.Float32: return BitConverter.Int32BitsToSingle((int)U32());
                case GgufValueType.Bool:
                    byte b = U8();
                    if (b > 1) Fail($"{what}: invalid bool value {b}");
                    return b == 1;
                case GgufValueType.String: return String(what);
                case GgufValueType.UInt64: return U64();
                case GgufValueType.Int64: return (long)U64();
                case GgufValueType.Float64: return BitConverter.Int64BitsToDouble((long)U64());
                case GgufValueType.Array:
                    if (depth >= MaxDepth) Fail($"{what}: arrays nested more than {MaxDepth} deep");
                    var et = ValueType(what + " element type");
                    long n = Count(what + " array length", MinSize(et));
                    if (n > int.MaxValue / 8) Fail($"{what}: array of {n} elements is too large");
                    return ReadArray(et, (int)n, what, depth + 1);
                default:
                    Fail($"{what}: unknown value type {(uint)type}");
                    return null!;
            }
        }

        private GgufArray ReadArray(GgufValueType et, int n, string what, int depth)
        {
            Array items;
            switch (et)
            {
                case GgufValueType.UInt8: items = Span(n, 1).ToArray(); break;
                case GgufValueType.Int8: items = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(Span(n, 1)).ToArray(); break;
                case GgufValueType.UInt16: items = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(Span(n, 2)).ToArray(); break;
                case GgufValueType.Int16: items = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, short>(Span(n, 2)).ToArray(); break;
                case GgufValueType.UInt32: items = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(Span(n, 4)).ToArray(); break;
                case GgufValueType.Int32: items = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(Span(n, 4)).ToArray(); break;
                case GgufValueType.Float32: items = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Span(n, 4)).ToArray(); break;
                case GgufValueType.UInt64: items = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(Span(n, 8)).ToArray(); break;
                case GgufValueType.Int64: items = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(Span(n, 8)).ToArray(); break;
                case GgufValueType.Float64: items = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(Span(n, 8)).ToArray(); break;
                case GgufValueType.Bool:
                    var bools = new bool[n];
                    var raw = Span(n, 1);
                    for (int i = 0; i < n; i++)
                    {
                        if (raw[i] > 1) Fail($"{what}: invalid bool value {raw[i]} at index {i}");
                        bools[i] = raw[i] == 1;
                    }
                    items = bools;
                    break;
                case GgufValueType.String:
                    var strs = new string[n];
                    for (int i = 0; i < n; i++) strs[i] = String($"{what}[{i}]");
                    items = strs;
                    break;
                case GgufValueType.Array:
                    var arrs = new GgufArray[n];
                    for (int i = 0; i < n; i++) arrs[i] = (GgufArray)Value(GgufValueType.Array, $"{what}[{i}]", depth);
                    items = arrs;
                    break;
                default:
                    Fail($"{what}: unknown array element type {(uint)et}");
                    return null!;
            }
            return new GgufArray(et, items);
        }

        private ReadOnlySpan<byte> Span(int n, int elemSize)
        {
            long bytes = (long)n * elemSize;
            if (bytes > int.MaxValue) Fail("array too large");
            return new ReadOnlySpan<byte>(Take(bytes, "array data"), (int)bytes);
        }
    }

    private static readonly Encoding StrictUtf8 = new UTF8Encoding(false, throwOnInvalidBytes: true);
}
