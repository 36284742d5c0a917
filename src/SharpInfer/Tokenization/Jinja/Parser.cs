using System.Runtime.CompilerServices;

namespace SharpInfer.Tokenization.Jinja;

/// <summary>Recursive-descent parser producing the AST; follows Jinja2's grammar and operator precedence.</summary>
internal sealed class Parser
{
    private static readonly HashSet<string> UnsupportedTags = new(StringComparer.Ordinal)
        { "include", "import", "from", "extends", "block", "endblock", "do", "autoescape", "trans", "pluralize", "debug" };

    private readonly List<Token> _tokens;
    private readonly SourceMap _map;
    private readonly JinjaOptions _options;
    private int _i;
    private int _depth;
    private int _loopDepth;
    private readonly List<string> _endStack = new();
    private readonly List<string[]> _endTokenStack = new();
    private readonly List<HashSet<string>> _macroNames = new();

    private Parser(List<Token> tokens, SourceMap map, JinjaOptions options)
    {
        _tokens = tokens;
        _map = map;
        _options = options;
    }

    public static List<Stmt> Parse(List<Token> tokens, SourceMap map, JinjaOptions options)
    {
        var p = new Parser(tokens, map, options);
        var body = p.Subparse(null);
        if (p.Cur.Type != TokenType.Eof) throw p.Fail($"unexpected {p.Cur}", p.Cur.Pos);
        return body;
    }

    // ------------------------------------------------------------------ token helpers

    private Token Cur => _tokens[_i];
    private Token Peek(int k = 1) => _tokens[Math.Min(_i + k, _tokens.Count - 1)];
    private Token Next() => _tokens[_i++ < _tokens.Count - 1 ? _i - 1 : _tokens.Count - 1];

    private TemplateException Fail(string message, int pos)
    {
        var (l, c) = _map.Locate(pos);
        return Err.Syntax(message, l, c);
    }

    private Token Expect(TokenType type, string? text = null)
    {
        var t = Cur;
        if (t.Type != type || (text is not null && t.Text != text))
        {
            string want = text is not null ? $"'{text}'" : type switch
            {
                TokenType.Name => "a name",
                TokenType.BlockEnd => "end of statement block",
                TokenType.VarEnd => "end of print statement",
                _ => type.ToString(),
            };
            if (t.Type == TokenType.Eof) throw Fail($"unexpected end of template, expected {want}", t.Pos);
            throw Fail($"expected {want}, got {t}", t.Pos);
        }
        return Next();
    }

    private bool SkipOp(string op)
    {
        if (Cur.IsOp(op)) { _i++; return true; }
        return false;
    }

    private bool SkipName(string name)
    {
        if (Cur.IsName(name)) { _i++; return true; }
        return false;
    }

    private void Enter(int pos)
    {
        if (++_depth > _options.MaxNesting || !RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            var (l, c) = _map.Locate(pos);
            throw new TemplateException(TemplateErrorKind.LimitExceeded,
                $"template nesting exceeded MaxNesting ({_options.MaxNesting})", l, c, TemplateLimit.Depth);
        }
    }

    private void Leave() => _depth--;

    private void NoteName(string name)
    {
        if (_macroNames.Count > 0 && name is "varargs" or "kwargs" or "caller") _macroNames[^1].Add(name);
    }

    // ------------------------------------------------------------------ statements

    private List<Stmt> Subparse(string[]? endNames)
    {
        if (endNames is null) return SubparseInner(null);
        _endTokenStack.Add(endNames);
        try
        {
            return SubparseInner(endNames);
        }
        finally
        {
            _endTokenStack.RemoveAt(_endTokenStack.Count - 1);
        }
    }

