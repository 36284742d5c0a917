using SharpInfer.Tokenization.Jinja;

namespace SharpInfer.Tests.Tokenization.Jinja;

/// <summary>Hostile templates end with a TemplateException naming the limit that fired (never a hang,
/// a stack overflow or an out-of-memory crash).</summary>
public class JinjaLimitTests
{
    private static TemplateException Limit(string template, JinjaOptions? options = null)
    {
        var ex = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(template, options).Render());
        Assert.Equal(TemplateErrorKind.LimitExceeded, ex.Kind);
        return ex;
    }

    [Fact]
    public void NestedHugeLoopsHitTheStepLimit()
    {
        var ex = Limit("{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
            new JinjaOptions { MaxSteps = 50_000 });
        Assert.Equal(TemplateLimit.Steps, ex.Limit);
        Assert.Contains("MaxSteps", ex.Message);
    }

    [Fact]
    public void DefaultStepLimitStopsAQuadraticLoop()
    {
        var ex = Limit("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
        Assert.Equal(TemplateLimit.Steps, ex.Limit);
    }

    [Fact]
    public void InfiniteMacroRecursionHitsTheDepthLimit()
    {
        var ex = Limit("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}");
        Assert.Equal(TemplateLimit.Depth, ex.Limit);
        Assert.Contains("MaxDepth (256)", ex.Message);
    }

    [Fact]
    public void DepthLimitIsConfigurable()
    {
        const string t = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% else %}bottom{% endif %}{% endmacro %}{{ f(50) }}";
        Assert.Equal("bottom", JinjaTemplate.Parse(t).Render());
        Assert.Equal(TemplateLimit.Depth, Limit(t, new JinjaOptions { MaxDepth = 20 }).Limit);
    }

    [Fact]
    public void HugeDepthLimitStillCannotOverflowTheStack()
    {
        // with an absurd MaxDepth the stack guard fires instead of crashing the process
        var ex = Limit("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
            new JinjaOptions { MaxDepth = int.MaxValue, MaxSteps = long.MaxValue });
        Assert.Equal(TemplateLimit.Depth, ex.Limit);
    }

    [Fact]
    public void RecursiveLoopHitsTheDepthLimit()
    {
        var ex = Limit("{% for x in [[1]] recursive %}{{ loop([x]) }}{% endfor %}");
        Assert.Equal(TemplateLimit.Depth, ex.Limit);
    }

    [Fact]
    public void HugeOutputHitsTheOutputLimit()
    {
        var ex = Limit("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", new JinjaOptions { MaxOutputLength = 100_000 });
        Assert.Equal(TemplateLimit.OutputSize, ex.Limit);
        Assert.Contains("MaxOutputLength", ex.Message);
    }

    [Theory]
    [InlineData("{{ 'x' * 1000000000000 }}")]
    [InlineData("{{ [1] * 1000000000000 }}")]
    [InlineData("{% set ns = namespace(s='ab') %}{% for i in range(80) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}")]
    [InlineData("{% set ns = namespace(s='ab') %}{% for i in range(80) %}{% set ns.s = ns.s + ns.s %}{% endfor %}")]
    [InlineData("{{ 'ab'.replace('', 'x' * 10000000) }}")]
    public void ValuesThatGrowWithoutBoundHitTheOutputLimit(string template) =>
        Assert.Equal(TemplateLimit.OutputSize, Limit(template).Limit);

    [Fact]
    public void DoublingAListIsStopped()
    {
        // list copies are charged as steps, so the step limit fires before the list reaches MaxOutputLength items
        var ex = Limit("{% set ns = namespace(l=[1]) %}{% for i in range(80) %}{% set ns.l = ns.l + ns.l %}{% endfor %}");
        Assert.Equal(TemplateLimit.Steps, ex.Limit);
        ex = Limit("{% set ns = namespace(l=[1]) %}{% for i in range(80) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
            new JinjaOptions { MaxOutputLength = 1000 });
        Assert.Equal(TemplateLimit.OutputSize, ex.Limit);
    }

    [Fact]
    public void HugeRangeHitsTheRangeLimit()
    {
        var ex = Limit("{{ range(1000000000)|length }}");
        Assert.Equal(TemplateLimit.RangeLength, ex.Limit);
        Assert.Equal("1000", JinjaTemplate.Parse("{{ range(1000)|length }}", new JinjaOptions { MaxRangeLength = 1000 }).Render());
        Assert.Equal(TemplateLimit.RangeLength, Limit("{{ range(1001)|length }}", new JinjaOptions { MaxRangeLength = 1000 }).Limit);
    }

    [Fact]
    public void DeeplyNestedSourceHitsTheDepthLimitAtParseTime()
    {
        string t = "{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}";
        var ex = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(t));
        Assert.Equal(TemplateLimit.Depth, ex.Limit);
        Assert.Equal(1, ex.Line);

        string blocks = string.Concat(Enumerable.Repeat("{% if true %}", 2000)) + string.Concat(Enumerable.Repeat("{% endif %}", 2000));
        Assert.Equal(TemplateLimit.Depth, Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(blocks)).Limit);

        string nested10 = string.Concat(Enumerable.Repeat("{% if true %}", 10)) + "x" + string.Concat(Enumerable.Repeat("{% endif %}", 10));
        Assert.Equal("x", JinjaTemplate.Parse(nested10).Render());
        var ex10 = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(nested10, new JinjaOptions { MaxNesting = 8 }));
        Assert.Equal(TemplateLimit.Depth, ex10.Limit);
        Assert.Contains("MaxNesting (8)", ex10.Message);
    }

    [Fact]
    public void DeeplyNestedDataCannotOverflowTheStack()
    {
        const string build = "{% set ns = namespace(l=[]) %}{% for i in range(50000) %}{% set ns.l = [ns.l] %}{% endfor %}";
        // on a thread with a known, small stack (1 MiB, a common thread-pool default), so the outcome does not
        // depend on which runner thread the test lands on
        OnThreadWithStack(1 << 20, () =>
        {
            Assert.Equal(TemplateLimit.Depth, Limit(build + "{{ ns.l|tojson }}").Limit);
            Assert.Equal(TemplateLimit.Depth, Limit(build + "{{ ns.l }}").Limit);
            Assert.Equal(TemplateLimit.Depth, Limit(build + "{{ ns.l == ns.l[0] }}").Limit);
        });
    }

    private static void OnThreadWithStack(int stackBytes, Action check)
    {
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try { check(); }
            catch (Exception e) { failure = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e); }
        }, stackBytes);
        thread.Start();
        thread.Join();
        failure?.Throw();
    }

    [Fact]
    public void SelfReferencingListPrintsLikePython() =>
        Assert.Equal("[1, [...]]", JinjaTemplate.Parse("{% set l = [1] %}{% set _ = l.append(l) %}{{ l }}").Render());
}
