using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using SharpInfer.Engine;
using SharpInfer.Engine.Pooling;
using SharpInfer.Gguf;
using SharpInfer.Models;
using SharpInfer.Quantization;

namespace SharpInfer.Server.Api;

/// <summary>
/// Ollama's model endpoints for the one served model: <c>GET /api/tags</c> (the local models), <c>POST /api/show</c>
/// (details, GGUF metadata as <c>model_info</c>, template, parameters, capabilities), <c>GET /api/ps</c> (the loaded
/// models) and <c>GET /api/version</c>.
/// </summary>
internal static class OllamaModelInfo
{
    /// <summary>The Ollama release whose API this server follows (clients compare it to enable features).</summary>
    public const string ApiVersion = "0.12.0";

    /// <summary>Arrays longer than this (the vocabulary, merges, scores) show as null in <c>model_info</c> unless
    /// <c>verbose</c> is true, as Ollama does.</summary>
    private const int LongArray = 64;

    /// <summary>Ollama's default sampling options, as applied by <see cref="OllamaRequest"/>, in Modelfile syntax.</summary>
    private const string Parameters = "temperature 0.8\ntop_k 40\ntop_p 0.9\nmin_p 0\nrepeat_penalty 1.1\nrepeat_last_n 64";

    public static Task VersionAsync(HttpContext ctx) => JsonResponse.WriteAsync(ctx, w =>
    {
        w.WriteStartObject();
        w.WriteString("version", ApiVersion);
        w.WriteEndObject();
    });

    public static Task TagsAsync(HttpContext ctx, ModelHost host) =>
        WriteModelListAsync(ctx, host, (w, engine) => w.WriteString("modified_at", Modified(engine.Model)));