    /// <summary>Jinja2's message for an unknown tag (name) or a premature end of template (null).</summary>
    private string UnknownTagMessage(string? name)
    {
        var sb = new System.Text.StringBuilder(name is null ? "Unexpected end of template." : $"Encountered unknown tag '{name}'.");
        if (_endTokenStack.Count > 0)
        {
            string looking = string.Join(" or ", _endTokenStack[^1].Select(n => $"'{n}'"));
            bool expected = name is not null && _endTokenStack.Any(e => e.Contains(name));
            sb.Append(expected
                ? $" You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for {looking}."
                : $" Jinja was looking for the following tags: {looking}.");
        }
        if (_endStack.Count > 0) sb.Append($" The innermost block that needs to be closed is '{_endStack[^1]}'.");
        return sb.ToString();
    }

    private List<Stmt> SubparseInner(string[]? endNames)
    {
        var body = new List<Stmt>();
        while (true)
        {
            var t = Cur;
            switch (t.Type)
            {
                case TokenType.Data:
                    _i++;
                    body.Add(new TextStmt(t.Text).At(t.Pos));
                    break;
                case TokenType.VarBegin:
                {
                    _i++;
                    var e = ParseTuple(withCondExpr: true, explicitParens: false, extraEnd: null);
                    Expect(TokenType.VarEnd);
                    body.Add(new PrintStmt(e).At(t.Pos));
                    break;
                }
                case TokenType.BlockBegin:
                {
                    var name = Peek();
                    if (name.Type != TokenType.Name) throw Fail("tag name expected", name.Pos);
                    if (endNames is not null && Array.IndexOf(endNames, name.Text) >= 0)
                    {
                        _i++; // leave the name for the caller
                        return body;
                    }
                    _i++;
                    var s = ParseStatement();
                    Expect(TokenType.BlockEnd);
                    if (s is not null) body.Add(s);
                    break;
                }
                case TokenType.Eof:
                    if (endNames is not null) throw Fail(UnknownTagMessage(null), t.Pos);
                    return body;
                default:
                    throw Fail($"unexpected {t}", t.Pos);
            }
        }
    }

    /// <summary>After the statement's header: expects '%}' and parses the body up to one of the end tags
    /// (the end tag's name is left current unless dropNeedle).</summary>
    private List<Stmt> ParseStatements(string[] endNames, bool dropNeedle = false)
    {
        SkipOp(":");
        Expect(TokenType.BlockEnd);
        var body = Subparse(endNames);
        if (dropNeedle) _i++;
        return body;
    }

    private Stmt? ParseStatement()
    {
        var t = Cur;
        if (t.Type != TokenType.Name) throw Fail("tag name expected", t.Pos);
        Enter(t.Pos);
        try
        {
            _endStack.Add(t.Text);
            try
            {
                switch (t.Text)
                {
                    case "if": return ParseIf();
                    case "for": return ParseFor();
                    case "set": return ParseSet();
                    case "macro": return ParseMacro();
                    case "call": return ParseCallBlock();
                    case "filter": return ParseFilterBlock();
                    case "with": return ParseWith();
                    case "generation":
                    {
                        _i++;
                        var body = ParseStatements(["endgeneration"], dropNeedle: true);
                        return new BodyStmt(body).At(t.Pos);
                    }
                    case "break":
                    case "continue":
                        if (_loopDepth == 0) throw Fail($"'{t.Text}' outside of a loop", t.Pos);
                        _i++;
                        return new LoopControlStmt(t.Text == "break" ? Flow.Break : Flow.Continue).At(t.Pos);
                }
            }
            finally
            {
                _endStack.RemoveAt(_endStack.Count - 1);
            }
            if (UnsupportedTags.Contains(t.Text))
                throw Fail($"tag '{t.Text}' is not supported by this engine", t.Pos);
            throw Fail(UnknownTagMessage(t.Text), t.Pos);
        }
        finally
        {
            Leave();
        }
    }

