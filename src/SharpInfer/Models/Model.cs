using SharpInfer.Gguf;
using SharpInfer.Tokenization;

namespace SharpInfer.Models;

/// <summary>A loaded GGUF model: the mapped file, its configuration, weights and tokenizer. Disposing unmaps the file.</summary>
internal sealed class Model : IDisposable
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

    // Shares of the whole load each step reports, for a progress display: binding tensors and building the
    // tokenizer take a fraction of a second; packing copies every Q8_0 weight (and reads the file, when cold).
    private const double TensorsShare = 0.1, TokenizerShare = 0.1;

    /// <summary>Opens, validates and binds a model. Throws <see cref="GgufFormatException"/> or
    /// <see cref="UnsupportedModelException"/> with a clear message for anything it cannot run.
    /// <paramref name="progress"/> hears the steps up to <see cref="TensorsShare"/> + <see cref="TokenizerShare"/>;
    /// <see cref="PackWeights"/> reports the rest.</summary>
    public static Model Load(string path, IProgress<ModelLoadProgress>? progress = null)
    {
        var file = GgufFile.Open(path);
        try
        {
            var config = ModelConfig.FromGguf(file);
            var weights = ModelWeights.Load(file, config,
                progress == null ? null : (i, n) => progress.Report(new("tensors", TensorsShare * i / n)));
            progress?.Report(new("tokenizer", TensorsShare));
            var tokenizer = Tokenization.Tokenizer.FromGguf(file);
            if (tokenizer.Vocabulary.Count != config.VocabSize)
                throw new UnsupportedModelException($"{path}: the vocabulary has {tokenizer.Vocabulary.Count} tokens but the output layer has {config.VocabSize} rows");
            progress?.Report(new("packing weights", TensorsShare + TokenizerShare));
            return new Model(file, config, weights, tokenizer);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Copies the weights into the layouts the kernels of <paramref name="level"/> read (what the first
    /// engine built on this model would do; idempotent), reporting the last step of a load to
    /// <paramref name="progress"/> and 1.0 at the end. Exact-precision engines read the mapped rows and do not need it.</summary>
    public void PackWeights(Runtime.IsaLevel? level = null, IProgress<ModelLoadProgress>? progress = null)
    {
        const double start = TensorsShare + TokenizerShare;
        int best = 0;   // chunks finish out of order on the packing threads: report only what raises the fraction
        var gate = new object();
        Weights.PackForKernels(level ?? Runtime.Isa.Level, progress == null ? null : (done, total) =>
        {
            lock (gate)
            {
                if (done <= best) return;
                best = done;
                progress.Report(new("packing weights", start + (1 - start) * done / total));
            }
        });
        progress?.Report(new("loaded", 1.0));
    }

    public void Dispose()
    {
        Weights.Dispose();
        File.Dispose();
    }
}
