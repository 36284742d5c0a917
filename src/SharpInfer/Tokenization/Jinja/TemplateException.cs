namespace SharpInfer.Tokenization.Jinja;

/// <summary>What kind of failure a <see cref="TemplateException"/> reports.</summary>
public enum TemplateErrorKind
{
    /// <summary>The template text is not valid (or uses syntax this engine does not support).
    /// <see cref="TemplateException.Line"/> and <see cref="TemplateException.Column"/> are set.</summary>
    Syntax,
    /// <summary>Evaluation failed the way Jinja2 would fail at render time (undefined value used,
    /// type error, division by zero, ...).</summary>
    Runtime,
    /// <summary>The template called <c>raise_exception(msg)</c>; the message is exactly <c>msg</c>.</summary>
    Raised,
    /// <summary>A safety limit of <see cref="JinjaOptions"/> fired; see <see cref="TemplateException.Limit"/>.</summary>
    LimitExceeded,
}

/// <summary>Which safety limit of <see cref="JinjaOptions"/> stopped a render.</summary>
public enum TemplateLimit
{
    /// <summary>No limit involved.</summary>
    None,
    /// <summary><see cref="JinjaOptions.MaxSteps"/>: too many statements/expressions evaluated.</summary>
    Steps,
    /// <summary><see cref="JinjaOptions.MaxDepth"/> (macro calls, data nesting) or <see cref="JinjaOptions.MaxNesting"/>
    /// (source nesting) exceeded, or the stack guard fired.</summary>
    Depth,
    /// <summary><see cref="JinjaOptions.MaxOutputLength"/>: the output (or a string/list built) is too large.</summary>
    OutputSize,
    /// <summary><see cref="JinjaOptions.MaxRangeLength"/>: <c>range()</c> asked for too many items.</summary>
    RangeLength,
}

/// <summary>The single error type of the template engine: syntax errors (with line and column), render
/// errors, <c>raise_exception</c> calls from the template, and safety limits.</summary>
public sealed class TemplateException : SharpInferException
{
    /// <summary>What failed.</summary>
    public TemplateErrorKind Kind { get; }
    /// <summary>Which limit fired, for <see cref="TemplateErrorKind.LimitExceeded"/>; otherwise <see cref="TemplateLimit.None"/>.</summary>
    public TemplateLimit Limit { get; }
    /// <summary>1-based line in the template source, when known.</summary>
    public int? Line { get; }
    /// <summary>1-based column (in UTF-16 code units) in the template source, when known.</summary>
    public int? Column { get; }
    /// <summary>The problem without the position prefix (for <see cref="TemplateErrorKind.Raised"/>: the template's own message).</summary>
    public string Detail { get; }

    internal TemplateException(TemplateErrorKind kind, string detail, int? line = null, int? column = null,
        TemplateLimit limit = TemplateLimit.None, Exception? inner = null)
        : base(Format(kind, detail, line, column), inner)
    {
        Kind = kind;
        Detail = detail;
        Line = line;
        Column = column;
        Limit = limit;
    }

    private static string Format(TemplateErrorKind kind, string detail, int? line, int? column)
    {
        if (kind == TemplateErrorKind.Raised) return detail;
        string where = line is int l ? (column is int c ? $" at line {l}, column {c}" : $" at line {l}") : "";
        return kind switch
        {
            TemplateErrorKind.Syntax => $"template syntax error{where}: {detail}",
            TemplateErrorKind.LimitExceeded => $"template limit exceeded{where}: {detail}",
            _ => $"template error{where}: {detail}",
        };
    }

    internal TemplateException WithPosition(int line, int column) =>
        Line is not null ? this : new TemplateException(Kind, Detail, line, column, Limit, InnerException);
}