    private Stmt ParseIf()
    {
        var start = Next();
        var branches = new List<(Expr, List<Stmt>)>();
        List<Stmt>? otherwise = null;
        var test = ParseTuple(withCondExpr: false, explicitParens: false, extraEnd: null);
        while (true)
        {
            var body = ParseStatements(["elif", "else", "endif"]);
            branches.Add((test, body));
            var tag = Next();
            if (tag.Text == "elif")
            {
                test = ParseTuple(withCondExpr: false, explicitParens: false, extraEnd: null);
                continue;
            }
            if (tag.Text == "else") otherwise = ParseStatements(["endif"], dropNeedle: true);
            break;
        }
        return new IfStmt(branches, otherwise).At(start.Pos);
    }

    private Stmt ParseFor()
    {
        var start = Next();
        var target = ParseAssignTarget(extraEnd: ["in"], withNamespace: false);
        Expect(TokenType.Name, "in");
        var iter = ParseTuple(withCondExpr: false, explicitParens: false, extraEnd: ["recursive"]);
        Expr? filter = null;
        if (SkipName("if")) filter = ParseExpression(true);
        bool recursive = SkipName("recursive");
        _loopDepth++;
        var body = ParseStatements(["endfor", "else"]);
        _loopDepth--;
        List<Stmt>? otherwise = null;
        if (Next().Text == "else") otherwise = ParseStatements(["endfor"], dropNeedle: true);
        return new ForStmt(target, iter, filter, body, otherwise, recursive).At(start.Pos);
    }

    private Stmt ParseSet()
    {
        var start = Next();
        var target = ParseAssignTarget(extraEnd: null, withNamespace: true);
        if (SkipOp("="))
        {
            var value = ParseTuple(withCondExpr: true, explicitParens: false, extraEnd: null);
            return new SetStmt(target, value).At(start.Pos);
        }
        if (target is TupleTarget) throw Fail("block set statements can only assign a single name", start.Pos);
        FilterExpr? filter = null;
        if (Cur.IsOp("|")) filter = (FilterExpr)ParseFilter(null, startInline: false)!;
        var body = ParseStatements(["endset"], dropNeedle: true);
        return new SetBlockStmt(target, filter, body).At(start.Pos);
    }

    private Stmt ParseMacro()
    {
        var start = Next();
        var name = Expect(TokenType.Name).Text;
        var def = ParseSignatureAndBody(name, "endmacro");
        return new MacroStmt(def).At(start.Pos);
    }

    private MacroDef ParseSignatureAndBody(string name, string endTag, bool hasSignature = true)
    {
        var ps = new List<(string, Expr?)>();
        if (hasSignature)
        {
            Expect(TokenType.Op, "(");
            while (!Cur.IsOp(")"))
            {
                if (ps.Count > 0) Expect(TokenType.Op, ",");
                if (Cur.IsOp(")")) break;
                var pn = Expect(TokenType.Name);
                Expr? def = null;
                if (SkipOp("=")) def = ParseExpression(true);
                else if (ps.Count > 0 && ps[^1].Item2 is not null)
                    throw Fail("non-default argument follows default argument", pn.Pos);
                else if (pn.Text == "caller")
                    throw Fail("When defining macros or call blocks the special \"caller\" argument must be omitted or be given a default.", pn.Pos);
                ps.Add((pn.Text, def));
            }
            Expect(TokenType.Op, ")");
        }
        _macroNames.Add(new HashSet<string>(StringComparer.Ordinal));
        int savedLoop = _loopDepth;
        _loopDepth = 0;
        List<Stmt> body;
        HashSet<string> used;
        try
        {
            body = ParseStatements([endTag], dropNeedle: true);
        }
        finally
        {
            _loopDepth = savedLoop;
            used = _macroNames[^1];
            _macroNames.RemoveAt(_macroNames.Count - 1);
        }
        bool declared(string n) => ps.Any(p => p.Item1 == n);
        return new MacroDef
        {
            Name = name,
            Params = ps,
            Body = body,
            CatchVarargs = used.Contains("varargs") && !declared("varargs"),
            CatchKwargs = used.Contains("kwargs") && !declared("kwargs"),
            UsesCaller = used.Contains("caller") && !declared("caller"),
        };
    }

