using SharpInfer.Gguf;
using SharpInfer.Tensors;

namespace SharpInfer.Tests.Gguf;

public class GgufReaderTests
{
    [Fact]
    public void ReadsStories260K()
    {
        using var g = GgufFile.Open(TestPaths.Stories260K);
        Assert.Equal(3u, g.Version);
        Assert.Equal("llama", g.GetString("general.architecture"));
        Assert.Equal(64, g.GetInteger("llama.embedding_length"));
        Assert.Equal(512, g.GetArray("tokenizer.ggml.tokens")!.Count);
        Assert.Equal(48, g.Tensors.Count);
        var emb = g.GetTensor("token_embd.weight");
        Assert.Equal(new long[] { 64, 512 }, emb.Dims);
        Assert.Equal(GgmlType.F32, emb.Type);
        Assert.Equal(64 * 512 * 4, emb.ByteSize);
        Assert.Equal(0, g.DataOffset % g.Alignment);
    }

    [Fact]
    public void RoundTripsEveryValueType()
    {
        var w = new GgufWriter()
            .AddRaw("u8", GgufValueType.UInt8, (byte)200).AddRaw("i8", GgufValueType.Int8, (sbyte)-5)
            .AddRaw("u16", GgufValueType.UInt16, (ushort)65000).AddRaw("i16", GgufValueType.Int16, (short)-300)
            .Add("u32", 4_000_000_000u).Add("i32", -7).Add("f32", 1.5f).Add("b", true).Add("s", "héllo ✓")
            .Add("u64", ulong.MaxValue).AddRaw("i64", GgufValueType.Int64, long.MinValue)
            .AddRaw("f64", GgufValueType.Float64, Math.PI)
            .Add("arr.i32", new GgufArray(GgufValueType.Int32, new[] { 1, -2, 3 }))
            .Add("arr.str", new GgufArray(GgufValueType.String, new[] { "a", "", "ccc" }))
            .Add("arr.bool", new GgufArray(GgufValueType.Bool, new[] { true, false }))
            .Add("arr.nested", new GgufArray(GgufValueType.Array, new[]
            {
                new GgufArray(GgufValueType.Float32, new[] { 0.5f }), new GgufArray(GgufValueType.UInt8, new byte[] { 1, 2 }),
            }))
            .AddTensor("t", [4, 2], Enumerable.Range(0, 8).Select(i => (float)i).ToArray());
        var path = TestPaths.NewTempFile();
        w.Write(path);
        try
        {
            using var g = GgufFile.Open(path);
            Assert.Equal((byte)200, g.Metadata["u8"]);
            Assert.Equal((sbyte)-5, g.Metadata["i8"]);
            Assert.Equal((ushort)65000, g.Metadata["u16"]);
            Assert.Equal((short)-300, g.Metadata["i16"]);
            Assert.Equal(4_000_000_000L, g.GetInteger("u32"));
            Assert.Equal(-7, g.GetInteger("i32"));
            Assert.Equal(1.5, g.GetFloat("f32"));
            Assert.True(g.GetBool("b"));
            Assert.Equal("héllo ✓", g.GetString("s"));
            Assert.Equal(ulong.MaxValue, g.Metadata["u64"]);
            Assert.Equal(long.MinValue, g.GetInteger("i64"));
            Assert.Equal(Math.PI, g.GetFloat("f64"));
            Assert.Equal(new[] { 1, -2, 3 }, (int[])g.GetArray("arr.i32")!.Items);
            Assert.Equal(new[] { "a", "", "ccc" }, (string[])g.GetArray("arr.str")!.Items);
            Assert.Equal(new[] { true, false }, (bool[])g.GetArray("arr.bool")!.Items);
            var nested = (GgufArray[])g.GetArray("arr.nested")!.Items;
            Assert.Equal(new[] { 0.5f }, (float[])nested[0].Items);
            Assert.Equal(new byte[] { 1, 2 }, (byte[])nested[1].Items);
            Assert.Equal(new[] { "u8", "i8", "u16", "i16", "u32", "i32", "f32", "b", "s", "u64", "i64", "f64", "arr.i32", "arr.str", "arr.bool", "arr.nested" }, g.MetadataKeys);
            var t = g.GetTensor("t");
            var data = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(g.TensorBytes(t));
            Assert.Equal(7f, data[7]);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ReadsVersion2()
    {
        var w = new GgufWriter { Version = 2 }.Add("general.architecture", "llama").AddTensor("x", [32], new float[32]);
        var g = OpenBytes(w.ToBytes());
        Assert.Equal(2u, g.Version);
    }

    [Fact]
    public void HonoursCustomAlignment()
    {
        var w = new GgufWriter().Add("general.alignment", 64u).AddTensor("a", [3], new float[3]).AddTensor("b", [5], new float[] { 1, 2, 3, 4, 5 });
        using var g = OpenBytes(w.ToBytes());
        Assert.Equal(64, g.Alignment);
        Assert.Equal(0, g.DataOffset % 64);
        Assert.Equal(64, g.GetTensor("b").Offset);
        Assert.Equal(5f, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(g.TensorBytes(g.GetTensor("b")))[4]);
    }

    public static TheoryData<string, Func<byte[], byte[]>, string> Malformed() => new()
    {
        { "magic", b => Patch(b, 0, "GGUX"u8.ToArray()), "not a GGUF file" },
        { "version1", b => Patch(b, 4, BitConverter.GetBytes(1u)), "version 1" },
        { "version9", b => Patch(b, 4, BitConverter.GetBytes(9u)), "unsupported GGUF version 9" },
        { "empty", _ => [], "empty" },
        { "tiny", b => b[..10], "too small" },
        { "tensor count", b => Patch(b, 8, BitConverter.GetBytes(ulong.MaxValue / 2)), "tensor count" },
        { "kv count", b => Patch(b, 16, BitConverter.GetBytes(1UL << 60)), "metadata count" },
        { "string length", b => Patch(b, 24, BitConverter.GetBytes(1UL << 62)), "string length" },
        { "truncated header", b => b[..40], "truncated" },
        { "truncated data", b => b[..(b.Length - 8)], "past the end of the file" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void RejectsMalformedFilesWithClearError(string name, Func<byte[], byte[]> corrupt, string expected)
    {
        var bytes = corrupt(SmallFile());
        var path = TestPaths.NewTempFile();
        File.WriteAllBytes(path, bytes);
        try
        {
            var e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(path).Dispose());
            Assert.Contains(expected, e.Message);
            Assert.Contains(path, e.Message);
            Assert.False(string.IsNullOrEmpty(name));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void RejectsUnknownTensorType()
    {
        var w = new GgufWriter().AddTensor("x", [32], (GgmlType)77, new byte[64]);
        var e = Assert.Throws<GgufFormatException>(() => OpenBytes(w.ToBytes()));
        Assert.Contains("unknown tensor type 77", e.Message);
    }

    [Fact]
    public void RejectsShapeAndSizeMismatch()
    {
        // q8_0 rows must be a multiple of 32 elements
        var w = new GgufWriter().AddTensor("x", [33], GgmlType.Q8_0, new byte[34]);
        var e = Assert.Throws<GgufFormatException>(() => OpenBytes(w.ToBytes()));
        Assert.Contains("not a multiple of its block size", e.Message);
        // a tensor whose shape needs more bytes than the file holds
        var w2 = new GgufWriter().AddTensor("y", [1024, 1024], GgmlType.F32, new byte[64]);
        var e2 = Assert.Throws<GgufFormatException>(() => OpenBytes(w2.ToBytes()));
        Assert.Contains("past the end of the file", e2.Message);
    }

    [Fact]
    public void RejectsDuplicatesAndBadDims()
    {
        var dupKey = new GgufWriter().Add("a", 1u).Add("a", 2u);
        Assert.Contains("duplicate metadata key", Assert.Throws<GgufFormatException>(() => OpenBytes(dupKey.ToBytes())).Message);
        var dupTensor = new GgufWriter().AddTensor("t", [1], new float[1]).AddTensor("t", [1], new float[1]);
        Assert.Contains("duplicate tensor name", Assert.Throws<GgufFormatException>(() => OpenBytes(dupTensor.ToBytes())).Message);
        var fiveDims = new GgufWriter().AddTensor("t", [1, 1, 1, 1, 1], new float[1]);
        Assert.Contains("dimensions", Assert.Throws<GgufFormatException>(() => OpenBytes(fiveDims.ToBytes())).Message);
        var badBool = new GgufWriter().AddRaw("b", GgufValueType.UInt8, (byte)7);
        var bytes = badBool.ToBytes();
        bytes[24 + 8 + 1] = (byte)GgufValueType.Bool; // retype the value as a bool holding 7
        Assert.Contains("invalid bool", Assert.Throws<GgufFormatException>(() => OpenBytes(bytes)).Message);
    }

    [Fact]
    public void MissingFileIsAClearError()
    {
        var e = Assert.Throws<GgufFormatException>(() => GgufFile.Open("/nonexistent/model.gguf"));
        Assert.Contains("/nonexistent/model.gguf", e.Message);
    }

    private static byte[] SmallFile() =>
        new GgufWriter().Add("general.architecture", "llama").Add("k", 5u)
            .AddTensor("w", [32, 2], Enumerable.Range(0, 64).Select(i => (float)i).ToArray()).ToBytes();

    private static byte[] Patch(byte[] b, int at, byte[] with)
    {
        var c = (byte[])b.Clone();
        with.CopyTo(c, at);
        return c;
    }

    private static readonly List<string> Temps = [];

    internal static GgufFile OpenBytes(byte[] bytes)
    {
        var path = TestPaths.NewTempFile();
        File.WriteAllBytes(path, bytes);
        lock (Temps) Temps.Add(path);
        return GgufFile.Open(path);
    }
}
