using SharpInfer.Gguf;
using SharpInfer.Tensors;

namespace SharpInfer.Tests.Gguf;

/// <summary>The streaming GGUF writer reproduces ggml's layout byte for byte and refuses to write a file whose tensors
/// did not get exactly their declared bytes.</summary>
public class GgufStreamWriterTests
{
    /// <summary>Writes <paramref name="g"/>'s metadata and tensors back out unchanged, each tensor in
    /// <paramref name="pieces"/> pieces.</summary>
    private static void Rewrite(GgufFile g, Stream s, int pieces = 1)
    {
        var meta = g.MetadataKeys.Select(k => new GgufKeyValue(k, g.MetadataTypes[k], g.Metadata[k])).ToList();
        var specs = g.Tensors.Select(t => new GgufTensorSpec(t.Name, t.Dims, t.Type)).ToList();
        var w = new GgufStreamWriter(s, meta, specs, g.Alignment, g.Version);
        Assert.Equal(g.FileSize, w.FileSize);
        w.WriteHeader();
        foreach (var t in g.Tensors)
        {
            var bytes = g.TensorBytes(t);
            int step = Math.Max(1, bytes.Length / pieces);
            for (int off = 0; off < bytes.Length; off += step) w.WriteTensorData(bytes.Slice(off, Math.Min(step, bytes.Length - off)));
        }
        w.Complete();
    }

    /// <summary>stories260K was written by llama.cpp's tools; the synthetic model by synth_gguf.py, whose layout
    /// is ggml's (header, infos, zero padding to 32, each tensor padded to 32).</summary>
    [Theory]
    [InlineData("stories260K", 1)]
    [InlineData("stories260K", 7)]
    [InlineData("mistral-tiny", 3)]
    public void Rewriting_a_ggml_written_file_unchanged_gives_the_same_bytes(string model, int pieces)
    {
        string path = model == "stories260K" ? TestPaths.Stories260K : TestModels.Get(model, "f32");
        using var g = GgufFile.Open(path);
        using var hash = new HashingStream();
        Rewrite(g, hash, pieces);
        Assert.Equal(new FileInfo(path).Length, hash.Length);
        Assert.Equal(HashingStream.HexDigestOfFile(path), hash.HexDigest());
    }

    [Fact]
    public void What_it_writes_reads_back_with_the_same_metadata_and_tensors()
    {
        var meta = new List<GgufKeyValue>
        {
            new("general.architecture", GgufValueType.String, "llama"),
            new("a.u8", GgufValueType.UInt8, (byte)7),
            new("a.i64", GgufValueType.Int64, -5L),
            new("a.f64", GgufValueType.Float64, 0.25),
            new("a.bool", GgufValueType.Bool, true),
            new("a.strings", GgufValueType.Array, new GgufArray(GgufValueType.String, new[] { "x", "yz", "" })),
            new("a.floats", GgufValueType.Array, new GgufArray(GgufValueType.Float32, new[] { 1.5f, -2f })),
        };
        var rng = new Random(3);
        var vec = Enumerable.Range(0, 5).Select(_ => (float)rng.NextDouble()).ToArray();
        var q8 = new byte[GgmlTypeInfo.RowSize(GgmlType.Q8_0, 64) * 3];
        rng.NextBytes(q8);
        var specs = new List<GgufTensorSpec> { new("v", [5], GgmlType.F32), new("empty", [0, 4], GgmlType.F32), new("m", [64, 3], GgmlType.Q8_0) };
        var path = TestPaths.NewTempFile();
        try
        {
            using (var f = File.Create(path))
            {
                var w = new GgufStreamWriter(f, meta, specs);
                w.WriteHeader();
                w.WriteTensorData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(vec.AsSpan()));
                w.WriteTensorData(q8);
                w.Complete();
                Assert.Equal(w.FileSize, f.Length);
            }
            using var g = GgufFile.Open(path);
            Assert.Equal(meta.Select(m => m.Key), g.MetadataKeys);
            Assert.Equal((byte)7, g.Metadata["a.u8"]);
            Assert.Equal(-5L, g.Metadata["a.i64"]);
            Assert.Equal(new[] { "x", "yz", "" }, (string[])g.GetArray("a.strings")!.Items);
            Assert.Equal(new[] { "v", "empty", "m" }, g.Tensors.Select(t => t.Name));
            Assert.Equal(vec, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(g.TensorBytes(g.GetTensor("v"))).ToArray());
            Assert.Equal(q8, g.TensorBytes(g.GetTensor("m")).ToArray());
            Assert.All(g.Tensors, t => Assert.Equal(0, (g.DataOffset + t.Offset) % 32));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Too_many_or_too_few_tensor_bytes_are_refused()
    {
        var specs = new List<GgufTensorSpec> { new("v", [4], GgmlType.F32) };
        var w = new GgufStreamWriter(new MemoryStream(), [], specs);
        Assert.Throws<InvalidOperationException>(() => w.WriteTensorData(new byte[4]));   // before the header
        w.WriteHeader();
        w.WriteTensorData(new byte[12]);
        Assert.Contains("12 of its 16 bytes", Assert.Throws<InvalidOperationException>(w.Complete).Message);
        Assert.Throws<InvalidOperationException>(() => w.WriteTensorData(new byte[8]));
    }

    [Fact]
    public void A_row_length_the_type_cannot_hold_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new GgufStreamWriter(new MemoryStream(), [], [new GgufTensorSpec("m", [48, 2], GgmlType.Q4_0)]));
        Assert.Contains("not a multiple of the q4_0 block size 32", e.Message);
    }
}
