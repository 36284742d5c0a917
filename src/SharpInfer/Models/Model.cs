using SharpInfer.Gguf;

namespace SharpInfer.Models;

/// <summary>A loaded GGUF model: the mapped file, its configuration and its weights. Disposing unmaps the file.</summary>
public sealed class Model : IDisposable
{
    public GgufFile File { get; }
    public ModelConfig Config { get; }
    public ModelWeights Weights { get; }
    public string Path => File.Path;

    private Model(GgufFile file, ModelConfig config, ModelWeights weights)
    {
        File = file;
        Config = config;
        Weights = weights;
    }

    /// <summary>Opens, validates and binds a model. Throws <see cref="GgufFormatException"/> or
    /// <see cref="UnsupportedModelException"/> with a clear message for anything it cannot run.</summary>
    public static Model Load(string path)
    {
        var file = GgufFile.Open(path);
        try
        {
            var config = ModelConfig.FromGguf(file);
            var weights = ModelWeights.Load(file, config);
            return new Model(file, config, weights);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public void Dispose() => File.Dispose();
}