    private Stmt ParseCallBlock()
    {
        var start = Next();
        bool hasSig = Cur.IsOp("(");
        // parse the optional caller signature first, then the call expression
        List<(string, Expr?)>? sig = null;
        if (hasSig)
        {
            _i++;
            sig = new List<(string, Expr?)>();
            while (!Cur.IsOp(")"))
            {
                if (sig.Count > 0) Expect(TokenType.Op, ",");
                var pn = Expect(TokenType.Name);
                Expr? dflt = null;
                if (SkipOp("=")) dflt = ParseExpression(true);
                sig.Add((pn.Text, dflt));
            }
            Expect(TokenType.Op, ")");
        }
        var callExpr = ParseExpression(true);
        if (callExpr is not CallExpr call) throw Fail("expected call", start.Pos);
        var def = ParseSignatureAndBody("caller", "endcall", hasSignature: false);
        def.Params.AddRange(sig ?? []);
        return new CallBlockStmt(call, def).At(start.Pos);
    }

    private Stmt ParseFilterBlock()
    {
        var start = Next();
        var filter = (FilterExpr)ParseFilter(null, startInline: true)!;
        var body = ParseStatements(["endfilter"], dropNeedle: true);
        return new FilterBlockStmt(filter, body).At(start.Pos);
    }

    private Stmt ParseWith()
    {
        var start = Next();
        var assignments = new List<(Target, Expr)>();
        while (Cur.Type != TokenType.BlockEnd)
        {
            if (assignments.Count > 0) Expect(TokenType.Op, ",");
            var target = ParseAssignTarget(extraEnd: null, withNamespace: false, withTuple: false);
            Expect(TokenType.Op, "=");
            assignments.Add((target, ParseExpression(true)));
        }
        var body = ParseStatements(["endwith"], dropNeedle: true);
        return new WithStmt(assignments, body).At(start.Pos);
    }

    private Target ParseAssignTarget(string[]? extraEnd, bool withNamespace, bool withTuple = true)
    {
        var t = Cur;
        if (withNamespace && t.Type == TokenType.Name && Peek().IsOp("."))
        {
            _i += 2;
            var attr = Expect(TokenType.Name);
            return new NamespaceTarget(t.Text, attr.Text).At(t.Pos);
        }
        Expr e = withTuple
            ? ParseTuple(withCondExpr: true, explicitParens: false, extraEnd: extraEnd, simplified: true)
            : ParsePrimary();
        return ToTarget(e);
    }

    private Target ToTarget(Expr e)
    {
        switch (e)
        {
            case NameExpr n:
                if (n.Name is "true" or "false" or "none" or "True" or "False" or "None")
                    throw Fail($"can't assign to '{n.Name}'", e.Pos);
                return new NameTarget(n.Name).At(e.Pos);
            case ListExpr { IsTuple: true } tuple:
                return new TupleTarget(tuple.Items.Select(ToTarget).ToList()).At(e.Pos);
            default:
                throw Fail("can't assign to this expression", e.Pos);
        }
    }

    // ------------------------------------------------------------------ expressions

    private bool IsTupleEnd(string[]? extraEnd)
    {
        var t = Cur;
        if (t.Type is TokenType.VarEnd or TokenType.BlockEnd or TokenType.Eof) return true;
        if (t.IsOp(")")) return true;
        return extraEnd is not null && t.Type == TokenType.Name && Array.IndexOf(extraEnd, t.Text) >= 0;
    }

    private Expr ParseTuple(bool withCondExpr, bool explicitParens, string[]? extraEnd, bool simplified = false)
    {
        int pos = Cur.Pos;
        var items = new List<Expr>();
        bool isTuple = false;
        while (true)
        {
            if (items.Count > 0) Expect(TokenType.Op, ",");
            if (IsTupleEnd(extraEnd)) break;
            Expr e;
            if (simplified) e = ParsePrimary();
            else e = ParseExpression(withCondExpr);
            items.Add(e);
            if (Cur.IsOp(",")) isTuple = true;
            else break;
        }
        if (!isTuple)
        {
            if (items.Count > 0) return items[0];
            if (!explicitParens) throw Fail($"Expected an expression, got {Cur}", Cur.Pos);
        }
        return new ListExpr(items, isTuple: true).At(pos);
    }

