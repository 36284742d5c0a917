namespace SharpInfer.Cli;

/// <summary>The streams a command reads and writes. <see cref="System"/> is the process's console; tests pass their
/// own writers (console redirection is process-wide, so it does not mix with parallel tests).</summary>
internal sealed class CliIo
{
    public required TextReader In { get; init; }
    public required TextWriter Out { get; init; }
    public required TextWriter Error { get; init; }
    /// <summary>Whether a person is typing at a terminal (stdin not redirected): interactive commands show prompts.</summary>
    public bool Interactive { get; init; }
    /// <summary>Whether Ctrl+C should interrupt a running generation instead of ending the process (console only).</summary>
    public bool HandlesCancelKey { get; init; }

    public static CliIo System => new()
    {
        In = Console.In,
        Out = Console.Out,
        Error = Console.Error,
        Interactive = !Console.IsInputRedirected,
        HandlesCancelKey = true,
    };
}