    public static Task PsAsync(HttpContext ctx, ModelHost host) =>
        WriteModelListAsync(ctx, host, (w, engine) =>
        {
            // the server keeps its model until it stops: keep_alive never unloads it
            w.WriteString("expires_at", DateTime.UtcNow.AddYears(100).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            w.WriteNumber("size_vram", 0);
            w.WriteNumber("context_length", engine.MaxModelLen);
        });

    /// <summary><c>{"models": [entry]}</c> of /api/tags and /api/ps: the served model's common fields, then the route's own.</summary>
    private static Task WriteModelListAsync(HttpContext ctx, ModelHost host, Action<Utf8JsonWriter, LlmEngine> writeOwnFields)
    {
        var engine = host.RequireEngine();
        return JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("models");
            w.WriteStartObject();
            WriteEntry(w, host, engine.Model);
            writeOwnFields(w, engine);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }

    public static async Task ShowAsync(HttpContext ctx, ModelHost host)
    {
        var engine = host.RequireEngine();
        var body = await JsonBody.ReadAsync(ctx.Request, host.Options.MaxRequestBodyBytes, ctx.RequestAborted).ConfigureAwait(false);
        OllamaEndpoints.CheckModel(body, host);
        bool verbose = body.Bool("verbose") ?? false;
        var model = engine.Model;
        string template = host.Prompts!.Formatter.Template.Source;
        await JsonResponse.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            if (model.File.GetString("general.license") is { } license) w.WriteString("license", license);
            w.WriteString("modelfile", $"# Modelfile of the model SharpInfer serves\nFROM {model.Path}\n"
                                       + string.Concat(Parameters.Split('\n').Select(p => "PARAMETER " + p + "\n")));
            w.WriteString("parameters", Parameters);
            w.WriteString("template", template);
            WriteDetails(w, model);
            w.WriteStartObject("model_info");
            WriteMetadata(w, model, verbose);
            w.WriteEndObject();
            w.WriteStartArray("capabilities");
            foreach (var c in Capabilities(model, template)) w.WriteStringValue(c);
            w.WriteEndArray();
            w.WriteString("modified_at", Modified(model));
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    /// <summary>What the model can do, in Ollama's words: completion always; tools when its template renders tools;
    /// thinking when the template has a reasoning section; embedding when the GGUF declares a pooling (an embedding model).</summary>
    public static IEnumerable<string> Capabilities(Model model, string template)
    {
        yield return "completion";
        if (template.Contains("tools", StringComparison.Ordinal)) yield return "tools";
        if (template.Contains("<think>", StringComparison.Ordinal) || template.Contains("<|channel|>", StringComparison.Ordinal)) yield return "thinking";
        if (PoolingTypes.FromGguf(model.File, model.Config.Architecture) is not null) yield return "embedding";
    }

    private static void WriteEntry(Utf8JsonWriter w, ModelHost host, Model model)
    {
        string name = host.ModelId.Contains(':') ? host.ModelId : host.ModelId + ":latest";
        w.WriteString("name", name);
        w.WriteString("model", name);
        w.WriteNumber("size", model.File.FileSize);
        w.WriteString("digest", Digest(model));
        WriteDetails(w, model);
    }

    private static void WriteDetails(Utf8JsonWriter w, Model model)
    {
        string arch = model.Config.Architecture;
        w.WriteStartObject("details");
        w.WriteString("parent_model", "");
        w.WriteString("format", "gguf");
        w.WriteString("family", arch);
        w.WriteStartArray("families");
        w.WriteStringValue(arch);
        w.WriteEndArray();
        w.WriteString("parameter_size", HumanNumber(ParameterCount(model)));
        w.WriteString("quantization_level", QuantizationLevel(model.File));
        w.WriteEndObject();
    }

    /// <summary>Every GGUF metadata key with its value, plus <c>general.parameter_count</c> as Ollama adds it; long
    /// arrays are null unless <paramref name="verbose"/>.</summary>
    private static void WriteMetadata(Utf8JsonWriter w, Model model, bool verbose)
    {
        var file = model.File;
        foreach (var key in file.MetadataKeys)
        {
            w.WritePropertyName(key);
            WriteValue(w, file.Metadata[key], verbose);
        }
        if (!file.Has("general.parameter_count")) w.WriteNumber("general.parameter_count", ParameterCount(model));
    }

    private static void WriteValue(Utf8JsonWriter w, object v, bool verbose)
    {
        switch (v)
        {
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case float f: w.WriteNumberValue(float.IsFinite(f) ? f : 0); break;
            case double d: w.WriteNumberValue(double.IsFinite(d) ? d : 0); break;
            case ulong u: w.WriteNumberValue(u); break;
            case GgufArray a when a.Count > LongArray && !verbose: w.WriteNullValue(); break;
            case GgufArray a:
                w.WriteStartArray();
                foreach (var item in a.Items) WriteValue(w, item!, verbose);
                w.WriteEndArray();
                break;
            case IConvertible c: w.WriteNumberValue(c.ToInt64(CultureInfo.InvariantCulture)); break;
            default: w.WriteStringValue(v.ToString()); break;
        }
    }

    public static long ParameterCount(Model model) => model.File.Tensors.Sum(t => t.ElementCount);

    /// <summary>Ollama's human-readable parameter count: 8B, 7.6B, 494.03M, 260K.</summary>
    public static string HumanNumber(long n)
    {
        static string Fmt(double x, string whole, string frac, string unit) =>
            (x == Math.Floor(x) ? x.ToString(whole, CultureInfo.InvariantCulture) : x.ToString(frac, CultureInfo.InvariantCulture)) + unit;
        return n switch
        {
            >= 1_000_000_000 => Fmt(n / 1e9, "F0", "F1", "B"),
            >= 1_000_000 => Fmt(n / 1e6, "F0", "F2", "M"),
            >= 1_000 => Fmt(Math.Round(n / 1e3), "F0", "F0", "K"),
            _ => n.ToString(CultureInfo.InvariantCulture),
        };
    }

    /// <summary>The file type llama.cpp names (general.file_type, else guessed from the tensors), e.g. Q4_K_M or F16.</summary>
    public static string QuantizationLevel(GgufFile file)
    {
        var ftype = file.GetInteger("general.file_type") is { } v
            ? (LlamaFileType)v
            : QuantFileType.Guess(file.Tensors.Select(t => t.Type)) & ~LlamaFileType.Guessed;
        return Enum.IsDefined(ftype) ? ftype.ToString() : "unknown";
    }

    /// <summary>An identifier of the model file (its path, size and modification time hashed), not a hash of its
    /// contents: hashing a multi-gigabyte file for a listing would take minutes.</summary>
    private static string Digest(Model model)
    {
        var info = new FileInfo(model.Path);
        string id = $"{Path.GetFullPath(model.Path)}|{model.File.FileSize}|{(info.Exists ? info.LastWriteTimeUtc.Ticks : 0)}";
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id)));
    }

    private static string Modified(Model model)
    {
        var info = new FileInfo(model.Path);
        var t = info.Exists ? info.LastWriteTimeUtc : DateTime.UtcNow;
        return t.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);
    }
}
