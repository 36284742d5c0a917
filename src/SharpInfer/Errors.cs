namespace SharpInfer;

/// <summary>Base of every error SharpInfer raises on purpose. Callers (CLI, server) catch this one type,
/// print or map its message, and never see a raw runtime exception for bad input.</summary>
public class SharpInferException : Exception
{
    public SharpInferException(string message) : base(message) { }
    public SharpInferException(string message, Exception? inner) : base(message, inner) { }
}

/// <summary>A GGUF file is malformed, truncated or uses something this reader does not support.
/// The message always names the file and the problem.</summary>
public sealed class GgufFormatException : SharpInferException
{
    public string FilePath { get; }
    public GgufFormatException(string filePath, string problem, Exception? inner = null)
        : base($"{filePath}: {problem}", inner) => FilePath = filePath;
}

/// <summary>The model file is a valid GGUF but describes an architecture, tensor layout or tokenizer
/// this engine does not run.</summary>
public sealed class UnsupportedModelException : SharpInferException
{
    public UnsupportedModelException(string message) : base(message) { }
}

/// <summary>A request or option is invalid (sampling parameters, empty prompt, ...). The message names
/// the offending field.</summary>
public class InvalidRequestException : SharpInferException
{
    public string? Field { get; }
    public InvalidRequestException(string message, string? field = null) : base(message) => Field = field;
}

/// <summary>The prompt (plus requested output) does not fit the context window.</summary>
public sealed class ContextLengthExceededException : InvalidRequestException
{
    public int PromptTokens { get; }
    public int ContextLength { get; }
    public ContextLengthExceededException(int promptTokens, int contextLength)
        : base($"the prompt has {promptTokens} tokens but the context window is {contextLength} tokens", "prompt")
    {
        PromptTokens = promptTokens;
        ContextLength = contextLength;
    }
}
