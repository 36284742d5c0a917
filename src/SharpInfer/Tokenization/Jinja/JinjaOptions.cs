namespace SharpInfer.Tokenization.Jinja;

/// <summary>Settings and safety limits of the template engine. The defaults are the ones Hugging Face
/// transformers uses for chat templates (<c>trim_blocks</c> and <c>lstrip_blocks</c> on) plus limits
/// that stop hostile templates with a <see cref="TemplateException"/> of kind
/// <see cref="TemplateErrorKind.LimitExceeded"/>.</summary>
internal sealed record JinjaOptions
{
    /// <summary>Shared default instance.</summary>
    public static JinjaOptions Default { get; } = new();

    /// <summary>Jinja2 <c>trim_blocks</c>: the first newline after a block or comment tag is removed.</summary>
    public bool TrimBlocks { get; init; } = true;
    /// <summary>Jinja2 <c>lstrip_blocks</c>: spaces and tabs from the start of a line up to a block or comment tag are removed.</summary>
    public bool LstripBlocks { get; init; } = true;
    /// <summary>Jinja2 <c>keep_trailing_newline</c> (default false: one trailing newline of the source is dropped).</summary>
    public bool KeepTrailingNewline { get; init; }

    /// <summary>Maximum number of evaluation steps (statements, expressions, loop iterations, items
    /// processed by filters) of one render.</summary>
    public long MaxSteps { get; init; } = 10_000_000;
    /// <summary>Maximum macro call (and recursive loop) depth, and nesting of data printed or serialized.</summary>
    public int MaxDepth { get; init; } = 256;
    /// <summary>Maximum nesting of blocks and expressions in the template source (checked when parsing;
    /// reported as <see cref="TemplateLimit.Depth"/>).</summary>
    public int MaxNesting { get; init; } = 256;
    /// <summary>Maximum length (UTF-16 code units) of the output and of any string or list built while rendering.</summary>
    public long MaxOutputLength { get; init; } = 16 * 1024 * 1024;
    /// <summary>Maximum number of items one <c>range()</c> call may produce (Jinja2's sandbox uses 100000).</summary>
    public long MaxRangeLength { get; init; } = 100_000;

    /// <summary>llama.cpp's workaround: <c>+</c> between a string and <c>None</c> or an undefined value gives the string
    /// (Jinja2 raises). llama-server renders templates this way, so one that concatenates a variable it was never given
    /// (firefunction-v2's <c>functions</c>) still renders there; the server turns it on to match.</summary>
    public bool ConcatNoneAsEmpty { get; init; }

    /// <summary>Clock used by <c>strftime_now</c> (local time, like Python's <c>datetime.now()</c>).
    /// Null means <see cref="DateTimeOffset.Now"/>. Tests set it to a fixed instant.</summary>
    public Func<DateTimeOffset>? Clock { get; init; }

    /// <summary>Extra global names (functions or values) visible to every render, in addition to the
    /// built-in <c>range</c>, <c>dict</c>, <c>namespace</c>, <c>raise_exception</c>, <c>strftime_now</c>,
    /// <c>joiner</c>, <c>cycler</c>. They override built-ins of the same name; render variables override them.</summary>
    public IReadOnlyDictionary<string, JinjaValue>? Globals { get; init; }
}
