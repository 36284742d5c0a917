using System.CommandLine;
using SharpInfer.Gguf;
using SharpInfer.Tensors;

namespace SharpInfer.Cli.Commands;

/// <summary><c>sharpinfer inspect model.gguf</c>: prints the header, every metadata value (long arrays
/// abbreviated) and a table of tensors.</summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        // -m like every other command; the positional form stays for existing scripts.
        var file = new Argument<string?>("model") { Description = "Path of a GGUF file (or use -m)", Arity = ArgumentArity.ZeroOrOne };
        var model = new Option<string?>("--model", "-m") { Description = "Path of a GGUF file" };
        var full = new Option<bool>("--full") { Description = "Print long arrays and strings in full" };
        var cmd = new Command("inspect", "Print a GGUF file's metadata and tensor table") { file, model, full };
        cmd.SetAction(r =>
        {
            string? a = r.GetValue(file), m = r.GetValue(model);
            if (a != null && m != null && a != m) throw new CliException("give the model once: either -m or a path, not both");
            var path = m ?? a ?? throw new CliException("inspect needs a model: sharpinfer inspect -m model.gguf");
            return Run(ModelFileCheck.Ensure(path), r.GetValue(full), Console.Out);
        });
        return cmd;
    }

    public static int Run(string path, bool full, TextWriter o)
    {
        using var g = GgufFile.Open(path);
        o.WriteLine($"file:      {g.Path}");
        o.WriteLine($"version:   {g.Version}");
        o.WriteLine($"size:      {g.FileSize:N0} bytes");
        o.WriteLine($"alignment: {g.Alignment}");
        o.WriteLine($"metadata:  {g.MetadataKeys.Count} keys");
        foreach (var key in g.MetadataKeys)
            o.WriteLine($"  {key,-44} {g.MetadataTypes[key],-8} {Format(g.Metadata[key], full)}");
        o.WriteLine($"tensors:   {g.Tensors.Count}");
        o.WriteLine($"  {"name",-36} {"type",-8} {"shape",-24} {"bytes",14} {"offset",14}");
        long total = 0, elements = 0;
        foreach (var t in g.Tensors)
        {
            o.WriteLine($"  {t.Name,-36} {GgmlTypeInfo.Name(t.Type),-8} {t.ShapeString,-24} {t.ByteSize,14:N0} {t.Offset,14:N0}");
            total += t.ByteSize;
            elements += t.ElementCount;
        }
        o.WriteLine($"total:     {elements:N0} elements, {total:N0} bytes of tensor data");
        return 0;
    }

    private static string Format(object v, bool full)
    {
        switch (v)
        {
            case string s:
                var esc = s.Replace("\\", "\\\\").Replace("\n", "\\n").Replace("\r", "\\r").Replace("\t", "\\t");
                return full || esc.Length <= 80 ? $"\"{esc}\"" : $"\"{esc[..80]}…\" ({s.Length} chars)";
            case GgufArray a:
                int shown = full ? a.Count : Math.Min(a.Count, 8);
                var items = new List<string>(shown);
                for (int i = 0; i < shown; i++) items.Add(Format(a.Items.GetValue(i)!, full));
                return $"[{a.Count}] [{string.Join(", ", items)}{(shown < a.Count ? ", …" : "")}]";
            case float f: return f.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            case double d: return d.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            case bool b: return b ? "true" : "false";
            default: return Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? "";
        }
    }
}
