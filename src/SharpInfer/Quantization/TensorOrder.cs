using System.Text;

namespace SharpInfer.Quantization;

/// <summary>The order llama-quantize writes tensors in (its loader's weights map): tensors outside the layers
/// first, then layer by layer ("blk.N."), by name within each group (byte order of the UTF-8 names).</summary>
internal sealed class TensorOrder : IComparer<string>
{
    public static TensorOrder Instance { get; } = new();

    /// <summary>N for a name starting with "blk.N" (what C's sscanf("blk.%d.") reads), else null.</summary>
    public static int? LayerOf(string name)
    {
        const string prefix = "blk.";
        if (!name.StartsWith(prefix, StringComparison.Ordinal)) return null;
        int i = prefix.Length;
        bool negative = false;
        if (i < name.Length && (name[i] == '-' || name[i] == '+')) negative = name[i++] == '-';
        int start = i;
        long value = 0;
        while (i < name.Length && name[i] is >= '0' and <= '9' && value <= int.MaxValue) value = value * 10 + (name[i++] - '0');
        if (i == start) return null;
        value = Math.Min(value, int.MaxValue);
        return (int)(negative ? -value : value);
    }

    public int Compare(string? a, string? b)
    {
        int la = LayerOf(a!) ?? -1, lb = LayerOf(b!) ?? -1;
        if (la != lb) return la.CompareTo(lb);
        return Encoding.UTF8.GetBytes(a!).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(b!));
    }
}