    private Expr ParseExpression(bool withCondExpr)
    {
        Enter(Cur.Pos);
        try
        {
            return withCondExpr ? ParseCondExpr() : ParseOr();
        }
        finally
        {
            Leave();
        }
    }

    private Expr ParseCondExpr()
    {
        int pos = Cur.Pos;
        var expr1 = ParseOr();
        while (SkipName("if"))
        {
            var expr2 = ParseOr();
            Expr? expr3 = null;
            if (SkipName("else")) expr3 = ParseCondExpr();
            expr1 = new CondExpr(expr2, expr1, expr3).At(pos);
        }
        return expr1;
    }

    private Expr ParseOr()
    {
        int pos = Cur.Pos;
        var left = ParseAnd();
        while (SkipName("or")) left = new OrExpr(left, ParseAnd()).At(pos);
        return left;
    }

    private Expr ParseAnd()
    {
        int pos = Cur.Pos;
        var left = ParseNot();
        while (SkipName("and")) left = new AndExpr(left, ParseNot()).At(pos);
        return left;
    }

    private Expr ParseNot()
    {
        var t = Cur;
        if (t.IsName("not"))
        {
            _i++;
            Enter(t.Pos);
            try { return new NotExpr(ParseNot()).At(t.Pos); }
            finally { Leave(); }
        }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        int pos = Cur.Pos;
        var first = ParseMath1();
        List<(string, Expr)>? ops = null;
        while (true)
        {
            var t = Cur;
            string? op = null;
            if (t.Type == TokenType.Op && t.Text is "==" or "!=" or "<" or ">" or "<=" or ">=") { op = t.Text; _i++; }
            else if (t.IsName("in")) { op = "in"; _i++; }
            else if (t.IsName("not") && Peek().IsName("in")) { op = "notin"; _i += 2; }
            if (op is null) break;
            (ops ??= new()).Add((op, ParseMath1()));
        }
        return ops is null ? first : new CompareExpr(first, ops).At(pos);
    }

    private Expr ParseMath1()
    {
        int pos = Cur.Pos;
        var left = ParseConcat();
        while (Cur.Type == TokenType.Op && Cur.Text is "+" or "-")
        {
            string op = Next().Text;
            left = new BinExpr(op, left, ParseConcat()).At(pos);
        }
        return left;
    }

    private Expr ParseConcat()
    {
        int pos = Cur.Pos;
        var left = ParseMath2();
        while (SkipOp("~")) left = new BinExpr("~", left, ParseMath2()).At(pos);
        return left;
    }

    private Expr ParseMath2()
    {
        int pos = Cur.Pos;
        var left = ParsePow();
        while (Cur.Type == TokenType.Op && Cur.Text is "*" or "/" or "//" or "%")
        {
            string op = Next().Text;
            left = new BinExpr(op, left, ParsePow()).At(pos);
        }
        return left;
    }

    private Expr ParsePow()
    {
        int pos = Cur.Pos;
        var left = ParseUnary(true);
        while (SkipOp("**")) left = new BinExpr("**", left, ParseUnary(true)).At(pos);
        return left;
    }

    private Expr ParseUnary(bool withFilter)
    {
        var t = Cur;
        Enter(t.Pos);
        try
        {
            Expr node;
            if (t.IsOp("-")) { _i++; node = new NegExpr(ParseUnary(false), true).At(t.Pos); }
            else if (t.IsOp("+")) { _i++; node = new NegExpr(ParseUnary(false), false).At(t.Pos); }
            else node = ParsePrimary();
            node = ParsePostfix(node);
            if (withFilter) node = ParseFilterExpr(node);
            return node;
        }
        finally
        {
            Leave();
        }
    }

