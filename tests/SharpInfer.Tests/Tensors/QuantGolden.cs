using System.Globalization;
using System.Text.Json;
using SharpInfer.Tensors;

namespace SharpInfer.Tests.Tensors;

/// <summary>One line of ../shared/golden/quant/ggml-reference.jsonl: ggml's quantization of `Input`.</summary>
internal sealed record QuantGoldenCase(string Name, GgmlType Type, float[] Input, byte[] Quantized, float[] Dequantized)
{
    public const string File = "quant/ggml-reference.jsonl";

    private static readonly Lazy<Dictionary<string, QuantGoldenCase>> All = new(Load);

    public static QuantGoldenCase Get(string name) => All.Value[name];

    public static IEnumerable<string> Names => All.Value.Keys;

    /// <summary>The type names, for [MemberData].</summary>
    public static TheoryData<string> TypeNames()
    {
        var data = new TheoryData<string>();
        foreach (var n in Names) data.Add(n);
        return data;
    }

    private static Dictionary<string, QuantGoldenCase> Load()
    {
        var cases = new Dictionary<string, QuantGoldenCase>();
        foreach (var line in Golden.Lines(File))
        {
            string name = line.GetProperty("type").GetString()!;
            var type = (GgmlType)line.GetProperty("ggml_type").GetUInt32();
            int n = line.GetProperty("n").GetInt32();
            var input = Floats(line.GetProperty("input"));
            var deq = Floats(line.GetProperty("dequantized"));
            var bytes = Convert.FromHexString(line.GetProperty("quantized_hex").GetString()!);
            Assert.Equal(n, input.Length);
            Assert.Equal(n, deq.Length);
            Assert.True(GgmlTypeInfo.TryParse(name, out var parsed) && parsed == type, $"golden type {name} vs enum {type}");
            cases.Add(name, new QuantGoldenCase(name, type, input, bytes, deq));
        }
        return cases;
    }

    /// <summary>The README says floats are printed with 9 significant digits: parse straight to float32
    /// (not via double, which could double-round).</summary>
    private static float[] Floats(JsonElement array) =>
        array.EnumerateArray().Select(e => float.Parse(e.GetRawText(), NumberStyles.Float, CultureInfo.InvariantCulture)).ToArray();
}
