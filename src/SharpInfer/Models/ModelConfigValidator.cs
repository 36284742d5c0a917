using System.Globalization;
using SharpInfer.Gguf;

namespace SharpInfer.Models;

/// <summary>
/// Typed, range-checked reads of a model's hyper-parameters and the checks that tie them to the tensors present.
/// A file with NaN, infinite, negative, zero or wrongly typed values (a <c>block_count</c> stored as a bool) or with
/// more layers than it declares would otherwise load and compute garbage, or be silently cut short; here it fails
/// at load with one line naming the key and its value.
/// </summary>
internal static class ModelConfigValidator
{
    /// <summary>Largest accepted value of any integer hyper-parameter (2^24: far above any real model).</summary>
    public const long MaxInteger = 1 << 24;

    private static UnsupportedModelException Bad(GgufFile g, string key, string value, string problem) =>
        new($"{g.Path}: metadata '{key}' = {value} {problem}");

    /// <summary>A positive integer hyper-parameter; bools and floats are refused (they convert silently elsewhere).</summary>
    public static int? PositiveInteger(GgufFile g, string key)
    {
        if (!g.Metadata.TryGetValue(key, out var raw)) return null;
        if (raw is GgufArray) throw new UnsupportedModelException($"{g.Path}: per-layer '{key}' arrays are not supported");
        if (raw is bool or float or double or string)
            throw Bad(g, key, GgufFile.DescribeValue(raw), $"has type {g.MetadataTypes[key]}; it must be an integer");
        long v = g.GetInteger(key)!.Value;
        if (v <= 0 || v > MaxInteger) throw Bad(g, key, v.ToString(CultureInfo.InvariantCulture), $"is out of range (1..{MaxInteger})");
        return (int)v;
    }

    /// <summary>A finite, positive number (integers are accepted: some converters write them so).</summary>
    public static double? PositiveNumber(GgufFile g, string key)
    {
        if (!g.Metadata.TryGetValue(key, out var raw)) return null;
        if (raw is bool or string or GgufArray)
            throw Bad(g, key, GgufFile.DescribeValue(raw), $"has type {g.MetadataTypes[key]}; it must be a number");
        double v = g.GetFloat(key)!.Value;
        if (!double.IsFinite(v)) throw Bad(g, key, Format(v), "is not a finite number");
        if (!(v > 0)) throw Bad(g, key, Format(v), "must be positive");
        return v;
    }

    /// <summary>Every floating-point hyper-parameter of the architecture (<c>{arch}.*</c>) must be finite, used or not:
    /// a NaN anywhere says the file is corrupt.</summary>
    public static void RequireFiniteFloats(GgufFile g, string arch)
    {
        string prefix = arch + ".";
        foreach (var key in g.MetadataKeys)
        {
            if (!key.StartsWith(prefix, StringComparison.Ordinal)) continue;
            double? v = g.Metadata[key] switch { float f => f, double d => d, _ => null };
            if (v is { } x && !double.IsFinite(x)) throw Bad(g, key, Format(x), "is not a finite number");
        }
    }

    /// <summary>The tensors must describe exactly <paramref name="layerCount"/> blocks: blocks beyond the declared count
    /// would be ignored silently (the missing ones fail later, naming the tensor).</summary>
    public static void RequireLayersMatchTensors(GgufFile g, string arch, int layerCount)
    {
        int highest = -1;
        string? example = null;
        foreach (var t in g.Tensors)
        {
            if (!t.Name.StartsWith("blk.", StringComparison.Ordinal)) continue;
            int dot = t.Name.IndexOf('.', 4);
            if (dot < 0 || !int.TryParse(t.Name.AsSpan(4, dot - 4), NumberStyles.None, CultureInfo.InvariantCulture, out int layer)) continue;
            if (layer > highest) (highest, example) = (layer, t.Name);
        }
        if (highest >= layerCount)
            throw new UnsupportedModelException(
                $"{g.Path}: metadata '{arch}.block_count' = {layerCount} but the file has tensors of layer {highest} ({FileText.Quote(example)}): " +
                "the layer count and the tensors disagree");
    }

    public static string Format(double v) =>
        double.IsNaN(v) ? "NaN" : double.IsPositiveInfinity(v) ? "+Inf" : double.IsNegativeInfinity(v) ? "-Inf" : v.ToString("R", CultureInfo.InvariantCulture);
}
