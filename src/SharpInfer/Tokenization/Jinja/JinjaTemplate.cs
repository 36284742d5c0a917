using System.Text.Json.Nodes;

namespace SharpInfer.Tokenization.Jinja;

/// <summary>A parsed Jinja template. Parse once (<see cref="Parse"/>), render many times; a parsed template
/// is immutable and can be rendered from several threads at once.</summary>
/// <remarks>Semantics follow Python's Jinja2 in the configuration Hugging Face uses for chat templates
/// (sandboxed, <c>trim_blocks</c>, <c>lstrip_blocks</c>, loop controls, <c>tojson</c> =
/// <c>json.dumps(ensure_ascii=False)</c>). Every failure is a <see cref="TemplateException"/>.</remarks>
internal sealed class JinjaTemplate
{
    private readonly List<Stmt> _body;
    private readonly SourceMap _map;
    private readonly Dictionary<string, JinjaValue> _globals;

    /// <summary>The template source as given.</summary>
    public string Source { get; }
    /// <summary>Options the template was parsed with and renders with.</summary>
    public JinjaOptions Options { get; }

    private JinjaTemplate(string source, JinjaOptions options, List<Stmt> body, SourceMap map)
    {
        Source = source;
        Options = options;
        _body = body;
        _map = map;
        _globals = new Dictionary<string, JinjaValue>(Builtins.Globals, StringComparer.Ordinal);
        if (options.Globals is not null)
            foreach (var (k, v) in options.Globals) _globals[k] = v;
    }

    /// <summary>Parses a template. Throws <see cref="TemplateException"/> (kind
    /// <see cref="TemplateErrorKind.Syntax"/>, with line and column) for invalid or unsupported syntax.</summary>
    public static JinjaTemplate Parse(string source, JinjaOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        options ??= JinjaOptions.Default;
        string normalized = Lexer.Normalize(source, options);
        var map = new SourceMap(normalized);
        try
        {
            var tokens = Lexer.Tokenize(normalized, options, map);
            var body = Parser.Parse(tokens, map, options);
            return new JinjaTemplate(source, options, body, map);
        }
        catch (InsufficientExecutionStackException ex)
        {
            throw new TemplateException(TemplateErrorKind.LimitExceeded, "template nesting exceeded the available stack",
                limit: TemplateLimit.Depth, inner: ex);
        }
    }

    /// <summary>Renders with the given variables (missing names are undefined).</summary>
    public string Render(IReadOnlyDictionary<string, JinjaValue>? variables = null)
    {
        var st = new RenderState(Options, _map);
        var globals = new Scope(null, _globals);
        var vars = variables is null ? globals : new Scope(globals, variables);
        var root = new Scope(vars);
        var output = new Output(st, 1024);
        try
        {
            Stmt.ExecBody(_body, st, root, output);
        }
        catch (TemplateException)
        {
            throw;
        }
        catch (OverflowException ex)
        {
            throw new TemplateException(TemplateErrorKind.Runtime, "integer overflow", inner: ex);
        }
        catch (InsufficientExecutionStackException ex)
        {
            throw new TemplateException(TemplateErrorKind.LimitExceeded, "recursion exceeded the available stack",
                limit: TemplateLimit.Depth, inner: ex);
        }
        catch (Exception ex) when (ex is InvalidCastException or ArgumentException or IndexOutOfRangeException
                                       or InvalidOperationException or NullReferenceException or FormatException)
        {
            throw new TemplateException(TemplateErrorKind.Runtime, "internal error while rendering: " + ex.Message, inner: ex);
        }
        return output.ToString();
    }

    /// <summary>Renders with variables given as a JSON object (converted with <see cref="JinjaValue.FromJson(JsonNode?)"/>).</summary>
    public string Render(JsonObject variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var dict = new Dictionary<string, JinjaValue>(StringComparer.Ordinal);
        foreach (var (k, v) in variables) dict[k] = JinjaValue.FromJson(v);
        return Render(dict);
    }
}
