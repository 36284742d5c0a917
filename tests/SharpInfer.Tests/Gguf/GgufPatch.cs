using SharpInfer.Gguf;
using SharpInfer.Tensors;

namespace SharpInfer.Tests.Gguf;

/// <summary>A copy of a real GGUF file with some metadata or tensors changed (bad values, renamed or extra tensors,
/// NaN weights): the rest of the file stays valid, so a load fails (or succeeds) because of the change alone.</summary>
internal sealed class GgufPatch
{
    public sealed record Tensor(string Name, long[] Dims, GgmlType Type, byte[] Data);

    public List<(string Key, GgufValueType Type, object Value)> Metadata { get; } = [];
    public List<Tensor> Tensors { get; } = [];

    public static GgufPatch From(string path)
    {
        var p = new GgufPatch();
        using var g = GgufFile.Open(path);
        foreach (var key in g.MetadataKeys) p.Metadata.Add((key, g.MetadataTypes[key], g.Metadata[key]));
        foreach (var t in g.Tensors) p.Tensors.Add(new Tensor(t.Name, t.Dims, t.Type, g.TensorBytes(t).ToArray()));
        return p;
    }

    /// <summary>Replaces the value (and type) of <paramref name="key"/>, or adds it.</summary>
    public GgufPatch Set(string key, GgufValueType type, object value)
    {
        int i = Metadata.FindIndex(m => m.Key == key);
        if (i >= 0) Metadata[i] = (key, type, value);
        else Metadata.Add((key, type, value));
        return this;
    }

    public GgufPatch Remove(string key)
    {
        Metadata.RemoveAll(m => m.Key == key);
        return this;
    }

    public GgufPatch RenameTensor(string from, string to)
    {
        int i = Tensors.FindIndex(t => t.Name == from);
        if (i < 0) throw new ArgumentException($"no tensor {from}");
        Tensors[i] = Tensors[i] with { Name = to };
        return this;
    }

    /// <summary>Overwrites float <paramref name="index"/> of an F32 tensor.</summary>
    public GgufPatch SetFloat(string tensor, int index, float value)
    {
        var t = Tensors.Single(x => x.Name == tensor);
        if (t.Type != GgmlType.F32) throw new ArgumentException($"{tensor} is {t.Type}, not F32");
        BitConverter.TryWriteBytes(t.Data.AsSpan(index * 4, 4), value);
        return this;
    }

    /// <summary>Writes the patched file to <paramref name="path"/> (default: a new temporary path under the test cache)
    /// and returns the path.</summary>
    public string Write(string? path = null)
    {
        var w = new GgufWriter();
        foreach (var (k, type, v) in Metadata) w.AddRaw(k, type, v);
        foreach (var t in Tensors) w.AddTensor(t.Name, t.Dims, t.Type, t.Data);
        path ??= TestPaths.NewTempFile();
        w.Write(path);
        return path;
    }
}
