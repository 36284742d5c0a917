namespace SharpInfer.Quantization;

/// <summary>A model cannot be quantized as asked (unsupported type, already quantized input, bad tensor data...);
/// the message says which tensor and why.</summary>
internal sealed class QuantizationException(string message, Exception? inner = null) : Exception(message, inner);
