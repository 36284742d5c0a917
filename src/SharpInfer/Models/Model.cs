using SharpInfer.Gguf;
using SharpInfer.Tokenization;

namespace SharpInfer.Models;

/// <summary>A loaded GGUF model: the mapped file, its configuration, weights and tokenizer. Disposing unmaps the file.</summary>
public sealed class Model : IDisposable
{
    public GgufFile File { get; }
    public ModelConfig Config { get; }
    public ModelWeights Weights { get; }
    public Tokenizer Tokenizer { get; }
    public Vocabulary Vocabulary => Tokenizer.Vocabulary;
    public string Path => File.Path;
    /// <summary>The chat template stored in the file (tokenizer.chat_template), if any.</summary>
    public string? ChatTemplate => File.GetString("tokenizer.chat_template");

    private Model(GgufFile file, ModelConfig config, ModelWeights weights, Tokenizer tokenizer)
    {
        File = file;
        Config = config;
        Weights = weights;
        Tokenizer = tokenizer;
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
            var tokenizer = Tokenization.Tokenizer.FromGguf(file);
            if (tokenizer.Vocabulary.Count != config.VocabSize)
                throw new UnsupportedModelException($"{path}: the vocabulary has {tokenizer.Vocabulary.Count} tokens but the output layer has {config.VocabSize} rows");
            return new Model(file, config, weights, tokenizer);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Weights.Dispose();
        File.Dispose();
    }
}
