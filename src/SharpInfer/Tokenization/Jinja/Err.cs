namespace SharpInfer.Tokenization.Jinja;

/// <summary>Factory of <see cref="TemplateException"/>s.</summary>
internal static class Err
{
    public static TemplateException Runtime(string message) => new(TemplateErrorKind.Runtime, message);

    public static TemplateException Undefined(JinjaUndefined u) => new(TemplateErrorKind.Runtime, u.Message);

    public static TemplateException Limit(TemplateLimit limit, string message) =>
        new(TemplateErrorKind.LimitExceeded, message, limit: limit);

    public static TemplateException Syntax(string message, int line, int column) =>
        new(TemplateErrorKind.Syntax, message, line, column);

    public static TemplateException Type(string message) => new(TemplateErrorKind.Runtime, message);
}