    private Expr ParsePrimary()
    {
        var t = Cur;
        switch (t.Type)
        {
            case TokenType.Name:
                _i++;
                switch (t.Text)
                {
                    case "true": case "True": return new ConstExpr(JinjaBool.TrueValue).At(t.Pos);
                    case "false": case "False": return new ConstExpr(JinjaBool.FalseValue).At(t.Pos);
                    case "none": case "None": return new ConstExpr(JinjaNone.Instance).At(t.Pos);
                }
                NoteName(t.Text);
                return new NameExpr(t.Text).At(t.Pos);
            case TokenType.String:
            {
                _i++;
                string s = (string)t.Value!;
                while (Cur.Type == TokenType.String) s += (string)Next().Value!;
                return new ConstExpr(new JinjaString(s)).At(t.Pos);
            }
            case TokenType.Int:
                _i++;
                return new ConstExpr((JinjaInt)t.Value!).At(t.Pos);
            case TokenType.Float:
                _i++;
                return new ConstExpr(new JinjaFloat((double)t.Value!)).At(t.Pos);
            case TokenType.Op when t.Text == "(":
            {
                _i++;
                var e = ParseTuple(withCondExpr: true, explicitParens: true, extraEnd: null);
                Expect(TokenType.Op, ")");
                return e;
            }
            case TokenType.Op when t.Text == "[":
            {
                _i++;
                var items = new List<Expr>();
                while (!Cur.IsOp("]"))
                {
                    if (items.Count > 0) Expect(TokenType.Op, ",");
                    if (Cur.IsOp("]")) break;
                    items.Add(ParseExpression(true));
                }
                Expect(TokenType.Op, "]");
                return new ListExpr(items, isTuple: false).At(t.Pos);
            }
            case TokenType.Op when t.Text == "{":
            {
                _i++;
                var pairs = new List<(Expr, Expr)>();
                while (!Cur.IsOp("}"))
                {
                    if (pairs.Count > 0) Expect(TokenType.Op, ",");
                    if (Cur.IsOp("}")) break;
                    var k = ParseExpression(true);
                    Expect(TokenType.Op, ":");
                    pairs.Add((k, ParseExpression(true)));
                }
                Expect(TokenType.Op, "}");
                return new DictExpr(pairs).At(t.Pos);
            }
            case TokenType.Eof:
                throw Fail("unexpected end of template", t.Pos);
            default:
                throw Fail($"unexpected {t}", t.Pos);
        }
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            var t = Cur;
            if (t.IsOp("."))
            {
                _i++;
                var a = Cur;
                if (a.Type == TokenType.Name) { _i++; node = new GetAttrExpr(node, a.Text).At(t.Pos); }
                else if (a.Type == TokenType.Int) { _i++; node = new GetItemExpr(node, new ConstExpr((JinjaInt)a.Value!)).At(t.Pos); }
                else throw Fail("expected name or number", a.Pos);
            }
            else if (t.IsOp("["))
            {
                _i++;
                node = ParseSubscript(node, t.Pos);
            }
            else if (t.IsOp("("))
            {
                node = new CallExpr(node, ParseCallArgs()).At(t.Pos);
            }
            else return node;
        }
    }

    private Expr ParseSubscript(Expr node, int pos)
    {
        var args = new List<Expr>();
        Expr? slice = null;
        while (!Cur.IsOp("]"))
        {
            if (args.Count > 0 || slice is not null) Expect(TokenType.Op, ",");
            // slice?
            Expr? a = null;
            if (!Cur.IsOp(":")) a = ParseExpression(true);
            if (!Cur.IsOp(":"))
            {
                args.Add(a!);
                continue;
            }
            _i++; // ':'
            Expr? b = null, c = null;
            if (!Cur.IsOp("]") && !Cur.IsOp(",") && !Cur.IsOp(":")) b = ParseExpression(true);
            if (SkipOp(":"))
            {
                if (!Cur.IsOp("]") && !Cur.IsOp(",")) c = ParseExpression(true);
            }
            if (args.Count > 0 || slice is not null) throw Fail("multi-dimensional subscripts are not supported", pos);
            slice = new SliceExpr(node, a, b, c).At(pos);
        }
        Expect(TokenType.Op, "]");
        if (slice is not null)
        {
            if (args.Count > 0) throw Fail("multi-dimensional subscripts are not supported", pos);
            return slice;
        }
        if (args.Count == 0) throw Fail("expected subscript expression", pos);
        var key = args.Count == 1 ? args[0] : new ListExpr(args, isTuple: true).At(pos);
        return new GetItemExpr(node, key).At(pos);
    }

    private ArgList ParseCallArgs()
    {
        Expect(TokenType.Op, "(");
        var args = new ArgList();
        bool first = true;
        while (!Cur.IsOp(")"))
        {
            if (!first) Expect(TokenType.Op, ",");
            first = false;
            if (Cur.IsOp(")")) break;
            if (SkipOp("*"))
            {
                args.DynArgs = ParseExpression(true);
            }
            else if (SkipOp("**"))
            {
                args.DynKwargs = ParseExpression(true);
            }
            else if (Cur.Type == TokenType.Name && Peek().IsOp("="))
            {
                string key = Next().Text;
                _i++;
                args.Named.Add((key, ParseExpression(true)));
            }
            else
            {
                if (args.Named.Count > 0 || args.DynArgs is not null || args.DynKwargs is not null)
                    throw Fail("positional argument follows keyword argument", Cur.Pos);
                args.Positional.Add(ParseExpression(true));
            }
        }
        Expect(TokenType.Op, ")");
        return args;
    }

    private Expr ParseFilterExpr(Expr node)
    {
        while (true)
        {
            if (Cur.IsOp("|")) node = ParseFilter(node, startInline: false)!;
            else if (Cur.IsName("is")) node = ParseTest(node);
            else if (Cur.IsOp("("))
            {
                int pos = Cur.Pos;
                node = new CallExpr(node, ParseCallArgs()).At(pos);
            }
            else return node;
        }
    }

    private Expr? ParseFilter(Expr? node, bool startInline)
    {
        while (Cur.IsOp("|") || startInline)
        {
            if (!startInline) _i++;
            startInline = false;
            var nameTok = Expect(TokenType.Name);
            string name = nameTok.Text;
            while (Cur.IsOp(".") && Peek().Type == TokenType.Name)
            {
                _i++;
                name += "." + Next().Text;
            }
            if (!Builtins.Filters.TryGetValue(name, out var fn))
                throw Fail($"No filter named '{name}'.", nameTok.Pos);
            var args = Cur.IsOp("(") ? ParseCallArgs() : ArgList.None;
            node = new FilterExpr(node, name, fn, args).At(nameTok.Pos);
        }
        return node;
    }

    private Expr ParseTest(Expr node)
    {
        var isTok = Next();
        bool negated = SkipName("not");
        var nameTok = Expect(TokenType.Name);
        string name = nameTok.Text;
        while (Cur.IsOp(".") && Peek().Type == TokenType.Name)
        {
            _i++;
            name += "." + Next().Text;
        }
        if (!Builtins.Tests.TryGetValue(name, out var fn))
            throw Fail($"No test named '{name}'.", nameTok.Pos);
        ArgList args = ArgList.None;
        var c = Cur;
        if (c.IsOp("(")) args = ParseCallArgs();
        else if ((c.Type is TokenType.Name or TokenType.String or TokenType.Int or TokenType.Float
                  || c.IsOp("(") || c.IsOp("[") || c.IsOp("{"))
                 && !(c.IsName("else") || c.IsName("or") || c.IsName("and")))
        {
            if (c.IsName("is")) throw Fail("You cannot chain multiple tests with is", c.Pos);
            var arg = ParsePostfix(ParsePrimary());
            args = new ArgList();
            args.Positional.Add(arg);
        }
        Expr result = new TestExpr(node, name, fn, args).At(isTok.Pos);
        if (negated) result = new NotExpr(result).At(isTok.Pos);
        return result;
    }
}
