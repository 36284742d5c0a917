namespace SharpInfer.Models;

/// <summary>Finds the model to use when none is given: <c>$SHARPINFER_MODEL</c>, else <c>stories260K.gguf</c> in
/// <c>../shared/models</c> beside the repository root (searched upwards from the working directory and from the
/// program's location).</summary>
internal static class ModelLocator
{
    public const string EnvironmentVariable = "SHARPINFER_MODEL";
    public const string DefaultFileName = "stories260K.gguf";

    public static string Resolve(string? explicitPath)
    {
        if (!string.IsNullOrWhiteSpace(explicitPath)) return explicitPath;
        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env)) return env;
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                if (!File.Exists(Path.Combine(dir.FullName, "SharpInfer.sln"))) continue;
                var candidate = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "models", DefaultFileName));
                if (File.Exists(candidate)) return candidate;
            }
        throw new SharpInferException(
            $"no model given. Pass -m path/to/model.gguf, set {EnvironmentVariable}, or place {DefaultFileName} in ../shared/models " +
            "beside the repository. Any GGUF file of a llama, qwen2 or qwen3 model works (e.g. from huggingface.co, files ending in .gguf).");
    }
}
