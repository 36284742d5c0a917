namespace SharpInfer.Models;

/// <summary>Where loading a model stands, for a progress display: <paramref name="Stage"/> names the step
/// ("tensors", "tokenizer", "packing weights"), <paramref name="Fraction"/> is the whole load done so far, in [0, 1],
/// never decreasing. Reported from worker threads during packing: a receiver must be thread-safe.</summary>
internal readonly record struct ModelLoadProgress(string Stage, double Fraction);
