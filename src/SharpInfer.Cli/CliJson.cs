using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace SharpInfer.Cli;

/// <summary>How every CLI command writes JSON. Non-finite numbers (NaN/Inf log-probs or timings from a model with
/// broken weights) become <c>null</c>, as llama.cpp's nlohmann::json writes them, instead of making the writer throw;
/// strings keep a plain <c>+</c> (the default encoder writes <c>\u002B</c>, which llama-bench's readers do not expect).</summary>
internal static class CliJson
{
    public static readonly JsonSerializerOptions Indented = Create(indented: true);
    public static readonly JsonSerializerOptions Compact = Create(indented: false);

    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Serializes with the source-generated metadata of <see cref="CliJsonContext"/> (no reflection: the CLI
    /// publishes as native AOT); a value type missing there throws <see cref="NotSupportedException"/>.</summary>
    public static string Serialize<T>(T value, JsonSerializerOptions options) =>
        JsonSerializer.Serialize(value, (JsonTypeInfo<T>)options.GetTypeInfo(typeof(T)));

    private static JsonSerializerOptions Create(bool indented)
    {
        var o = new JsonSerializerOptions
        {
            WriteIndented = indented,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            TypeInfoResolver = CliJsonContext.Default,
        };
        o.Converters.Add(new FiniteDouble());
        o.Converters.Add(new FiniteFloat());
        return o;
    }

    /// <summary>Writes <paramref name="v"/>, or <c>null</c> when it is NaN or infinite.</summary>
    public static void WriteNumberOrNull(Utf8JsonWriter w, double v)
    {
        if (double.IsFinite(v)) w.WriteNumberValue(v);
        else w.WriteNullValue();
    }

    public static void WriteNumberOrNull(Utf8JsonWriter w, string name, double v)
    {
        w.WritePropertyName(name);
        WriteNumberOrNull(w, v);
    }

    private sealed class FiniteDouble : JsonConverter<double>
    {
        public override bool HandleNull => false;
        public override double Read(ref Utf8JsonReader r, Type t, JsonSerializerOptions o) => r.GetDouble();
        public override void Write(Utf8JsonWriter w, double v, JsonSerializerOptions o) => WriteNumberOrNull(w, v);
    }

    private sealed class FiniteFloat : JsonConverter<float>
    {
        public override float Read(ref Utf8JsonReader r, Type t, JsonSerializerOptions o) => r.GetSingle();
        public override void Write(Utf8JsonWriter w, float v, JsonSerializerOptions o)
        {
            if (float.IsFinite(v)) w.WriteNumberValue(v);
            else w.WriteNullValue();
        }
    }
}

/// <summary>The shapes the CLI serializes: llama-bench-style records (a dictionary of numbers, strings and number
/// arrays: each value type a record may hold is listed, since values are typed <c>object</c>).</summary>
[JsonSerializable(typeof(Dictionary<string, object>))]
[JsonSerializable(typeof(Dictionary<string, object?>))]
[JsonSerializable(typeof(List<Dictionary<string, object?>>))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(double))]
[JsonSerializable(typeof(float))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(long[]))]
[JsonSerializable(typeof(double[]))]
[JsonSerializable(typeof(int[]))]
internal sealed partial class CliJsonContext : JsonSerializerContext;
